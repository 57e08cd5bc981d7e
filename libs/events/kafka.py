"""The Kafka backend: the relay (store -> topics) and consumer-group subscriptions.

Records are CloudEvents in binary mode: `ce_*` headers, the event data as the JSON body, key =
stream id. Consumers never auto-commit: the next offset is committed only after the batch's
database transaction committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Connection

from libs.events import metrics
from libs.events.catalog import DLQ_SUFFIX, TOPICS, topic_for
from libs.events.clock import Clock
from libs.events.dead_letters import payload_text
from libs.events.dead_letters import record as record_dead_letter
from libs.events.embedded import load_checkpoint, save_checkpoint
from libs.events.envelope import SOURCE, SPEC_VERSION, RecordedEvent, parse_cloudevent_type
from libs.events.kafka_consumer import (
    Batch,
    KafkaConsumerEngine,
    RecordRefused,
    record_origin,
)
from libs.events.store import EventStore
from libs.events.subscription import Subscription, SubscriptionProcessor
from libs.events.wakeup import waiter_for
from libs.platform.database import reading

log = logging.getLogger(__name__)
RELAY = "relay"


# -- codec ---------------------------------------------------------------------------------


def encode(event: RecordedEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": str(event.event_id),
        "ce_source": f"{SOURCE}/{event.stream_id.split('-', 1)[0]}",
        "ce_type": event.cloudevent_type,
        "ce_subject": event.stream_id,
        "ce_time": event.time.isoformat(),
        "content-type": "application/json",
        # Extension attributes (lower-case alphanumerics, per CloudEvents naming rules).
        "ce_streamversion": str(event.version),
        "ce_position": str(event.position),
        "ce_correlationid": event.correlation_id,
        "ce_dsmetadata": orjson.dumps(event.metadata).decode(),
    }
    if "causation_id" in event.metadata:
        headers["ce_causationid"] = str(event.metadata["causation_id"])
    if "traceparent" in event.metadata:
        headers["traceparent"] = str(event.metadata["traceparent"])
    return (
        event.stream_id.encode(),
        _body(event.data),
        [(k, v.encode()) for k, v in headers.items()],
    )


def _body(data: dict[str, Any]) -> bytes:
    # Data stored before the catalog refused integers past 64 bits still travels (and is
    # dead-lettered by the consumers that cannot read it) instead of stopping the relay.
    try:
        return orjson.dumps(data)
    except TypeError:
        return payload_text(data).encode()


class DecodeError(Exception):
    pass


def decode(
    headers: Sequence[tuple[str, bytes]], value: bytes | None, catalog: Any
) -> RecordedEvent:
    """A record back into a RecordedEvent (upcast). Raises DecodeError for anything unreadable."""
    try:
        h = {k: v.decode() for k, v in headers if v is not None}
        name, schema_version = parse_cloudevent_type(h["ce_type"])
        data = orjson.loads(value or b"")
        if not isinstance(data, dict):
            raise ValueError("body is not a JSON object")
        event = RecordedEvent(
            position=int(h["ce_position"]),
            event_id=uuid.UUID(h["ce_id"]),
            stream_id=h["ce_subject"],
            version=int(h["ce_streamversion"]),
            type=name,
            schema_version=schema_version,
            time=datetime.fromisoformat(h["ce_time"]),
            data=data,
            metadata=orjson.loads(h.get("ce_dsmetadata", "{}")),
        )
    except (KeyError, ValueError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise DecodeError(f"undecodable record: {exc!r}") from exc
    try:
        version, data = catalog.upcast(event.type, event.schema_version, event.data)
        errors = catalog.errors(event.type, data)
        if errors:
            raise ValueError(f"schema-invalid {event.type}: {errors}")
    except Exception as exc:
        return _with(event, poison=str(exc))
    return _with(event, schema_version=version, data=data)


def _with(event: RecordedEvent, **changes: Any) -> RecordedEvent:
    from dataclasses import replace

    return replace(event, **changes)


# -- producing -----------------------------------------------------------------------------


def make_producer(
    bootstrap: Sequence[str], *, idempotent: bool = True, **overrides: Any
) -> KafkaProducer:
    """acks=all always. Idempotence keeps retries from duplicating records; without it, one
    request in flight keeps per-partition order and consumers absorb the duplicates."""
    options: dict[str, Any] = {
        "bootstrap_servers": list(bootstrap),
        "acks": "all",
        "enable_idempotence": idempotent,
        "linger_ms": 2,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 30_000,
        "request_timeout_ms": 10_000,
        "max_in_flight_requests_per_connection": 5 if idempotent else 1,
        **overrides,
    }
    return KafkaProducer(**options)


class Relay:
    """Publishes the store in position order; marks a position only once the broker acked it.

    A crash between publish and mark republishes the tail: duplicates in the topic, never in
    effects (consumers track stream versions).
    """

    def __init__(
        self,
        store: EventStore,
        producer_factory: Callable[[], KafkaProducer],
        *,
        batch_size: int = 500,
        send_timeout_s: float = 30.0,
    ) -> None:
        self.store = store
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.send_timeout_s = send_timeout_s
        self._producer: KafkaProducer | None = None

    def run_once(self) -> int:
        with reading(self.store.engine) as conn:
            after = load_checkpoint(conn, RELAY)
        batch = self.store.read_all(after, self.batch_size)
        metrics.RELAY_LAG.set(max(0, self.store.head_position() - after))
        if not batch:
            return 0
        producer = self._producer or self.producer_factory()
        self._producer = producer
        try:
            futures = []
            for event in batch:
                key, value, headers = encode(event)
                futures.append(
                    producer.send(topic_for(event.stream_id), key=key, value=value, headers=headers)
                )
            producer.flush(timeout=self.send_timeout_s)
            for future in futures:
                future.get(timeout=self.send_timeout_s)  # raises if the broker did not ack
        except Exception:
            self.close()  # a fresh producer after a failure: no half-sent state carried over
            raise
        with self.store.engine.begin() as conn:
            save_checkpoint(conn, RELAY, batch[-1].position)
        for event in batch:
            metrics.EVENTS_PUBLISHED.labels(topic_for(event.stream_id)).inc()
        return len(batch)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:  # closing a producer to a dead broker may itself fail
                log.debug("producer close failed", exc_info=True)
            self._producer = None


# -- consuming -----------------------------------------------------------------------------


# Below kafka-python's default max_request_size and the broker's message.max.bytes (1 MB each).
DLQ_MAX_VALUE_BYTES = 512 * 1024


class KafkaDeadLetters:
    """Produces the record to `<topic>.dlq` with the error, and records it in the table."""

    def __init__(self, producer_factory: Callable[[], KafkaProducer], clock: Clock) -> None:
        self.producer_factory = producer_factory
        self.clock = clock
        self._producer: KafkaProducer | None = None
        self.origin = ""  # set by the consumer before each batch it may dead-letter from

    def dead_letter(
        self, conn: Connection, subscription: str, event: RecordedEvent, error: str
    ) -> None:
        key, value, headers = encode(event)
        self.publish(
            topic_for(event.stream_id), key, value, headers, subscription, self.origin, error
        )
        record_dead_letter(conn, self.clock, subscription, event, self.origin, error)

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        subscription: str,
        origin: str,
        error: str,
    ) -> None:
        """Send a record to `topic`'s DLQ as it was, plus why and where from (synchronously)."""
        self._producer = self._producer or self.producer_factory()
        extra = [
            ("dlq_error", error.encode()[:4000]),
            ("dlq_origin", origin.encode()),
            ("dlq_subscription", subscription.encode()),
        ]
        if value is not None and len(value) > DLQ_MAX_VALUE_BYTES:
            # A record too big for the producer's request limit would make the dead letter fail
            # and stall the partition; the head and the original size identify it, and the
            # origin header says where the whole record still is.
            extra.append(("dlq_truncated_from", str(len(value)).encode()))
            value = value[:DLQ_MAX_VALUE_BYTES]
        future = self._producer.send(
            topic + DLQ_SUFFIX, key=key, value=value, headers=[*headers, *extra]
        )
        future.get(timeout=30)

    def publish_record(
        self, tp: TopicPartition, record: Any, subscription: str, error: str
    ) -> None:
        """A consumed record that cannot be processed: to the DLQ as it came, with where it came
        from, and counted as dead-lettered."""
        headers = list(record.headers or [])
        origin = record_origin(tp, record)
        self.publish(tp.topic, record.key, record.value, headers, subscription, origin, error)
        metrics.EVENTS_DEAD_LETTERED.labels(subscription).inc()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def consumer_options(
    bootstrap: Sequence[str], group: str, fetch_max_wait_ms: int
) -> dict[str, Any]:
    return {
        "bootstrap_servers": list(bootstrap),
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 60_000,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "max_poll_records": 500,
    }


