"""The embedded backend: subscriptions tail the store table directly (one process, no broker).

The checkpoint (last position) commits in the same transaction as the batch's effects. The same
runner rebuilds projections from position 0 in either backend (`deskstream replay`).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from libs.events import metrics
from libs.events.clock import Clock
from libs.events.dead_letters import TableDeadLetters
from libs.events.envelope import RecordedEvent
from libs.events.store import EventStore
from libs.events.subscription import Subscription, SubscriptionProcessor
from libs.events.tables import subscription_checkpoints
from libs.events.wakeup import waiter_for
from libs.platform.database import reading, upsert

log = logging.getLogger(__name__)


def load_checkpoint(conn: Connection, name: str) -> int:
    value = conn.execute(
        select(subscription_checkpoints.c.position).where(
            subscription_checkpoints.c.subscription == name
        )
    ).scalar_one_or_none()
    return int(value or 0)


def save_checkpoint(conn: Connection, name: str, position: int) -> None:
    upsert(
        conn,
        subscription_checkpoints,
        {"subscription": name, "position": position},
        ["subscription"],
    )


class EmbeddedSubscriber:
    """Feeds one subscription from the store, in position order, batch by batch."""

    def __init__(
        self, subscription: Subscription, store: EventStore, clock: Clock, *, batch_size: int = 200
    ) -> None:
        self.store = store
        self.clock = clock
        self.batch_size = batch_size
        self.processor = SubscriptionProcessor(subscription, store, TableDeadLetters(clock), clock)
        self._waiter = waiter_for(store.engine)

    @property
    def name(self) -> str:
        return self.processor.name

    def run_once(self) -> int:
        """Process what is available now; returns how many events were processed."""
        with reading(self.store.engine) as conn:
            after = load_checkpoint(conn, self.name)
        batch = self.store.read_all(after, self.batch_size)
        head = self.store.head_position()
        # Counted before processing: a batch that keeps failing is lag, not zero.
        metrics.CONSUMER_LAG.labels(self.name).set(max(0, head - after))
        if batch:
            self.processor.process(batch, self._checkpoint)
            metrics.CONSUMER_LAG.labels(self.name).set(max(0, head - batch[-1].position))
        return len(batch)

    def _checkpoint(self, conn: Connection, last: RecordedEvent) -> None:
        save_checkpoint(conn, self.name, last.position)

    def run_until_idle(self) -> int:
        total = 0
        while processed := self.run_once():
            total += processed
        return total

    def wait_for_work(self, timeout: float) -> None:
        self._waiter.wait(timeout)

    def close(self) -> None:
        self._waiter.close()
