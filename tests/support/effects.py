"""A test subscription whose effect is a row per handled event, deliberately without a unique
key: a duplicate effect shows up as a second row, so tests can count effects per event."""

from __future__ import annotations

import os
import time
from collections import Counter

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, select

from libs.events.envelope import RecordedEvent
from libs.events.subscription import Subscription, UnitOfWork
from libs.platform.database import reading

test_metadata = MetaData()
effects = Table(
    "test_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
)

POISON_STATUS = "explode"  # a TicketStatusChanged with this status makes the handler raise


def record_effect(event: RecordedEvent, uow: UnitOfWork) -> None:
    if event.data.get("status") == POISON_STATUS:
        raise ValueError("this event always fails")
    delay = float(os.environ.get("TEST_EFFECT_DELAY_S", "0"))
    if delay:
        time.sleep(delay)
    uow.conn.execute(
        insert(effects).values(
            event_id=str(event.event_id), stream_id=event.stream_id, version=event.version
        )
    )


def effects_subscription(name: str = "effects") -> Subscription:
    return Subscription(name, {"TicketStatusChanged": record_effect})


def create_effects_table(engine: Engine) -> None:
    test_metadata.create_all(engine)


def effect_counts(engine: Engine) -> Counter[str]:
    with reading(engine) as conn:
        return Counter(r[0] for r in conn.execute(select(effects.c.event_id)))


def effect_order(engine: Engine) -> list[tuple[str, int]]:
    with reading(engine) as conn:
        return [
            (r.stream_id, r.version) for r in conn.execute(select(effects).order_by(effects.c.id))
        ]
