"""The shared Kafka consumer engine (the pipeline's subscriptions and the inbound topic run on
it): what it processed but could not commit yet — a commit that fails as the group rebalances —
is committed when its partitions are revoked or it shuts down, so the next owner of the
partition does not handle those records a second time."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError

from libs.events.catalog import INBOUND_TOPIC
from libs.events.kafka import consumer_options, make_producer
from libs.events.kafka_consumer import KafkaConsumerEngine
from libs.events.runner import Runner
from tests.support.kafka_broker import KafkaBroker

KEY = b"one-partition"  # every record on one partition: its first commit is the one that fails


class FirstCommitFails(KafkaConsumer):
    """A member whose first offset commit is refused, as the broker refuses one mid-rebalance."""

    refused = False

    def commit(self, offsets: Any = None, **kwargs: Any) -> Any:
        if not self.refused:
            self.refused = True
            raise CommitFailedError("the group is rebalancing")
        return super().commit(offsets, **kwargs)


class NoDeadLetters:
    def publish_record(
        self, tp: TopicPartition, record: Any, subscription: str, error: str
    ) -> None:
        raise AssertionError(f"dead-lettered {record!r}: {error}")

    def close(self) -> None:
        pass


class Member:
    """One consumer-group member on the engine, recording what its handler got."""

    def __init__(self, broker: KafkaBroker, group: str, handled: list[bytes], cls: type) -> None:
        options = {
            **consumer_options([broker.bootstrap], group, 50),
            "session_timeout_ms": 6000,
            "max_poll_interval_ms": 10000,
        }
        self.engine: KafkaConsumerEngine[bytes] = KafkaConsumerEngine(
            group,
            [INBOUND_TOPIC],
            lambda: cls(**options),
            NoDeadLetters(),
            lambda record: record.value,
            lambda batch: handled.extend(batch.items),
        )

    def handle_until(self, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not check():
            assert time.monotonic() < deadline, "timed out"
            with contextlib.suppress(CommitFailedError):  # the runner would back off and retry
                self.engine.run_once(timeout_ms=100)


def produce(broker: KafkaBroker, *values: bytes) -> None:
    producer = make_producer([broker.bootstrap])
    try:
        for value in values:
            producer.send(INBOUND_TOPIC, key=KEY, value=value)
        producer.flush(10)
    finally:
        producer.close()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_second_member_joining_does_not_rehandle_what_the_first_processed(
    broker: KafkaBroker,
) -> None:
    group = f"engine-{uuid.uuid4().hex[:6]}"
    handled: list[bytes] = []
    first = [f"r{i}".encode() for i in range(5)]
    produce(broker, *first)
    a = Member(broker, group, handled, FirstCommitFails)
    a.handle_until(lambda: len(handled) >= len(first))  # processed; its commit was refused

    b = Member(broker, group, handled, KafkaConsumer)
    runners = [Runner([m.engine], poll_interval=0.05, max_backoff=0.2) for m in (a, b)]
    for runner in runners:
        runner.start()
    try:
        # Joining revokes the first member's partitions: it commits what it processed then.
        wait_for(lambda: _assigned(b), "the second member to get partitions")
        produce(broker, b"after")
        wait_for(lambda: b"after" in handled, "the record produced after the rebalance")
    finally:
        for runner in runners:
            runner.stop()
    assert handled == [*first, b"after"]


def test_shutdown_commits_what_was_processed(broker: KafkaBroker) -> None:
    group = f"engine-{uuid.uuid4().hex[:6]}"
    handled: list[bytes] = []
    first = [f"r{i}".encode() for i in range(3)]
    produce(broker, *first)
    a = Member(broker, group, handled, FirstCommitFails)
    a.handle_until(lambda: len(handled) >= len(first))
    a.engine.close()

    produce(broker, b"after")
    b = Member(broker, group, handled, KafkaConsumer)
    try:
        b.handle_until(lambda: b"after" in handled)
    finally:
        b.engine.close()
    assert handled == [*first, b"after"]


def _assigned(member: Member) -> bool:
    consumer = member.engine._consumer
    return consumer is not None and bool(consumer.assignment())
