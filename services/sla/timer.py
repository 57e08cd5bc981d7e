"""The overdue timer: `TicketOverdue` once per due date, for open tickets whose due time passed.

Each run reads only the due dates at or before now among open, unmarked tickets (a partial
index holds just those), marks a batch with one UPDATE and appends its events with one insert,
in one transaction. Exactly once: the marks and the appends commit together, and on PostgreSQL
`FOR UPDATE SKIP LOCKED` lets replicas share a burst instead of waiting on each other.
After a restart the first run finds every ticket that fell due meanwhile.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select, update

from libs.events.clock import Clock
from libs.events.envelope import NewEvent
from libs.events.store import ANY_VERSION, Append, EventStore
from libs.platform.database import as_utc
from services.sla.adapters.tables import sla_tickets


class OverdueTimer:
    name = "sla-timer"

    def __init__(
        self, store: EventStore, clock: Clock, batch_size: int = 500, interval_s: float = 0.25
    ) -> None:
        self.interval_s = interval_s
        self.store = store
        self.clock = clock
        self.batch_size = batch_size

    def run_once(self) -> int:
        """Mark one batch; returns how many (the runner comes straight back while it is > 0)."""
        now = self.clock.now()
        t = sla_tickets.c
        with self.store.transaction() as conn:
            due = (
                conn.execute(
                    select(t.stream_id)
                    .where(t.is_open, ~t.overdue, t.due_at <= now)
                    .order_by(t.due_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not due:
                return 0
            # The rows are this transaction's (locked, or SQLite's single writer): one UPDATE
            # marks them all and says which due date each mark is for.
            marked = conn.execute(
                update(sla_tickets)
                .where(t.stream_id.in_(due), ~t.overdue)
                .values(overdue=True)
                .returning(t.stream_id, t.due_at, t.target)
            ).all()
            marks = [
                _overdue_mark(stream_id, as_utc(due_at), target)
                for stream_id, due_at, target in marked
            ]
            if marks:
                self.store.append_many(marks, conn=conn)
        return len(marked)

    def wait_for_work(self, timeout: float) -> None:
        # Due dates are hours away when set: a quarter-second look keeps overdue marks well
        # inside a second of the due time, and an empty look is one index probe.
        threading.Event().wait(min(timeout, self.interval_s))

    def close(self) -> None:
        """Nothing held between runs."""


def _overdue_mark(stream_id: str, due_at: datetime, target: str | None) -> Append:
    overdue = {"due_at": due_at.isoformat(), "target": target or "resolution"}
    return Append(
        stream_id, [NewEvent("TicketOverdue", overdue, metadata={"actor": "sla"})], ANY_VERSION
    )
