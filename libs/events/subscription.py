"""Subscriptions: (name, handlers by event type) and the exactly-once processor both backends use.

A handler is a plain function `handler(event, uow)`. Its writes, the events it appends and the
subscription's tracking rows commit in one transaction, so a redelivered event is recognised by
its stream version and changes nothing twice. An event that arrives ahead of a missing one is
held: the missing versions are read from the store and applied first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from libs.events import metrics
from libs.events.clock import Clock
from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.store import Append, EventStore
from libs.events.tables import subscription_streams
from libs.platform.tracing import span_from

log = logging.getLogger(__name__)


class UnitOfWork:
    """What a handler may touch: the transaction's connection, and appends that commit with it.

    Appends are validated at once but written last, just before the commit: appending takes
    the store's global append lock, and holding it while the rest of a batch runs would stall
    every other writer (intake included) for the whole batch.
    """

    def __init__(
        self, conn: Connection, store: EventStore, cause: RecordedEvent, pending: PendingAppends
    ) -> None:
        self.conn = conn
        self.store = store
        self.cause = cause
        self.clock = store.clock
        self._pending = pending

    def append(self, stream_id: str, new_events: Sequence[NewEvent], expected_version: int) -> None:
        caused = [
            NewEvent(
                e.type,
                e.data,
                e.event_id,
                {
                    "correlation_id": self.cause.correlation_id,
                    "causation_id": str(self.cause.event_id),
                    **{k: v for k, v in self.cause.metadata.items() if k == "traceparent"},
                    **e.metadata,
                },
            )
            for e in new_events
        ]
        for event in caused:
            self.store.catalog.validate(event.type, event.data)
        self._pending.add(stream_id, caused, expected_version)


class PendingAppends:
    """Appends a batch's handlers asked for, written together right before its commit."""

    def __init__(self, *, discard: bool = False) -> None:
        self._appends: list[Append] = []
        self._discard = discard

    def add(self, stream_id: str, new_events: list[NewEvent], expected_version: int) -> None:
        if not self._discard:
            self._appends.append(Append(stream_id, new_events, expected_version))

    def write(self, store: EventStore, conn: Connection) -> None:
        if self._appends:
            store.append_many(self._appends, conn=conn)
        self._appends.clear()


Handler = Callable[[RecordedEvent, UnitOfWork], None]


@dataclass(frozen=True)
class Subscription:
    name: str
    handlers: Mapping[str, Handler]
    # Stream categories it reads, i.e. its Kafka topics (the embedded backend reads them all).
    categories: frozenset[str] = field(default_factory=lambda: frozenset({"ticket", "config"}))
    # Rebuilding state from the log: the events its handlers decide are already there, so
    # they are validated and dropped instead of appended again.
    replaying: bool = False

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type)


class TransientError(Exception):
    """Raise from a handler when retrying later may succeed (SMTP down, ...): never dead-lettered."""


class SubscriptionStopped(Exception):
    """Too many dead letters in a row: more likely a broken deploy than bad data."""


class DeadLetterSink(Protocol):
    def dead_letter(
        self, conn: Connection, subscription: str, event: RecordedEvent, error: str
    ) -> None: ...


class _StaleTracking(Exception):
    """Another replica advanced this stream meanwhile (a rebalance); retry the batch."""


TRANSIENT = (OperationalError, InterfaceError, TransientError, _StaleTracking)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


# Writes the runner's own position in the same transaction (embedded checkpoint), or nothing.
CommitHook = Callable[[Connection, RecordedEvent], None]


