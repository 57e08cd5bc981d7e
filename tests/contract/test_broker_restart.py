"""Kafka backend only (RELIABILITY.md F4): the broker restarts, cleanly and with kill -9, while
tickets are appended and consumed. The relay, idempotent as in production, retries what the
broker had not acknowledged; every appended event has exactly one effect."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer

from libs.events import ANY_VERSION
from libs.events.kafka import KafkaSubscriber, Relay, RelayWorker, consumer_options, make_producer
from libs.events.runner import Runner
from tests.contract.test_subscriptions import change, make_store
from tests.support.effects import effect_counts, effects_subscription
from tests.support.kafka_broker import KafkaBroker


@pytest.mark.parametrize("hard", [False, True], ids=["clean", "kill -9"])
def test_broker_restarts_while_appending_lose_nothing(
    postgres_url: str, broker: KafkaBroker, hard: bool
) -> None:
    store = make_store(postgres_url)
    bootstrap = [broker.bootstrap]

    def producer() -> KafkaProducer:
        # A restart of a cold JVM takes 5-20 s here; the relay must outlast it, not give up.
        return make_producer(bootstrap, delivery_timeout_ms=60_000, request_timeout_ms=5_000)

    options = {
        **consumer_options(bootstrap, f"effects-{uuid.uuid4().hex[:6]}", 50),
        "session_timeout_ms": 6000,
        "max_poll_interval_ms": 10000,
    }
    subscriber = KafkaSubscriber(
        effects_subscription(), store, store.clock, lambda: KafkaConsumer(**options), producer
    )
    runner = Runner(
        [RelayWorker(Relay(store, producer, send_timeout_s=60)), subscriber],
        poll_interval=0.02,
        max_backoff=1.0,
    )
    runner.start()
    total = 300
    appended: list[str] = []

    def append() -> None:
        for _ in range(total):
            event = store.append(f"ticket-{uuid.uuid4()}", [change()], ANY_VERSION)[0]
            appended.append(str(event.event_id))
            time.sleep(0.01)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        while len(appended) < total // 3:
            time.sleep(0.05)
        broker.restart(hard=hard)
        while len(appended) < 2 * total // 3:
            time.sleep(0.05)
        broker.restart(hard=hard)
        writer.join(60)
        deadline = time.monotonic() + 120
        while sum(effect_counts(store.engine).values()) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        counts = effect_counts(store.engine)
    finally:
        runner.stop()
        store.engine.dispose()
    assert set(counts) == set(appended), f"{len(set(appended) - set(counts))} lost"
    assert set(counts.values()) == {1}
