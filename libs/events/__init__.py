"""The event backbone: envelope, catalog, store, subscriptions, and the two delivery backends.

Rule: the store is the source of truth. Appending never talks to Kafka; the relay publishes
what committed; consumers make each handler's effect exactly once by committing it together
with their tracking row.
"""

from libs.events.clock import Clock, FakeClock, SystemClock
from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.errors import (
    ConcurrencyError,
    EventValidationError,
    UnknownEventType,
)
from libs.events.store import ANY_VERSION, EventStore

__all__ = [
    "ANY_VERSION",
    "Clock",
    "ConcurrencyError",
    "EventStore",
    "EventValidationError",
    "FakeClock",
    "NewEvent",
    "RecordedEvent",
    "SystemClock",
    "UnknownEventType",
]
