"""Dead-letter sinks: the table (embedded) and `<topic>.dlq` (Kafka, recorded in the table too)."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from libs.events.clock import Clock
from libs.events.envelope import RecordedEvent
from libs.events.tables import dead_letters


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
    import orjson

    conn.execute(
        insert(dead_letters).values(
            subscription=subscription,
            event_id=str(event.event_id),
            stream_id=event.stream_id,
            version=event.version,
            type=event.type,
            origin=origin,
            error=error[:4000],
            payload=orjson.dumps(event.data).decode()[:100_000],
            time=clock.now(),
        )
    )
