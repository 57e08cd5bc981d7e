"""A consumer process for kill tests: `python -m tests.support.effect_consumer BACKEND DB [BOOTSTRAP GROUP]`.

Runs the effects subscription until killed, like a deployed worker would.
"""

from __future__ import annotations

import sys
import threading

from kafka import KafkaConsumer

from libs.events.clock import SystemClock
from libs.events.embedded import EmbeddedSubscriber
from libs.events.kafka import KafkaSubscriber, consumer_options, make_producer
from libs.events.runner import Runner, Worker
from libs.events.store import EventStore
from libs.events.types import CATALOG
from libs.platform.database import make_engine
from tests.support.effects import effects_subscription


def main(argv: list[str]) -> None:
    backend, url = argv[0], argv[1]
    store = EventStore(make_engine(url), CATALOG, SystemClock())
    subscription = effects_subscription()
    worker: Worker
    if backend == "embedded":
        worker = EmbeddedSubscriber(subscription, store, store.clock, batch_size=20)
    else:
        bootstrap, group = [argv[2]], argv[3]
        worker = KafkaSubscriber(
            subscription,
            store,
            store.clock,
            consumer_factory=lambda: KafkaConsumer(
                **{**consumer_options(bootstrap, group, 50), "max_poll_records": 20}
            ),
            producer_factory=lambda: make_producer(bootstrap),
        )
    Runner([worker], poll_interval=0.02).start()
    print("consumer started", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
