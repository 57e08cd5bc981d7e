"""Nemeses that write to the broker directly: duplicate delivery (F8) and poison records (F9)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from bench.chaos.checker import TICKETS_TOPIC
from bench.chaos.nemeses import Nemesis, restart
from libs.events.catalog import DLQ_SUFFIX

REWIND = 1000  # offsets a group is sent back (RELIABILITY.md F8)
BIG_VALUE_BYTES = 10 * 1024 * 1024


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=[bootstrap], acks="all", max_request_size=BIG_VALUE_BYTES + 2**20
    )


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


class DuplicateDelivery(Nemesis):
    """Both ways a record arrives twice: the newest records produced again, and one consumer
    group (its service stopped) sent back REWIND offsets on every partition."""

    fault, title = "F8", "duplicate delivery (seek back, produce twice)"

    def start(self) -> None:
        bootstrap = self.stage.broker.bootstrap
        self.service = self.stage.rng.choice(("routing", "sla", "notify", "query"))
        self.stage.deployment.processes[self.service].stop()
        rewound = self._rewind(bootstrap, self.service)
        self._note(f"group {self.service} sent back {rewound} offsets")
        copied = self._produce_again(bootstrap, 200)
        self._note(f"{copied} records produced a second time")

    def heal(self) -> None:
        restart(self.stage.deployment, self.service)

    @staticmethod
    def _rewind(bootstrap: str, group: str, timeout_s: float = 30) -> int:
        # A group's offsets can be set from outside only while it has no members: the member
        # just stopped may take until its session times out to leave.
        consumer = KafkaConsumer(
            bootstrap_servers=[bootstrap], group_id=group, enable_auto_commit=False
        )
        try:
            partitions = _partitions(consumer, TICKETS_TOPIC)
            consumer.assign(partitions)
            committed = {tp: consumer.committed(tp) or 0 for tp in partitions}
            target = {
                tp: OffsetAndMetadata(max(0, c - REWIND), "", -1) for tp, c in committed.items()
            }
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    consumer.commit(target)
                    break
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            return sum(
                c - t.offset for c, t in zip(committed.values(), target.values(), strict=True)
            )
        finally:
            consumer.close()

    @staticmethod
    def _produce_again(bootstrap: str, count: int) -> int:
        consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False)
        producer = _producer(bootstrap)
        try:
            partitions = _partitions(consumer, TICKETS_TOPIC)
            consumer.assign(partitions)
            ends = consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, max(0, ends[tp] - count // len(partitions)))
            copied = 0
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        if record.offset < ends[tp]:
                            headers = [(k, v) for k, v in record.headers or []]
                            producer.send(
                                tp.topic,
                                key=record.key,
                                value=record.value,
                                headers=headers,
                                partition=tp.partition,
                            )
                            copied += 1
            producer.flush(30)
            return copied
        finally:
            producer.close(5)
            consumer.close()


class PoisonRecords(Nemesis):
    """Records no consumer can apply, each to a random partition of the tickets topic, each
    with its own ce_id so the checker finds it in the dead-letter topic."""

    fault, title = "F9", "poison records: malformed, unknown type, future version, 10 MB"

    def start(self) -> None:
        self._allow_big_records()
        producer = _producer(self.stage.broker.bootstrap)
        self.poison: dict[str, str] = {}
        try:
            partitions = sorted(producer.partitions_for(TICKETS_TOPIC))
            for kind, type_, value in self._kinds():
                event_id = str(uuid.uuid4())
                stream = f"ticket-{uuid.uuid4()}"
                headers = {
                    "ce_specversion": "1.0",
                    "ce_id": event_id,
                    "ce_source": "chaos/ticket",
                    "ce_type": type_,
                    "ce_subject": stream,
                    "ce_time": datetime.now(UTC).isoformat(),
                    "ce_streamversion": "1",
                    "ce_position": "0",
                    "content-type": "application/json",
                }
                producer.send(
                    TICKETS_TOPIC,
                    key=stream.encode(),
                    value=value,
                    headers=[(k, v.encode()) for k, v in headers.items()],
                    partition=self.stage.rng.choice(partitions),
                ).get(60)
                self.poison[event_id] = kind
                self._note(f"produced {kind} ({len(value)} bytes)")
        finally:
            producer.close(5)

    def _allow_big_records(self) -> None:
        """Kafka refuses records over 1 MB by default; an operator who raised the tickets
        topic's limit is the case where a 10 MB record can reach the consumers at all."""
        limit = str(BIG_VALUE_BYTES + 2**20)
        with self.stage.broker.admin() as admin:
            admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, TICKETS_TOPIC, {"max.message.bytes": limit}
                    )
                ]
            )
        self._note(f"{TICKETS_TOPIC} max.message.bytes raised to {limit}")

    @staticmethod
    def _kinds() -> list[tuple[str, str, bytes]]:
        big = orjson.dumps({"number": "1", "body": "x" * BIG_VALUE_BYTES})
        return [
            ("malformed JSON", "deskstream.TicketCreated.v1", b'{"number": "1", "subj'),
            ("unknown type", "deskstream.NoSuchThingHappened.v1", b"{}"),
            ("future schema version", "deskstream.TicketCreated.v99", b'{"number": "1"}'),
            ("10 MB value", "deskstream.TicketCreated.v1", big),
        ]

    def verify(self, timeout_s: float = 60) -> list[str]:
        """Every poison record is in the dead-letter topic (the partitions kept flowing: the
        checker saw the load's tickets through)."""
        found = self._dead_lettered(timeout_s)
        missing = [kind for event_id, kind in self.poison.items() if event_id not in found]
        for event_id, subscriptions in found.items():
            if event_id in self.poison:
                self._note(f"{self.poison[event_id]} dead-lettered by {sorted(subscriptions)}")
        return [f"{kind} not in {TICKETS_TOPIC}{DLQ_SUFFIX}" for kind in missing]

    def _dead_lettered(self, timeout_s: float) -> dict[str, set[str]]:
        consumer = KafkaConsumer(
            bootstrap_servers=[self.stage.broker.bootstrap],
            enable_auto_commit=False,
            max_partition_fetch_bytes=2 * BIG_VALUE_BYTES,
        )
        found: dict[str, set[str]] = {}
        try:
            partitions = _partitions(consumer, TICKETS_TOPIC + DLQ_SUFFIX)
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not set(self.poison) <= set(found):
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        headers: dict[str, Any] = {k: v for k, v in record.headers or []}
                        event_id = (headers.get("ce_id") or b"").decode()
                        subscription = (headers.get("dlq_subscription") or b"?").decode()
                        found.setdefault(event_id, set()).add(subscription)
        finally:
            consumer.close()
        return found
