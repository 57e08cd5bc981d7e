"""intake's consumer of `deskstream.inbound.v1` (Kafka mode): each record is one CloudEvent
from an external system (binary mode: `ce_*` headers, the value is the data), applied through
the event mappings as `POST /api/v1/events` applies it.

Each record's effect commits in its own database transaction (idempotent by source + id); the
partition's next offset is committed only after that. A record that is no CloudEvent, or that
no mapping takes, goes to `deskstream.inbound.v1.dlq` with the error in its headers and the
partition goes on. Transient failures (database down) seek back and retry; unexpected errors
dead-letter the record, and after `max_consecutive_failures` of those in a row the consumer
stops and /readyz says why (more likely a broken deploy than bad data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from libs.events import metrics
from libs.events.catalog import INBOUND_TOPIC
from libs.events.clock import Clock
from libs.events.kafka import KafkaDeadLetters, record_origin, report_lag
from libs.events.store import EventStore
from libs.events.subscription import SubscriptionStopped, is_transient
from libs.platform.errors import DeskstreamError
from services.intake.domain import cloudevents
from services.intake.inbound import receive_cloudevent

log = logging.getLogger(__name__)
GROUP = "intake-inbound"


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
        self.consumer_factory = consumer_factory
        self.dead_letters = KafkaDeadLetters(producer_factory, clock)
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self._consumer: KafkaConsumer | None = None

    def run_once(self, timeout_ms: int = 500) -> int:
        if self._consumer is None:
            self._consumer = self.consumer_factory()
            self._consumer.subscribe([INBOUND_TOPIC])
        polled = list(self._consumer.poll(timeout_ms=timeout_ms).items())
        processed = 0
        for index, (tp, records) in enumerate(polled):
            try:
                processed += self._partition(self._consumer, tp, records)
            except BaseException:
                # The other partitions' records were fetched but not processed: fetch them again.
                for later, later_records in polled[index + 1 :]:
                    self._consumer.seek(later, later_records[0].offset)
                raise
        return processed

    def _partition(self, consumer: KafkaConsumer, tp: TopicPartition, records: list[Any]) -> int:
        done = 0
        try:
            for record in records:
                self._record(tp, record)
                done += 1
                if self.consecutive_failures >= self.max_consecutive_failures:
                    break
        finally:
            if done:
                consumer.commit({tp: OffsetAndMetadata(records[done - 1].offset + 1, "", -1)})
            if done < len(records):  # not processed: the same record comes again after a backoff
                consumer.seek(tp, records[done].offset)
        if self.consecutive_failures >= self.max_consecutive_failures:
            raise SubscriptionStopped(
                f"{self.consecutive_failures} records in a row failed (see the log and the DLQ)"
            )
        report_lag(self.name, consumer, tp, records[-1].offset)
        return done

    def _record(self, tp: TopicPartition, record: Any) -> None:
        headers = list(record.headers or [])
        try:
            event = cloudevents.from_kafka(headers, record.value)
        except DeskstreamError as exc:
            self._dead_letter(tp, record, f"not a valid CloudEvent: {exc.message}")
            return
        traceparent = next(
            (v.decode(errors="replace") for k, v in headers if k == "traceparent" and v), None
        )
        metadata = {"actor": f"kafka:{INBOUND_TOPIC}"}
        if traceparent:
            metadata["traceparent"] = traceparent
        try:
            received = receive_cloudevent(
                self.store, event, max_open_tickets=self.max_open_tickets, metadata=metadata
            )
        except DeskstreamError as exc:  # refused: no mapping, an unusable render, the rules
            self._dead_letter(tp, record, f"{exc.code}: {exc.message}")
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception(
                "%s: cannot process the record at %s", self.name, record_origin(tp, record)
            )
            self._dead_letter(tp, record, f"{type(exc).__name__}: {exc}")
            self.consecutive_failures += 1
            return
        self.consecutive_failures = 0
        metrics.EVENTS_CONSUMED.labels(self.name).inc()
        if received.duplicate:
            metrics.EVENTS_DUPLICATE.labels(self.name).inc()

    def _dead_letter(self, tp: TopicPartition, record: Any, error: str) -> None:
        origin = record_origin(tp, record)
        log.warning("%s: dead-lettering the record at %s: %s", self.name, origin, error)
        self.dead_letters.publish_record(tp, record, self.name, error)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self.dead_letters.close()
