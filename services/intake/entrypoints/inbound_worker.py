"""intake's consumer of `deskstream.inbound.v1` (Kafka mode): each record is one CloudEvent
from an external system (binary mode: `ce_*` headers, the value is the data), applied through
the event mappings as `POST /api/v1/events` applies it.

It runs on the shared consumer engine (libs/events/kafka_consumer.py) with intake's CloudEvents
codec as the decoder. Each record's effect commits in its own database transaction (idempotent
by source + id); the partition's next offset is committed only after that. A record that is no
CloudEvent, or that no mapping takes, goes to `deskstream.inbound.v1.dlq` with the error in its
headers and the partition goes on. Transient failures (database down) seek back and retry;
unexpected errors dead-letter the record, and after `max_consecutive_failures` of those in a
row the consumer stops and /readyz says why (more likely a broken deploy than bad data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from libs.events import metrics
from libs.events.catalog import INBOUND_TOPIC
from libs.events.clock import Clock
from libs.events.kafka import KafkaDeadLetters
from libs.events.kafka_consumer import Batch, KafkaConsumerEngine, RecordRefused
from libs.events.store import EventStore
from libs.events.subscription import is_transient
from libs.platform.errors import DeskstreamError
from services.intake.domain import cloudevents
from services.intake.domain.cloudevents import CloudEvent
from services.intake.inbound import receive_cloudevent

log = logging.getLogger(__name__)
GROUP = "intake-inbound"

# What the decoder makes of a record: the event, and the metadata its effects are recorded with.
Inbound = tuple[CloudEvent, dict[str, Any]]


def decode_record(record: Any) -> Inbound:
    headers = list(record.headers or [])
    try:
        event = cloudevents.from_kafka(headers, record.value)
    except DeskstreamError as exc:
        raise RecordRefused(f"not a valid CloudEvent: {exc.message}") from exc
    metadata = {"actor": f"kafka:{INBOUND_TOPIC}"}
    traceparent = next(
        (v.decode(errors="replace") for k, v in headers if k == "traceparent" and v), None
    )
    if traceparent:
        metadata["traceparent"] = traceparent
    return event, metadata


class InboundConsumer:
    """A consumer-group member of `intake-inbound`; runs in a Runner like every worker."""

    name = GROUP

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        consumer_factory: Callable[[], KafkaConsumer],
        producer_factory: Callable[[], KafkaProducer],
        *,
        max_open_tickets: int,
        max_consecutive_failures: int = 10,
    ) -> None:
        self.store = store
        self.max_open_tickets = max_open_tickets
        self.engine: KafkaConsumerEngine[Inbound] = KafkaConsumerEngine(
            GROUP,
            [INBOUND_TOPIC],
            consumer_factory,
            KafkaDeadLetters(producer_factory, clock),
            decode_record,
            self._handle,
            records_per_transaction=1,  # receive_cloudevent is one transaction per event
            max_consecutive_failures=max_consecutive_failures,
        )

    def run_once(self, timeout_ms: int = 500) -> int:
        return self.engine.run_once(timeout_ms)

    def _handle(self, batch: Batch[Inbound]) -> None:
        [(event, metadata)] = batch.items
        try:
            received = receive_cloudevent(
                self.store, event, max_open_tickets=self.max_open_tickets, metadata=metadata
            )
        except DeskstreamError as exc:  # refused: no mapping, an unusable render, the rules
            raise RecordRefused(f"{exc.code}: {exc.message}") from exc
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("%s: cannot process the record at %s", self.name, batch.origin)
            raise RecordRefused(f"{type(exc).__name__}: {exc}", failure=True) from exc
        metrics.EVENTS_CONSUMED.labels(self.name).inc()
        if received.duplicate:
            metrics.EVENTS_DUPLICATE.labels(self.name).inc()

    def close(self) -> None:
        self.engine.close()
