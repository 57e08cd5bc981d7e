"""Event data for tests: valid, with overrides, or written past the catalog's checks."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert

from libs.events.store import EventStore
from libs.events.tables import events


def ticket_created(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ticket_id": str(uuid.uuid4()),
        "number": "123456",
        "subject": "Printer on fire",
        "channel": "api",
        "requester": {"email": "ada@example.com", "name": "Ada"},
        "entry_id": str(uuid.uuid4()),
        "body": "It is on fire.",
    }
    data.update(overrides)
    return data


def write_unchecked(store: EventStore, stream_id: str, type_: str, data: dict[str, Any]) -> None:
    """Version 1 of `stream_id` written straight into the store, past the catalog's checks:
    what an older or a future version of the code may have left in the log."""
    with store.transaction() as conn:
        conn.execute(
            insert(events).values(
                event_id=str(uuid.uuid4()),
                stream_id=stream_id,
                version=1,
                type=type_,
                schema_version=1,
                time=store.clock.now(),
                data=data,
                metadata={},
            )
        )
