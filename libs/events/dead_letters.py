"""Dead-letter sinks: the table (embedded) and `<topic>.dlq` (Kafka, recorded in the table too).

Recording a dead letter never fails because of the event: the event is what could not be
processed, so its data may be what no serialiser or column takes. What cannot be stored as JSON
is stored as text, cut to the column; only the database being unreachable propagates (the
subscription retries then).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from sqlalchemy import Connection, insert
from sqlalchemy.exc import InterfaceError, OperationalError

from libs.events.clock import Clock
from libs.events.envelope import RecordedEvent
from libs.events.tables import dead_letters

log = logging.getLogger(__name__)
PAYLOAD_LENGTH = 100_000
ERROR_LENGTH = 4000


class TableDeadLetters:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def dead_letter(
        self, conn: Connection, subscription: str, event: RecordedEvent, error: str
    ) -> None:
        record(conn, self.clock, subscription, event, f"position {event.position}", error)


def record(
    conn: Connection, clock: Clock, subscription: str, event: RecordedEvent, origin: str, error: str
) -> None:
    row = {
        "subscription": _text(subscription, 100),
        "event_id": _text(str(event.event_id), 36),
        "stream_id": _text(event.stream_id, 200),
        "version": event.version if -(2**31) <= event.version < 2**31 else None,
        "type": _text(event.type, 100),
        "origin": _text(origin, 200),
        "error": _text(error, ERROR_LENGTH),
        "payload": _text(payload_text(event.data), PAYLOAD_LENGTH),
        "time": clock.now(),
    }
    try:
        with conn.begin_nested():  # a refused row must not undo the caller's transaction
            conn.execute(insert(dead_letters).values(**row))
    except (OperationalError, InterfaceError):
        raise  # the database is away: the caller retries the whole dead letter
    except Exception as exc:
        log.error("dead letter of %s kept without its payload: %s", row["event_id"], exc)
        row["payload"] = None
        row["error"] = _text(f"{error} (payload not storable: {exc})", ERROR_LENGTH)
        with conn.begin_nested():
            conn.execute(insert(dead_letters).values(**row))


def payload_text(data: Any) -> str:
    """The event's data as JSON; past what orjson takes (integers over 64 bits), as the
    standard library writes it; failing that, its repr."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        pass
    try:
        return json.dumps(data, default=str)
    except (TypeError, ValueError):
        return repr(data)


def _text(value: str, length: int) -> str:
    # PostgreSQL text refuses NUL: shown escaped, as JSON would write it.
    return value.replace("\x00", "\\u0000")[:length]
