"""The Kafka record codec: CloudEvents binary mode, both ways."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from libs.events.envelope import RecordedEvent
from libs.events.kafka import DecodeError, decode, encode
from libs.events.types import CATALOG
from tests.support.builders import ticket_created

TICKET_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def recorded(**overrides: Any) -> RecordedEvent:
    event = RecordedEvent(
        position=42,
        event_id=uuid.UUID("33333333-3333-4333-8333-333333333333"),
        stream_id=f"ticket-{TICKET_ID}",
        version=1,
        type="TicketCreated",
        schema_version=1,
        time=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        data=ticket_created(ticket_id=str(TICKET_ID)),
        metadata={"correlation_id": "corr-1", "actor": "api"},
    )
    return replace(event, **overrides)


def header_map(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode() for k, v in headers}


def test_encode_writes_cloudevents_headers() -> None:
    event = recorded(metadata={"causation_id": "cause-1", "traceparent": TRACEPARENT})
    key, value, headers = encode(event)
    h = header_map(headers)

    assert key == event.stream_id.encode()
    assert orjson.loads(value) == event.data
    assert h["ce_specversion"] == "1.0"
    assert h["ce_id"] == str(event.event_id)
    assert h["ce_type"] == "deskstream.TicketCreated.v1"
    assert h["ce_source"] == "deskstream/ticket"
    assert h["ce_subject"] == event.stream_id
    assert h["ce_time"] == "2024-05-06T07:08:09.123456+00:00"
    assert h["content-type"] == "application/json"
    assert h["traceparent"] == TRACEPARENT
    assert h["ce_causationid"] == "cause-1"
    assert h["ce_correlationid"] == str(event.event_id)  # none given: the event is its own


def test_traceparent_and_causation_absent_when_not_in_metadata() -> None:
    _, _, headers = encode(recorded())
    names = {k for k, _ in headers}

    assert "traceparent" not in names
    assert "ce_causationid" not in names
    assert header_map(headers)["ce_correlationid"] == "corr-1"


@pytest.mark.parametrize(
    "event",
    [
        recorded(),
        recorded(metadata={"traceparent": TRACEPARENT, "causation_id": "c", "actor": "x"}),
        recorded(time=datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        recorded(
            stream_id="config-department-1",
            type="DepartmentDefined",
            data={"id": 1, "name": "Support"},
            position=7,
            version=3,
        ),
    ],
)
def test_round_trip(event: RecordedEvent) -> None:
    _, value, headers = encode(event)
    assert decode(headers, value, CATALOG) == event


def test_decode_keeps_the_body_as_sent() -> None:
    # decode validates, but schema defaults (priority=None, ...) are not added to the data.
    event = recorded()
    _, value, headers = encode(event)
    assert "priority" not in decode(headers, value, CATALOG).data


@pytest.mark.parametrize("value", [b"not json", b"", None, b"[1, 2]", b'"a string"', b"\xff\xfe"])
def test_garbage_value_raises_decode_error(value: bytes | None) -> None:
    _, _, headers = encode(recorded())
    with pytest.raises(DecodeError):
        decode(headers, value, CATALOG)


@pytest.mark.parametrize(
    "missing", ["ce_type", "ce_id", "ce_subject", "ce_time", "ce_position", "ce_streamversion"]
)
def test_missing_header_raises_decode_error(missing: str) -> None:
    _, value, headers = encode(recorded())
    with pytest.raises(DecodeError):
        decode([(k, v) for k, v in headers if k != missing], value, CATALOG)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("ce_type", b"com.example.Thing.v1"),
        ("ce_id", b"not-a-uuid"),
        ("ce_time", b"yesterday"),
        ("ce_position", b"forty-two"),
        ("ce_dsmetadata", b"{not json"),
        ("ce_subject", b"\xff"),
    ],
)
def test_malformed_header_raises_decode_error(name: str, bad: bytes) -> None:
    _, value, headers = encode(recorded())
    headers = [(k, bad if k == name else v) for k, v in headers]
    with pytest.raises(DecodeError):
        decode(headers, value, CATALOG)


def test_no_headers_at_all_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode([], b"{}", CATALOG)


def test_schema_invalid_body_decodes_as_poison() -> None:
    event = recorded(data={**recorded().data, "channel": "fax"})
    _, value, headers = encode(event)

    decoded = decode(headers, value, CATALOG)

    assert decoded.poison is not None
    assert "channel" in decoded.poison
    assert decoded.event_id == event.event_id
    assert decoded.data == event.data


def test_unknown_type_decodes_as_poison() -> None:
    event = recorded(type="TicketTeleported", data={"to": "mars"})
    _, value, headers = encode(event)

    decoded = decode(headers, value, CATALOG)

    assert decoded.poison is not None
    assert "TicketTeleported" in decoded.poison
    assert decoded.type == "TicketTeleported"


def test_future_schema_version_decodes_as_poison() -> None:
    event = recorded(schema_version=9)
    _, value, headers = encode(event)

    decoded = decode(headers, value, CATALOG)

    assert decoded.poison is not None
    assert decoded.schema_version == 9


def test_good_record_is_not_poison() -> None:
    _, value, headers = encode(recorded())
    assert decode(headers, value, CATALOG).poison is None


def test_null_header_value_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(DecodeError):
        decode([("ce_type", None)], b"{}", CATALOG)  # type: ignore[list-item]
