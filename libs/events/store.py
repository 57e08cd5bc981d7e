"""The event store: one append-only table on SQLAlchemy Core, for SQLite and PostgreSQL.

Appends are serialised (a transaction-scoped advisory lock on PostgreSQL, BEGIN IMMEDIATE on
SQLite) so positions become visible in commit order: a reader tailing `position > N` never
skips one that commits late.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from libs.events import metrics
from libs.events.catalog import EventCatalog
from libs.events.clock import Clock, SystemClock
from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.errors import ConcurrencyError, PoisonEvent
from libs.events.tables import events
from libs.events.wakeup import notify_appended
from libs.platform.database import as_utc, reading

# Pass as expected_version to append without a concurrency check (system facts, e.g. a timer).
ANY_VERSION = -1
APPEND_LOCK_KEY = 0x6465736B  # "desk": the advisory lock serialising appends on PostgreSQL


@dataclass(frozen=True)
class Append:
    """Events for one stream, if it is at `expected_version` (0 = new, ANY_VERSION = unchecked)."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int


class EventStore:
    def __init__(self, engine: Engine, catalog: EventCatalog, clock: Clock | None = None) -> None:
        self.engine = engine
        self.catalog = catalog
        self.clock = clock or SystemClock()

    # -- writing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; several appends and a service's own rows commit together."""
        with self.engine.begin() as conn:
            yield conn

    def append(
        self,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected_version: int,
        *,
        conn: Connection | None = None,
    ) -> list[RecordedEvent]:
        """Append to `stream_id` if it is at `expected_version` (0 = new stream).

        Raises ConcurrencyError on a stale version, EventValidationError on bad data; in both
        cases nothing is written. With `conn`, joins that transaction (the caller commits).
        """
        if conn is None:
            with self.transaction() as own:
                return self.append(stream_id, new_events, expected_version, conn=own)
        return self.append_many([Append(stream_id, new_events, expected_version)], conn=conn)

    def append_many(self, appends: Sequence[Append], *, conn: Connection) -> list[RecordedEvent]:
        """Several appends (to one stream or many) under one lock, one version read and one
        insert: a batch holds the global append lock for one round trip, not one per stream."""
        if not appends:
            return []
        batch = [(a, self._rows(a.stream_id, a.events)) for a in appends]
        self.lock_appends(conn)
        # A new stream needs no version read: the unique (stream, version) refuses a second one.
        known = self._stream_versions(
            {a.stream_id for a in appends if a.expected_version != 0}, conn
        )
        all_rows: list[dict[str, Any]] = []
        for append, rows in batch:
            current = known.get(append.stream_id, 0)
            if append.expected_version not in (ANY_VERSION, current):
                raise ConcurrencyError(append.stream_id, append.expected_version, current)
            for offset, row in enumerate(rows, start=1):
                row["version"] = current + offset
            known[append.stream_id] = current + len(rows)
            all_rows += rows
        notify_appended(conn)
        try:
            result = conn.execute(
                insert(events).returning(events.c.position, sort_by_parameter_order=True),
                all_rows,
            )
            positions = [r[0] for r in result]
        except IntegrityError as exc:
            # A stream expected new already existed: the transaction is void, nothing written.
            first = next((a for a in appends if a.expected_version == 0), appends[0])
            raise ConcurrencyError(
                first.stream_id,
                first.expected_version,
                self._version_after_failure(first.stream_id),
            ) from exc
        for row in all_rows:
            metrics.EVENTS_APPENDED.labels(type=row["type"]).inc()
        return [
            self._recorded(dict(row, position=p))
            for row, p in zip(all_rows, positions, strict=True)
        ]

    @staticmethod
    def _stream_versions(stream_ids: set[str], conn: Connection) -> dict[str, int]:
        if not stream_ids:
            return {}
        rows = conn.execute(
            select(events.c.stream_id, func.max(events.c.version))
            .where(events.c.stream_id.in_(stream_ids))
            .group_by(events.c.stream_id)
        )
        return {stream_id: int(version) for stream_id, version in rows}

    def _rows(self, stream_id: str, new_events: Sequence[NewEvent]) -> list[dict[str, Any]]:
        if not new_events:
            raise ValueError("nothing to append")
        now = self.clock.now()
        rows = []
        for event in new_events:
            schema_version = self.catalog.validate(event.type, event.data)
            rows.append(
                {
                    "event_id": str(event.event_id),
                    "stream_id": stream_id,
                    "type": event.type,
                    "schema_version": schema_version,
                    "time": now,
                    "data": event.data,
                    "metadata": event.metadata,
                }
            )
        return rows

    def _version_after_failure(self, stream_id: str) -> int:
        """The stream's version, read outside the failed transaction (for the 409 answer)."""
        with reading(self.engine) as conn:
            return self.stream_version(stream_id, conn=conn)

    @staticmethod
    def lock_appends(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
        # SQLite: the engine begins every transaction IMMEDIATE (libs.platform.database),
        # which already holds the single write lock.

    # -- reading -----------------------------------------------------------------------------

    def stream_version(self, stream_id: str, *, conn: Connection | None = None) -> int:
        query = select(func.coalesce(func.max(events.c.version), 0)).where(
            events.c.stream_id == stream_id
        )
        if conn is not None:
            return int(conn.execute(query).scalar_one())
        with reading(self.engine) as own:
            return int(own.execute(query).scalar_one())

    def read_stream(
        self,
        stream_id: str,
        after_version: int = 0,
        until_version: int | None = None,
        *,
        conn: Connection | None = None,
    ) -> list[RecordedEvent]:
        query = (
            select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        if until_version is not None:
            query = query.where(events.c.version <= until_version)
        return self._fetch(query, conn)

    def read_all(
        self,
        after_position: int = 0,
        limit: int = 500,
        *,
        types: Iterable[str] | None = None,
        conn: Connection | None = None,
    ) -> list[RecordedEvent]:
        query = (
            select(events)
            .where(events.c.position > after_position)
            .order_by(events.c.position)
            .limit(limit)
        )
        if types is not None:
            query = query.where(events.c.type.in_(list(types)))
        return self._fetch(query, conn)

    def head_position(self) -> int:
        with reading(self.engine) as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(events.c.position), 0))).scalar_one()
            )

    def _fetch(self, query: Any, conn: Connection | None) -> list[RecordedEvent]:
        if conn is not None:
            return [self._recorded(dict(r._mapping)) for r in conn.execute(query)]
        with reading(self.engine) as own:
            return [self._recorded(dict(r._mapping)) for r in own.execute(query)]

    def _recorded(self, row: dict[str, Any]) -> RecordedEvent:
        """Rows come back upcast to the current schema version; the stored row never changes.

        A row this code cannot upcast comes back marked `poison` instead of raising, so one bad
        row never stops a reader; subscriptions dead-letter it.
        """
        poison = None
        try:
            version, data = self.catalog.upcast(row["type"], row["schema_version"], row["data"])
        except PoisonEvent as exc:
            version, data, poison = row["schema_version"], row["data"], str(exc)
        when = as_utc(row["time"])
        return RecordedEvent(
            position=row["position"],
            event_id=uuid.UUID(str(row["event_id"])),
            stream_id=row["stream_id"],
            version=row["version"],
            type=row["type"],
            schema_version=version,
            time=when,
            data=data,
            metadata=row["metadata"] or {},
            poison=poison,
        )
