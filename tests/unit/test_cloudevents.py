"""CloudEvents in, pure: both HTTP modes and Kafka binary mode parse to one event; templates
render only lookups; the most specific mapping wins; bad definitions and bad events are refused
with the field named."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from libs.platform.errors import UnsupportedMediaType, ValidationFailed
from services.intake.domain.cloudevents import (
    CloudEvent,
    EventMapping,
    EventRefused,
    InvalidMapping,
    NoMapping,
    Template,
    append_message,
    choose_mapping,
    from_http,
    from_kafka,
    placement,
    render,
)
from services.intake.domain.mail.rules import Placement
from services.intake.domain.tickets import TicketState

ALERT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "a-1",
    "source": "//monitoring/prod",
    "type": "com.example.alert.fired",
    "subject": "db-1",
    "time": "2026-01-05T09:00:00Z",
    "datacontenttype": "application/json",
    "data": {"alert_id": "disk-full", "severity": "high", "labels": {"host": "db-1"}, "n": [3, 4]},
}


def mapping(**overrides: Any) -> EventMapping:
    definition = {
        "id": 1,
        "name": "Alerts",
        "type": "com.example.alert.fired",
        "subject": "[{data.severity}] {subject} on {data.labels.host}",
        "body": "Alert {id} from {source} at {time}: {data}",
        "requester_email": "alerts@monitoring.example",
        "requester_name": "Monitoring",
        "priority": "{data.severity}",
        "correlation": "alert:{data.alert_id}",
        **overrides,
    }
    return EventMapping.from_definition(definition)


def event(**overrides: Any) -> CloudEvent:
    return from_http(
        {"Content-Type": "application/cloudevents+json"}, orjson.dumps({**ALERT, **overrides})
    )


# -- parsing -----------------------------------------------------------------------------------


def test_structured_and_binary_http_and_kafka_binary_read_the_same_event() -> None:
    structured = event()
    binary = from_http(
        {
            "ce-specversion": "1.0",
            "ce-id": "a-1",
            "ce-source": "%2F%2Fmonitoring%2Fprod",  # the HTTP binding percent-encodes values
            "ce-type": "com.example.alert.fired",
            "ce-subject": "db-1",
            "ce-time": "2026-01-05T09:00:00Z",
            "Content-Type": "application/json",
        },
        orjson.dumps(ALERT["data"]),
    )
    kafka = from_kafka(
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"a-1"),
            ("ce_source", b"//monitoring/prod"),
            ("ce_type", b"com.example.alert.fired"),
            ("ce_subject", b"db-1"),
            ("ce_time", b"2026-01-05T09:00:00Z"),
            ("content-type", b"application/json"),
        ],
        orjson.dumps(ALERT["data"]),
    )
    assert structured == binary == kafka
    assert structured.data["labels"]["host"] == "db-1"


def test_data_base64_and_text_data() -> None:
    encoded = base64.b64encode(b'{"alert_id": "x"}').decode()
    envelope = {k: v for k, v in ALERT.items() if k != "data"}
    as_base64 = from_http(
        {"Content-Type": "application/cloudevents+json"},
        orjson.dumps({**envelope, "data_base64": encoded}),
    )
    assert as_base64.data == {"alert_id": "x"}
    text = from_http(
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t",
         "Content-Type": "text/plain; charset=utf-8"},
        b"disk full",
    )  # fmt: skip
    assert text.data == "disk full" and text.datacontenttype == "text/plain; charset=utf-8"
    blob = from_http(
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t",
         "Content-Type": "application/octet-stream"},
        b"\x00\xff",
    )  # fmt: skip
    assert blob.data is None  # kept out of templates, not refused


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"id": ""}, "id"),
        ({"source": None}, "source"),
        ({"type": 7}, "type"),
        ({"time": "yesterday"}, "time"),
        ({"data_base64": "not base64!"}, "data_base64"),
    ],
)
def test_invalid_attributes_name_the_attribute(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        event(**change)
    assert refused.value.details["field"] == field


def test_what_is_not_a_cloudevent_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="malformed JSON"):
        from_http({"Content-Type": "application/cloudevents+json"}, b"{nope")
    with pytest.raises(ValidationFailed, match="not a CloudEvent"):
        from_http({"Content-Type": "application/json"}, b"{}")
    with pytest.raises(ValidationFailed, match="no specversion"):
        from_http({"ce-id": "1", "ce-source": "s", "ce-type": "t"}, b"{}")
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        from_kafka(
            [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")],
            b"garbage{",
        )
    with pytest.raises(ValidationFailed, match="no ce_"):
        from_kafka([], b"garbage")
    with pytest.raises(UnsupportedMediaType):
        from_http({"Content-Type": "application/cloudevents-batch+json"}, b"[]")


# -- templates ---------------------------------------------------------------------------------


def test_templates_substitute_lookups_only() -> None:
    alert = event()
    rendered = Template.parse("{{literal}} {type}/{subject} {data.n.1} {data.missing.x}!").render(
        alert
    )
    assert rendered == "{literal} com.example.alert.fired/db-1 4 !"
    assert Template.parse("{data.labels}").render(alert) == '{"host":"db-1"}'
    # Keys are looked up in the event's JSON, never as attributes of Python objects.
    assert Template.parse("{data.__class__}{data.labels.__len__}").render(alert) == ""


@pytest.mark.parametrize(
    "text",
    ["{id!r}", "{data[0]}", "{0}", "{}", "{id:>10}", "{ id }", "{name}", "a{b", "a}b"],
)  # fmt: skip
def test_anything_but_a_lookup_is_refused(text: str) -> None:
    with pytest.raises(InvalidMapping) as refused:
        mapping(subject=text)
    assert refused.value.field == "subject"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"subject": None}, "subject"),
        ({"requester_email": None}, "requester_email"),
        ({"requester_email": "not an address"}, "requester_email"),
        ({"priority": "urgent"}, "priority"),
        ({"action": "append_message", "correlation": None}, "correlation"),
        ({"correlation": "always the same"}, "correlation"),
        ({"body": "{data.a..b}"}, "body"),
    ],
)
def test_definitions_that_cannot_work_are_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidMapping) as refused:
        mapping(**overrides)
    assert refused.value.field == field


# -- choosing and rendering --------------------------------------------------------------------


def test_the_longest_matching_source_prefix_wins_and_disabled_mappings_never_match() -> None:
    anywhere = mapping(id=1)
    prod = mapping(id=2, source_prefix="//monitoring/")
    exact = mapping(id=3, source_prefix="//monitoring/prod", enabled=False)
    other = mapping(id=4, source_prefix="//billing/")
    assert choose_mapping([anywhere, prod, exact, other], event()).id == 2
    assert choose_mapping([anywhere, other], event(source="//elsewhere")).id == 1
    with pytest.raises(NoMapping, match=r"com\.example\.alert\.resolved"):
        choose_mapping([anywhere, prod], event(type="com.example.alert.resolved"))


def test_an_alert_renders_a_ticket_on_the_event_channel() -> None:
    rendered = render(mapping(help_topic_id=1), event())
    ticket = rendered.ticket
    assert ticket is not None
    assert ticket.subject == "[high] db-1 on db-1"
    assert ticket.body.startswith("Alert a-1 from //monitoring/prod at 2026-01-05T09:00:00Z: {")
    assert (ticket.requester.email, ticket.requester.name) == (
        "alerts@monitoring.example",
        "Monitoring",
    )
    assert (ticket.channel, ticket.priority, ticket.help_topic_id) == ("event", "high", 1)
    assert rendered.correlation == "alert:disk-full"
    assert rendered.author["kind"] == "user"


def test_rendered_values_that_cannot_make_a_ticket_are_refused() -> None:
    with pytest.raises(EventRefused, match="priority renders as 'p1'"):
        render(mapping(), event(data={**ALERT["data"], "severity": "P1"}))
    with pytest.raises(EventRefused, match=r"correlation needs \{data.alert_id\}"):
        render(mapping(), event(data={"severity": "low"}))
    with pytest.raises(EventRefused, match="requester_email renders as ''"):
        render(mapping(requester_email="{data.owner}"), event())
    with pytest.raises(EventRefused, match="subject renders empty"):
        render(mapping(subject="{data.title}"), event())


def test_an_append_mapping_without_requester_speaks_as_the_source() -> None:
    resolved = mapping(
        action="append_message", subject=None, requester_email=None, body="Resolved: {id}"
    )
    rendered = render(resolved, event(type="com.example.alert.fired"))
    assert rendered.ticket is None
    assert rendered.author == {
        "kind": "system",
        "id": None,
        "name": "//monitoring/prod",
        "email": None,
    }


def test_a_closed_ticket_reopens_and_a_rejected_one_takes_nothing() -> None:
    rendered = render(mapping(), event())
    ticket = TicketState(version=3, ticket_id=uuid.uuid4(), number="123456", status="closed")
    where = placement(ticket, department_status="active", help_topic_status=None)
    assert where is Placement.REOPEN
    new_events = append_message(ticket, rendered, entry_id=uuid.uuid4(), reopen=True)
    assert [e.type for e in new_events] == ["MessageAppended", "TicketStatusChanged"]
    assert new_events[0].data["channel"] == "event" and new_events[0].data["kind"] == "message"
    assert new_events[1].data["status"] == "open"
    rejected = TicketState(version=2, number="1", rejected=True)
    assert placement(rejected, department_status=None, help_topic_status=None) is (
        Placement.NEW_TICKET
    )
    archived_department = placement(ticket, department_status="archived", help_topic_status=None)
    assert archived_department is Placement.NEW_TICKET