class KafkaSubscriber:
    """One consumer-group member feeding one subscription: the consumer engine with the
    CloudEvents binary codec; a partition's batch is applied in one transaction by the
    SubscriptionProcessor (stream versions, dead letters, stopping)."""

    def __init__(
        self,
        subscription: Subscription,
        store: EventStore,
        clock: Clock,
        consumer_factory: Callable[[], KafkaConsumer],
        producer_factory: Callable[[], KafkaProducer],
    ) -> None:
        self.store = store
        self.clock = clock
        self.dead_letters = KafkaDeadLetters(producer_factory, clock)
        self.processor = SubscriptionProcessor(subscription, store, self.dead_letters, clock)
        self.engine: KafkaConsumerEngine[RecordedEvent] = KafkaConsumerEngine(
            subscription.name,
            [TOPICS[c] for c in subscription.categories],
            consumer_factory,
            self.dead_letters,
            self._decode,
            self._handle,
        )

    @property
    def name(self) -> str:
        return self.processor.name

    def run_once(self, timeout_ms: int = 500) -> int:
        return self.engine.run_once(timeout_ms)

    def _decode(self, record: Any) -> RecordedEvent:
        try:
            return decode(record.headers or [], record.value, self.store.catalog)
        except Exception as exc:
            raise RecordRefused(str(exc)) from exc

    def _handle(self, batch: Batch[RecordedEvent]) -> None:
        self.dead_letters.origin = batch.origin
        self.processor.process(batch.items)

    def close(self) -> None:
        self.engine.close()


class RelayWorker:
    """Adapts the relay to the runner's (name, run_once, close) shape."""

    name = RELAY

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._waiter = waiter_for(relay.store.engine)

    def run_once(self) -> int:
        return self.relay.run_once()

    def wait_for_work(self, timeout: float) -> None:
        self._waiter.wait(timeout)

    def close(self) -> None:
        self.relay.close()
        self._waiter.close()


def broker_reachable(bootstrap: Sequence[str], timeout_s: float = 2.0) -> bool:
    """A TCP connect to any bootstrap server: cheap enough for a readiness probe."""
    import socket

    for server in bootstrap:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False