class SubscriptionProcessor:
    def __init__(
        self,
        subscription: Subscription,
        store: EventStore,
        dead_letters: DeadLetterSink,
        clock: Clock,
        *,
        max_attempts: int = 3,
        max_consecutive_dead_letters: int = 10,
    ) -> None:
        self.subscription = subscription
        self.store = store
        self.dead_letters = dead_letters
        self.clock = clock
        self.max_attempts = max_attempts
        self.max_consecutive_dead_letters = max_consecutive_dead_letters
        self.consecutive_dead_letters = 0
        self.stopped_reason: str | None = None

    @property
    def name(self) -> str:
        return self.subscription.name

    def process(self, batch: Sequence[RecordedEvent], on_commit: CommitHook | None = None) -> None:
        """Apply a batch exactly once. Transient errors propagate (the caller retries the batch);
        a failing event is isolated, retried, and finally dead-lettered."""
        if not batch:
            return
        started = time.perf_counter()
        try:
            self._commit(batch, on_commit)
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(batch) == 1:
                self._retry_or_dead_letter(batch[0], on_commit, exc)
            else:
                log.warning("%s: batch failed (%s); isolating", self.name, exc)
                for event in batch:
                    self.process([event], on_commit)
                return
        metrics.HANDLER_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    def _commit(self, batch: Sequence[RecordedEvent], on_commit: CommitHook | None) -> None:
        with self.store.engine.begin() as conn:
            tracked = _Tracking(conn, self.name)
            pending = PendingAppends(discard=self.subscription.replaying)
            for event in batch:
                self._apply(conn, tracked, event, pending)
            tracked.flush()
            if on_commit is not None:
                on_commit(conn, batch[-1])
            pending.write(self.store, conn)  # last: the append lock is held only until commit
        metrics.EVENTS_CONSUMED.labels(self.name).inc(len(batch))
        self.consecutive_dead_letters = 0

    def _apply(
        self, conn: Connection, tracked: _Tracking, event: RecordedEvent, pending: PendingAppends
    ) -> None:
        last = tracked.version(event.stream_id)
        if event.version <= last:
            metrics.EVENTS_DUPLICATE.labels(self.name).inc()
            return
        if event.version > last + 1:
            # Held, not applied over newer state: fill the gap from the source of truth first.
            for missing in self.store.read_stream(
                event.stream_id, last, event.version - 1, conn=conn
            ):
                self._apply(conn, tracked, missing, pending)
        if event.poison:
            raise PoisonError(event.poison)
        handler = self.subscription.handler_for(event.type)
        if handler is not None:
            with span_from(event.metadata.get("traceparent"), f"{self.name} {event.type}"):
                handler(event, UnitOfWork(conn, self.store, event, pending))
        tracked.advance(event.stream_id, event.version)

    def _retry_or_dead_letter(
        self, event: RecordedEvent, on_commit: CommitHook | None, first: Exception
    ) -> None:
        error: Exception = first
        if not isinstance(first, PoisonError):
            for attempt in range(1, self.max_attempts):
                self.clock.sleep(min(0.05 * 2**attempt, 1.0))
                try:
                    self._commit([event], on_commit)
                    return
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    error = exc
        reason = f"{type(error).__name__}: {error}"
        log.error(
            "%s: dead-lettering %s %s@%s: %s",
            self.name,
            event.type,
            event.stream_id,
            event.version,
            reason,
        )
        with self.store.engine.begin() as conn:
            self.dead_letters.dead_letter(conn, self.name, event, reason)
            tracked = _Tracking(conn, self.name)
            if tracked.version(event.stream_id) < event.version:
                tracked.advance(event.stream_id, event.version)
            tracked.flush()
            if on_commit is not None:
                on_commit(conn, event)
        metrics.EVENTS_DEAD_LETTERED.labels(self.name).inc()
        self.consecutive_dead_letters += 1
        if self.consecutive_dead_letters >= self.max_consecutive_dead_letters:
            self.stopped_reason = (
                f"{self.consecutive_dead_letters} dead letters in a row; last: {reason}"
            )
            raise SubscriptionStopped(self.stopped_reason)


class PoisonError(Exception):
    """The event cannot be read by this code; dead-letter it without retrying."""


class _Tracking:
    """Per-stream versions for one subscription, loaded lazily and written once per batch.

    Writes are conditional on the version read, so two replicas racing on one stream during a
    rebalance cannot both commit an effect: the loser's transaction rolls back and retries.
    """

    def __init__(self, conn: Connection, subscription: str) -> None:
        self.conn = conn
        self.subscription = subscription
        self._loaded: dict[str, int | None] = {}
        self._current: dict[str, int] = {}

    def version(self, stream_id: str) -> int:
        if stream_id in self._current:
            return self._current[stream_id]
        row = self.conn.execute(
            select(subscription_streams.c.version).where(
                subscription_streams.c.subscription == self.subscription,
                subscription_streams.c.stream_id == stream_id,
            )
        ).scalar_one_or_none()
        self._loaded[stream_id] = row
        self._current[stream_id] = row or 0
        return self._current[stream_id]

    def advance(self, stream_id: str, version: int) -> None:
        self._current[stream_id] = version

    def flush(self) -> None:
        t = subscription_streams.c
        for stream_id, version in self._current.items():
            loaded = self._loaded.get(stream_id)
            if loaded == version:
                continue
            if loaded is None:
                try:
                    with self.conn.begin_nested():
                        self.conn.execute(
                            insert(subscription_streams).values(
                                subscription=self.subscription, stream_id=stream_id, version=version
                            )
                        )
                except IntegrityError as exc:
                    raise _StaleTracking(stream_id) from exc
            else:
                changed = self.conn.execute(
                    update(subscription_streams)
                    .where(
                        and_(
                            t.subscription == self.subscription,
                            t.stream_id == stream_id,
                            t.version == loaded,
                        )
                    )
                    .values(version=version)
                ).rowcount
                if changed != 1:
                    raise _StaleTracking(stream_id)
