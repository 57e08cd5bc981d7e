"""The event catalog: validation, upcasting, topics, CloudEvents types."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from marshmallow import Schema, fields

from libs.events.catalog import EventCatalog, topic_for
from libs.events.envelope import cloudevent_type, parse_cloudevent_type
from libs.events.errors import EventValidationError, PoisonEvent, UnknownEventType
from libs.events.types import CATALOG
from tests.support.builders import ticket_created


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("TicketCreated", ticket_created()),
        ("TicketCreated", ticket_created(priority="emergency", help_topic_id=2)),
        ("TicketRouted", {"department_id": 1, "priority": "normal"}),
        ("TicketStatusChanged", {"status": "closed", "by": {"kind": "agent", "id": 3}}),
        ("DepartmentDefined", {"id": 1, "name": "Support"}),
        ("SlaPlanDefined", {"id": 1, "name": "Default", "grace_hours": 18}),
        (
            "NotificationSent",
            {
                "ticket_id": str(uuid.uuid4()),
                "cause_event_id": str(uuid.uuid4()),
                "template": "new_ticket",
                "recipient": "ada@example.com",
                "message_id": "<x@y>",
            },
        ),
    ],
)
def test_valid_data_gives_the_current_version(name: str, data: dict[str, Any]) -> None:
    assert CATALOG.validate(name, data) == 1


@pytest.mark.parametrize(
    ("name", "data", "bad_field"),
    [
        ("TicketCreated", ticket_created(ticket_id="not-a-uuid"), "ticket_id"),
        ("TicketCreated", ticket_created(channel="fax"), "channel"),
        ("TicketCreated", ticket_created(priority="urgent"), "priority"),
        ("TicketCreated", ticket_created(number=""), "number"),
        ("TicketCreated", ticket_created(requester={"email": "nope"}), "requester"),
        ("TicketCreated", {k: v for k, v in ticket_created().items() if k != "body"}, "body"),
        ("TicketRouted", {"department_id": 0, "priority": "normal"}, "department_id"),
        ("TicketRouted", {"department_id": "1", "priority": "normal"}, "department_id"),
        ("SlaPlanDefined", {"id": 1, "name": "x", "grace_hours": 0}, "grace_hours"),
        ("DepartmentDefined", {"id": 1, "name": "x", "status": "gone"}, "status"),
    ],
)
def test_invalid_data_raises_naming_the_field(
    name: str, data: dict[str, Any], bad_field: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        CATALOG.validate(name, data)
    assert info.value.type_name == name
    assert bad_field in info.value.errors


def test_unknown_type_is_refused() -> None:
    with pytest.raises(UnknownEventType) as info:
        CATALOG.validate("TicketTeleported", {})
    assert info.value.type_name == "TicketTeleported"
    with pytest.raises(UnknownEventType):
        CATALOG.get("TicketTeleported")
    assert "TicketTeleported" not in CATALOG
    assert "TicketCreated" in CATALOG


def test_unknown_type_in_the_log_is_poison() -> None:
    with pytest.raises(PoisonEvent):
        CATALOG.upcast("TicketTeleported", 1, {})


# -- upcasting, with a local catalog ----------------------------------------------------------


class GreetingV2(Schema):
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)


def local_catalog(*, with_upcaster: bool = True) -> EventCatalog:
    catalog = EventCatalog()
    catalog.register("Greeted", GreetingV2, stream="ticket", description="test", version=2)
    if with_upcaster:

        @catalog.upcaster("Greeted", 1)
        def split_name(data: dict[str, Any]) -> dict[str, Any]:
            first, _, last = data["name"].partition(" ")
            return {"first_name": first, "last_name": last}

    return catalog


def test_v1_data_is_upcast_to_v2() -> None:
    catalog = local_catalog()
    version, data = catalog.upcast("Greeted", 1, {"name": "Ada Lovelace"})

    assert (version, data) == (2, {"first_name": "Ada", "last_name": "Lovelace"})
    assert catalog.validate("Greeted", data) == 2


def test_current_version_is_left_alone() -> None:
    data = {"first_name": "Ada", "last_name": "Lovelace"}
    assert local_catalog().upcast("Greeted", 2, data) == (2, data)


def test_future_version_is_poison() -> None:
    with pytest.raises(PoisonEvent, match="newer"):
        local_catalog().upcast("Greeted", 3, {"anything": True})


def test_missing_upcaster_is_poison() -> None:
    with pytest.raises(PoisonEvent, match="no upcaster"):
        local_catalog(with_upcaster=False).upcast("Greeted", 1, {"name": "Ada"})


def test_registering_twice_or_on_an_unknown_stream_is_refused() -> None:
    catalog = local_catalog()
    with pytest.raises(ValueError):
        catalog.register("Greeted", GreetingV2, stream="ticket", description="again")
    with pytest.raises(ValueError):
        catalog.register("Other", GreetingV2, stream="user", description="x")


# -- topics and CloudEvents types ----------------------------------------------------------


@pytest.mark.parametrize(
    ("stream_id", "topic"),
    [
        (f"ticket-{uuid.uuid4()}", "deskstream.tickets.v1"),
        ("config-department-1", "deskstream.config.v1"),
        ("config-help-topic-12", "deskstream.config.v1"),
        (f"notification-{uuid.uuid4()}", "deskstream.notifications.v1"),
    ],
)
def test_topic_for(stream_id: str, topic: str) -> None:
    assert topic_for(stream_id) == topic


@pytest.mark.parametrize(
    "stream_id", ["tickets-1", "user-5", "", "-ticket-1", "Ticket-1", "ticket_1"]
)
def test_topic_for_refuses_other_streams(stream_id: str) -> None:
    with pytest.raises(ValueError):
        topic_for(stream_id)


def test_every_registered_type_has_a_round_tripping_cloudevents_type() -> None:
    types = list(CATALOG)
    assert len(types) > 20
    for event_type in types:
        ce_type = cloudevent_type(event_type.name, event_type.version)
        assert ce_type == f"deskstream.{event_type.name}.v{event_type.version}"
        assert parse_cloudevent_type(ce_type) == (event_type.name, event_type.version)
        assert topic_for(f"{event_type.stream}-x").startswith("deskstream.")


@pytest.mark.parametrize(
    "ce_type",
    [
        "com.example.TicketCreated.v1",
        "deskstream.TicketCreated",
        "deskstream.TicketCreated.1",
        "deskstream.TicketCreated.vone",
        "deskstream.Ticket.Created.v1",
        "",
    ],
)
def test_parse_cloudevent_type_refuses_foreign_types(ce_type: str) -> None:
    with pytest.raises(ValueError):
        parse_cloudevent_type(ce_type)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"fields": {"ref": 10**23}}, "fields.ref"),  # past 64 bits: orjson and SQLite refuse it
        ({"fields": {"ref": float("nan")}}, "fields.ref"),
        ({"body": "a\x00b"}, "body"),  # PostgreSQL text and JSONB refuse NUL
        ({"fields": {"a\x00": "x"}}, "fields.a\x00"),
        ({"help_topic_id": 2**31}, "help_topic_id"),  # past PostgreSQL INTEGER, the column
    ],
)
def test_values_no_projection_can_store_are_refused_at_append(
    change: dict[str, Any], where: str
) -> None:
    data = {**ticket_created(), **change}
    with pytest.raises(EventValidationError) as refused:
        CATALOG.validate("TicketCreated", data)
    assert where in refused.value.errors
