"""The two delivery backends behind one test interface: append, deliver, redeliver, consume."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from kafka import KafkaConsumer
from sqlalchemy import delete

from libs.events.embedded import EmbeddedSubscriber
from libs.events.kafka import KafkaSubscriber, Relay, consumer_options, make_producer
from libs.events.store import EventStore
from libs.events.subscription import Subscription
from libs.events.tables import subscription_checkpoints
from tests.support.kafka_broker import KafkaBroker


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def subscriber(self, subscription: Subscription) -> EmbeddedSubscriber:
        return EmbeddedSubscriber(subscription, self.store, self.store.clock, batch_size=50)

    def deliver(
        self, subscriber: EmbeddedSubscriber, until: Callable[[], bool], timeout: float = 30
    ) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("delivery did not converge")
            if not subscriber.run_once():
                time.sleep(0.02)

    def redeliver_everything(self, subscription: Subscription) -> EmbeddedSubscriber:
        """Forget the checkpoint (not the tracking): every event arrives a second time."""
        with self.store.transaction() as conn:
            conn.execute(
                delete(subscription_checkpoints).where(
                    subscription_checkpoints.c.subscription == subscription.name
                )
            )
        return self.subscriber(subscription)


class KafkaBackend:
    name = "kafka"

    def __init__(self, store: EventStore, broker: KafkaBroker) -> None:
        self.store = store
        self.broker = broker
        self.relay = Relay(store, self.producer)
        self._subscribers: list[KafkaSubscriber] = []

    def producer(self) -> object:
        return make_producer([self.broker.bootstrap])

    def consumer_factory(self, group: str) -> Callable[[], KafkaConsumer]:
        options = {
            **consumer_options([self.broker.bootstrap], group, 50),
            "session_timeout_ms": 6000,
            "max_poll_interval_ms": 10000,
            "max_poll_records": 50,
        }
        return lambda: KafkaConsumer(**options)

    def subscriber(self, subscription: Subscription, group: str | None = None) -> KafkaSubscriber:
        subscriber = KafkaSubscriber(
            subscription,
            self.store,
            self.store.clock,
            self.consumer_factory(group or f"{subscription.name}-{uuid.uuid4().hex[:6]}"),
            self.producer,
        )
        self._subscribers.append(subscriber)
        return subscriber

    def deliver(
        self, subscriber: KafkaSubscriber, until: Callable[[], bool], timeout: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError("delivery did not converge")
            self.relay.run_once()
            subscriber.run_once(timeout_ms=200)

    def redeliver_everything(self, subscription: Subscription) -> KafkaSubscriber:
        """A new consumer group reads every topic from offset 0: all of it is redelivered."""
        return self.subscriber(subscription)

    def close(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()
        self.relay.close()
