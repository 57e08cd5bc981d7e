"""The event catalog: one registry of every event type, its schema per version, and upcasters.

The store's type column, the CloudEvents `type`, docs/events.md and the AsyncAPI document are
all generated from this registry, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

from libs.events.errors import EventValidationError, PoisonEvent, UnknownEventType
from libs.events.storable import unstorable

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# Stream id prefix -> topic. A stream id is `<category>-<id>`; the category picks the topic.
TOPICS = {
    "ticket": "deskstream.tickets.v1",
    "config": "deskstream.config.v1",
    "notification": "deskstream.notifications.v1",
    "email": "deskstream.email.v1",
}
INBOUND_TOPIC = "deskstream.inbound.v1"
DLQ_SUFFIX = ".dlq"


def all_topics() -> list[str]:
    """Every topic Deskstream uses, dead-letter topics included (for provisioning)."""
    topics = [*TOPICS.values(), INBOUND_TOPIC]
    return [*topics, *(t + DLQ_SUFFIX for t in topics)]


def topic_for(stream_id: str) -> str:
    category = stream_id.split("-", 1)[0]
    try:
        return TOPICS[category]
    except KeyError:
        raise ValueError(f"stream {stream_id!r} has no topic (category {category!r})") from None


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    schema: type[Schema]
    stream: str  # the stream category it belongs to: ticket, config, notification
    description: str


class EventCatalog:
    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._schemas: dict[str, Schema] = {}

    def register(
        self, name: str, schema: type[Schema], *, stream: str, description: str, version: int = 1
    ) -> None:
        if name in self._types:
            raise ValueError(f"event type {name} registered twice")
        if stream not in TOPICS:
            raise ValueError(f"unknown stream category {stream!r}")
        self._types[name] = EventType(name, version, schema, stream, description)

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register `fn(data_v_n) -> data_v_n+1` for `name`."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = fn
            return fn

        return decorate

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[EventType]:
        return iter(sorted(self._types.values(), key=lambda t: (t.stream, t.name)))

    def get(self, name: str) -> EventType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventType(name) from None

    def validate(self, name: str, data: dict[str, Any]) -> int:
        """Check `data` against the current schema; returns the schema version to store."""
        errors = self.errors(name, data)
        if errors:
            raise EventValidationError(name, errors)
        return self.get(name).version

    def errors(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        """What is wrong with `data` for the current schema of `name` (empty when valid).
        Whatever the schema allows, a value no projection can store (an integer past 64 bits,
        a NUL, a NaN) is refused too: appended, it would stop every subscription reading it."""
        errors = dict(self._schema(self.get(name)).validate(data))
        problem = unstorable(data)
        if problem is not None:
            errors.setdefault(problem[0], [problem[1]])
        return errors

    def _schema(self, event_type: EventType) -> Schema:
        # Schema instances are stateless once built and costly to build: one per type.
        schema = self._schemas.get(event_type.name)
        if schema is None:
            schema = self._schemas[event_type.name] = event_type.schema()
        return schema

    def upcast(self, name: str, version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Bring stored data of `version` up to the current schema version, one step at a time."""
        event_type = self._types.get(name)
        if event_type is None:
            raise PoisonEvent(f"unknown event type {name!r}")
        if version > event_type.version:
            raise PoisonEvent(f"{name} v{version} is newer than this code (v{event_type.version})")
        while version < event_type.version:
            step = self._upcasters.get((name, version))
            if step is None:
                raise PoisonEvent(f"no upcaster for {name} v{version}")
            data = step(data)
            version += 1
        return version, data
