"""One contract for both backends (embedded on SQLite; Kafka on PostgreSQL + a real broker):
order per stream, exactly-once effects under redelivery and SIGKILL, poison events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from libs.events import ANY_VERSION, NewEvent
from libs.events.clock import SystemClock
from libs.events.store import EventStore
from libs.events.tables import dead_letters
from libs.events.types import CATALOG
from libs.platform.database import make_engine, reading
from services import migrations
from tests.contract.backends import EmbeddedBackend, KafkaBackend
from tests.support.builders import write_unchecked
from tests.support.effects import (
    POISON_STATUS,
    create_effects_table,
    effect_counts,
    effect_order,
    effects_subscription,
)

Backend = EmbeddedBackend | KafkaBackend
ROOT = Path(__file__).resolve().parents[2]


def change(status: str = "closed") -> NewEvent:
    return NewEvent("TicketStatusChanged", {"status": status, "by": {"kind": "system"}})


def make_store(url: str) -> EventStore:
    engine = make_engine(url)
    migrations.upgrade(engine)
    create_effects_table(engine)
    return EventStore(engine, CATALOG, SystemClock())


@pytest.fixture(params=["embedded", "kafka"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        store = make_store(str(request.getfixturevalue("sqlite_url")))
        yield EmbeddedBackend(store)
    else:
        store = make_store(str(request.getfixturevalue("postgres_url")))
        kafka = KafkaBackend(store, request.getfixturevalue("broker"))
        yield kafka
        kafka.close()
    store.engine.dispose()


def append_streams(store: EventStore, streams: int, per_stream: int) -> list[str]:
    ids = [f"ticket-{uuid.uuid4()}" for _ in range(streams)]
    for round_ in range(per_stream):  # interleaved, as real traffic is
        for stream_id in ids:
            store.append(stream_id, [change(f"s{round_}")], round_)
    return ids


def test_each_stream_is_applied_in_order_exactly_once(backend: Backend) -> None:
    streams = append_streams(backend.store, streams=6, per_stream=8)
    subscriber = backend.subscriber(effects_subscription())
    backend.deliver(subscriber, lambda: sum(effect_counts(backend.store.engine).values()) >= 48)
    order = effect_order(backend.store.engine)
    for stream_id in streams:
        assert [v for s, v in order if s == stream_id] == list(range(1, 9))
    assert set(effect_counts(backend.store.engine).values()) == {1}


def test_redelivery_changes_nothing_twice(backend: Backend) -> None:
    append_streams(backend.store, streams=4, per_stream=5)
    subscription = effects_subscription()
    first = backend.subscriber(subscription)
    backend.deliver(first, lambda: sum(effect_counts(backend.store.engine).values()) >= 20)
    first_effects = effect_counts(backend.store.engine)

    again = backend.redeliver_everything(subscription)
    marker = backend.store.append(f"ticket-{uuid.uuid4()}", [change()], 0)[0]
    # The marker arrives after every redelivered event on its partition/position: once it is
    # applied, the redelivered ones have been seen (and must have changed nothing).
    backend.deliver(again, lambda: str(marker.event_id) in effect_counts(backend.store.engine))
    after = effect_counts(backend.store.engine)
    del after[str(marker.event_id)]
    assert after == first_effects


def test_poison_event_is_dead_lettered_and_later_events_flow(backend: Backend) -> None:
    store = backend.store
    poisoned = f"ticket-{uuid.uuid4()}"
    store.append(poisoned, [change(POISON_STATUS)], 0)
    # A row written by some future version of the code: unknown type, this code cannot read it.
    write_unchecked(store, f"ticket-{uuid.uuid4()}", "TicketTeleported", {"to": "mars"})
    later = store.append(f"ticket-{uuid.uuid4()}", [change()], 0)[0]
    subscriber = backend.subscriber(effects_subscription())
    backend.deliver(subscriber, lambda: str(later.event_id) in effect_counts(store.engine))
    with reading(store.engine) as conn:
        letters = conn.execute(
            select(dead_letters.c.type, dead_letters.c.error, dead_letters.c.origin)
        ).all()
    assert {row.type for row in letters} == {"TicketStatusChanged", "TicketTeleported"}
    assert any("always fails" in row.error for row in letters)
    assert any("unknown event type" in row.error for row in letters)
    assert all(row.origin for row in letters)


def test_event_no_serialiser_takes_is_dead_lettered_and_later_events_flow(
    backend: Backend,
) -> None:
    """An event stored before the catalog refused integers past 64 bits: its handler fails and
    its data is what orjson cannot write. Dead-lettering it must not fail in turn (issue 10)."""
    store = backend.store
    poisoned = f"ticket-{uuid.uuid4()}"
    poison = {"status": POISON_STATUS, "by": {"kind": "agent", "id": 10**23}}
    write_unchecked(store, poisoned, "TicketStatusChanged", poison)
    later = store.append(f"ticket-{uuid.uuid4()}", [change()], 0)[0]
    subscriber = backend.subscriber(effects_subscription())
    backend.deliver(subscriber, lambda: str(later.event_id) in effect_counts(store.engine))
    with reading(store.engine) as conn:
        letters = conn.execute(
            select(dead_letters.c.stream_id, dead_letters.c.error, dead_letters.c.payload)
        ).all()
    assert [row.stream_id for row in letters] == [poisoned]
    assert letters[0].error and letters[0].payload and POISON_STATUS in letters[0].payload


def _consumer_process(backend: Backend, tmp_path: Path, group: str) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "tests.support.effect_consumer",
        backend.name,
        str(backend.store.engine.url.render_as_string(hide_password=False)),
    ]
    if isinstance(backend, KafkaBackend):
        args += [backend.broker.bootstrap, group]
    env = {**os.environ, "TEST_EFFECT_DELAY_S": "0.015", "PYTHONPATH": str(ROOT)}
    with open(tmp_path / f"consumer-{time.monotonic_ns()}.log", "wb") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_consumer_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    total = 200
    for _ in range(total):
        backend.store.append(f"ticket-{uuid.uuid4()}", [change()], ANY_VERSION)
    if isinstance(backend, KafkaBackend):
        while backend.relay.run_once():
            pass
    group = f"effects-{uuid.uuid4().hex[:6]}"
    engine = backend.store.engine
    kills = 0
    deadline = time.monotonic() + 180
    while sum(effect_counts(engine).values()) < total:
        assert time.monotonic() < deadline, (
            f"only {sum(effect_counts(engine).values())}/{total} effects"
        )
        process = _consumer_process(backend, tmp_path, group)
        if kills < 3:
            # Kill once the consumer is mid-stream: some effects committed, more in flight.
            start = sum(effect_counts(engine).values())
            while sum(effect_counts(engine).values()) < start + 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        while sum(effect_counts(engine).values()) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        process.terminate()
        process.wait(10)
    counts = effect_counts(engine)
    assert kills == 3
    assert len(counts) == total
    assert set(counts.values()) == {1}
