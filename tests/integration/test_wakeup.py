"""Idle readers are woken by an append (PostgreSQL NOTIFY across processes, a commit signal
in one process), not by their timeout."""

from __future__ import annotations

import threading
import time
import uuid

from libs.events import ANY_VERSION, EventStore, NewEvent
from libs.events.wakeup import waiter_for


def test_an_append_wakes_a_waiting_reader_long_before_its_timeout(store: EventStore) -> None:
    waiter = waiter_for(store.engine)
    waiter.wait(0.01)  # connects (PostgreSQL: LISTEN) before the append it must see
    change = NewEvent("TicketStatusChanged", {"status": "open", "by": {"kind": "system"}})
    threading.Timer(
        0.3, lambda: store.append(f"ticket-{uuid.uuid4()}", [change], ANY_VERSION)
    ).start()
    started = time.monotonic()
    waiter.wait(20.0)
    waited = time.monotonic() - started
    waiter.close()
    assert waited < 10.0, f"woke only after {waited:.1f} s: the append did not signal"
