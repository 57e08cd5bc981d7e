"""The event envelope: what a caller appends and what a reader gets back.

Attributes map one-to-one onto CloudEvents 1.0 (id, source, type, subject, time) — see
`cloudevent_type` and libs.events.kafka for the binary-mode headers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SPEC_VERSION = "1.0"
SOURCE = "deskstream"


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # Correlation/causation/actor/traceparent; filled in by the store when absent.
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    type: str
    schema_version: int
    time: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    # Set when this code cannot read the event (unknown type, future version): dead-letter it.
    poison: str | None = None

    @property
    def cloudevent_type(self) -> str:
        return cloudevent_type(self.type, self.schema_version)

    @property
    def correlation_id(self) -> str:
        return str(self.metadata.get("correlation_id") or self.event_id)

    def history_entry(self) -> dict[str, Any]:
        """The public shape of one event in a stream's history (the API's `.../events`)."""
        return {
            "position": self.position,
            "version": self.version,
            "type": self.type,
            "time": self.time.isoformat(),
            "data": self.data,
        }


def cloudevent_type(name: str, schema_version: int) -> str:
    return f"deskstream.{name}.v{schema_version}"


def parse_cloudevent_type(ce_type: str) -> tuple[str, int]:
    """`deskstream.TicketCreated.v1` -> ("TicketCreated", 1); ValueError otherwise."""
    prefix, name, version = ce_type.split(".")
    if prefix != "deskstream" or not version.startswith("v"):
        raise ValueError(f"not a deskstream event type: {ce_type!r}")
    return name, int(version[1:])
