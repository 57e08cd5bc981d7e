"""The event store's contract, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from libs.events import ANY_VERSION, ConcurrencyError, EventStore, EventValidationError, NewEvent
from libs.events.store import Append


def status_changed(status: str = "closed") -> NewEvent:
    by = {"kind": "agent", "id": 1, "name": "Ann", "email": "ann@example.com"}
    return NewEvent("TicketStatusChanged", {"status": status, "by": by})


def stream() -> str:
    return f"ticket-{uuid.uuid4()}"


def test_read_your_append(store: EventStore) -> None:
    s = stream()
    recorded = store.append(s, [status_changed("open"), status_changed("closed")], 0)
    assert [e.version for e in recorded] == [1, 2]
    read = store.read_stream(s)
    assert [(e.version, e.data["status"]) for e in read] == [(1, "open"), (2, "closed")]
    assert read[0].event_id == recorded[0].event_id
    assert read[0].time.tzinfo is not None
    assert store.stream_version(s) == 2


def test_stale_expected_version_appends_nothing(store: EventStore) -> None:
    s = stream()
    store.append(s, [status_changed()], 0)
    with pytest.raises(ConcurrencyError) as refused:
        store.append(s, [status_changed("open")], 0)
    assert refused.value.actual == 1
    assert len(store.read_stream(s)) == 1


def test_several_streams_append_together_or_not_at_all(store: EventStore) -> None:
    a, b, c = stream(), stream(), stream()
    store.append(a, [status_changed("open")], 0)
    with store.transaction() as conn:
        recorded = store.append_many(
            [
                Append(a, [status_changed("closed")], 1),
                Append(b, [status_changed("open")], 0),
                Append(a, [status_changed("open")], ANY_VERSION),  # the same stream again
            ],
            conn=conn,
        )
    assert [(e.stream_id, e.version) for e in recorded] == [(a, 2), (b, 1), (a, 3)]
    assert [e.position for e in recorded] == sorted(e.position for e in recorded)
    assert [e.data["status"] for e in store.read_stream(a)] == ["open", "closed", "open"]
    with pytest.raises(ConcurrencyError), store.transaction() as conn:
        store.append_many(
            [Append(c, [status_changed()], 0), Append(a, [status_changed()], 1)], conn=conn
        )
    assert store.read_stream(c) == [] and store.stream_version(a) == 3


def test_invalid_data_appends_nothing(store: EventStore) -> None:
    s = stream()
    with pytest.raises(EventValidationError):
        store.append(s, [status_changed(), NewEvent("TicketStatusChanged", {"status": ""})], 0)
    assert store.read_stream(s) == []


def test_racing_appenders_exactly_one_wins_per_version(store: EventStore) -> None:
    s = stream()
    store.append(s, [status_changed()], 0)
    barrier = threading.Barrier(8)

    def attempt(_: int) -> bool:
        barrier.wait()
        try:
            store.append(s, [status_changed("open")], 1)
            return True
        except ConcurrencyError:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count(True) == 1
    assert store.stream_version(s) == 2


def test_tailing_reader_sees_every_position_exactly_once(store: EventStore) -> None:
    """Concurrent writers; a reader tailing `position > last` must never skip a late commit."""
    writers, per_writer = 4, 25
    done = threading.Event()
    seen: list[int] = []

    def write(_: int) -> None:
        for _ in range(per_writer):
            store.append(stream(), [status_changed()], ANY_VERSION)

    def tail() -> None:
        last = 0
        while True:
            finished = done.is_set()
            batch = store.read_all(last, 50)
            seen.extend(e.position for e in batch)
            if batch:
                last = batch[-1].position
            elif finished:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    reader.join(30)
    assert len(seen) == writers * per_writer
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen)
