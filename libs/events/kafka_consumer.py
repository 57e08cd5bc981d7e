"""The one Kafka consumer engine: the pipeline's subscriptions and intake's inbound topic run on it.

Per partition batch the steps are: decode each record (one that cannot be decoded goes to the
DLQ as it came), handle the decoded records in one database transaction, commit the next offset
(offset + 1), dead-letter what the handler refused, and stop after `max_consecutive_failures`
failures in a row. The offset is committed only after the transaction committed; what was
processed but not yet committed (a commit that failed) is committed again when the partitions
are revoked (a rebalance) and on shutdown, so the next owner does not handle it twice.

What a record means is the caller's: the decoder and the handler are passed in, so this module
knows nothing of the services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from libs.events import metrics
from libs.events.subscription import SubscriptionStopped

log = logging.getLogger(__name__)
T = TypeVar("T")


class RecordRefused(Exception):
    """Raised by a decoder or a handler: the record goes to the DLQ as it came, with `reason`.

    `failure` counts towards stopping the consumer (an unexpected error, more likely a broken
    deploy than bad data); a plain refusal (garbage, no mapping) does not.
    """

    def __init__(self, reason: str, *, failure: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


class RawDeadLetters(Protocol):
    def publish_record(
        self, tp: TopicPartition, record: Any, subscription: str, error: str
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Records of one partition handled in one transaction, with what the decoder made of them."""

    tp: TopicPartition
    records: Sequence[Any]
    items: Sequence[T]

    @property
    def origin(self) -> str:
        first, last = self.records[0].offset, self.records[-1].offset
        return f"{self.tp.topic}/{self.tp.partition}/{first}..{last}"


Decoder = Callable[[Any], T]  # a consumed record -> what the handler gets; raises RecordRefused
Handler = Callable[[Batch[T]], None]  # one transaction; raises RecordRefused, or to retry


def record_origin(tp: TopicPartition, record: Any) -> str:
    """Where a consumed record came from: topic/partition/offset."""
    return f"{tp.topic}/{tp.partition}/{record.offset}"


def report_lag(name: str, consumer: KafkaConsumer, tp: TopicPartition, last_offset: int) -> None:
    """The consumer-lag gauge once the records up to `last_offset` are processed (unchanged
    while the consumer does not know the partition's end yet)."""
    highwater = consumer.highwater(tp)
    if highwater is not None:
        metrics.CONSUMER_LAG.labels(name).set(max(0, highwater - last_offset - 1))


class KafkaConsumerEngine(Generic[T]):
    """One consumer-group member. Errors other than refusals propagate to the runner (which
    backs off): the unprocessed records are fetched again, the processed ones stay committed."""

    def __init__(
        self,
        name: str,
        topics: Sequence[str],
        consumer_factory: Callable[[], KafkaConsumer],
        dead_letters: RawDeadLetters,
        decoder: Decoder[T],
        handler: Handler[T],
        *,
        records_per_transaction: int | None = None,  # None: a partition's whole fetched batch
        max_consecutive_failures: int = 10,
    ) -> None:
        self.name = name
        self.topics = sorted(topics)
        self.consumer_factory = consumer_factory
        self.dead_letters = dead_letters
        self.decoder = decoder
        self.handler = handler
        self.records_per_transaction = records_per_transaction
        self.max_consecutive_failures = max_consecutive_failures
        self.consecutive_failures = 0
        self._processed: dict[TopicPartition, int] = {}  # next offset, not committed yet
        self._consumer: KafkaConsumer | None = None

    def _consumer_or_new(self) -> KafkaConsumer:
        if self._consumer is None:
            consumer = self.consumer_factory()
            consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
            self._consumer = consumer
        return self._consumer

    def run_once(self, timeout_ms: int = 500) -> int:
        consumer = self._consumer_or_new()
        polled = list(consumer.poll(timeout_ms=timeout_ms).items())
        processed = 0
        for index, (tp, records) in enumerate(polled):
            try:
                processed += self._partition(consumer, tp, records)
            except BaseException:
                # The other partitions' records were fetched but not processed: fetch them again.
                for later, later_records in polled[index + 1 :]:
                    consumer.seek(later, later_records[0].offset)
                raise
        return processed

    def _partition(self, consumer: KafkaConsumer, tp: TopicPartition, records: list[Any]) -> int:
        size = self.records_per_transaction or len(records)
        done = 0
        try:
            while done < len(records):
                chunk = records[done : done + size]
                self._handle(tp, chunk)
                done += len(chunk)
                self._processed[tp] = chunk[-1].offset + 1
                if self.consecutive_failures >= self.max_consecutive_failures:
                    break
        finally:
            if done < len(records):  # not processed: the same records come again after a backoff
                consumer.seek(tp, records[done].offset)
            last = records[done - 1].offset if done else records[0].offset - 1
            report_lag(self.name, consumer, tp, last)  # the unprocessed ones are still lag
            # Last: if the commit fails, the offset stays pending for the revocation or close.
            self._commit(consumer, [tp])
        self._stop_if_failing()
        return done

    def _decode(self, tp: TopicPartition, records: Sequence[Any]) -> Batch[T]:
        kept, items = [], []
        for record in records:
            try:
                items.append(self.decoder(record))
                kept.append(record)
            except RecordRefused as exc:
                self._dead_letter(tp, record, exc.reason)
        return Batch(tp, kept, items)

    def _handle(self, tp: TopicPartition, records: Sequence[Any]) -> None:
        """Decode, then handle what was decodable in one transaction."""
        batch = self._decode(tp, records)
        if not batch.items:
            return
        try:
            self.handler(batch)
        except RecordRefused as exc:
            for record in batch.records:
                self._dead_letter(tp, record, exc.reason)
            if exc.failure:
                self.consecutive_failures += 1
            return
        self.consecutive_failures = 0

    def _commit(self, consumer: KafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        offsets = self._uncommitted(partitions)
        if offsets:
            consumer.commit(offsets)
            for tp in offsets:
                self._processed.pop(tp, None)

    def _uncommitted(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        return {
            tp: OffsetAndMetadata(self._processed[tp], "", -1)
            for tp in partitions
            if tp in self._processed
        }

    def _dead_letter(self, tp: TopicPartition, record: Any, error: str) -> None:
        origin = record_origin(tp, record)
        log.warning("%s: dead-lettering the record at %s: %s", self.name, origin, error)
        self.dead_letters.publish_record(tp, record, self.name, error)

    def _stop_if_failing(self) -> None:
        if self.consecutive_failures >= self.max_consecutive_failures:
            raise SubscriptionStopped(
                f"{self.consecutive_failures} records in a row failed (see the log and the DLQ)"
            )

    async def commit_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Commit what was processed on the revoked partitions, then forget it: another member
        may own them next and move them on. Runs on kafka-python's IO loop, which a blocking
        commit would deadlock: the asynchronous commit is awaited instead."""
        offsets = self._uncommitted(revoked)
        for tp in revoked:
            self._processed.pop(tp, None)
        if offsets and self._consumer is not None:
            try:
                await self._consumer.commit_async(offsets)
            except Exception:  # the records come again, and the handlers recognise them
                log.warning("%s: cannot commit on revocation", self.name, exc_info=True)

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._commit(self._consumer, list(self._processed))
            except Exception:  # the records come again, and the handlers recognise them
                log.warning("%s: cannot commit on shutdown", self.name, exc_info=True)
            self._processed.clear()
            self._consumer.close()
            self._consumer = None
        self.dead_letters.close()


class _CommitOnRevoke(AsyncConsumerRebalanceListener):
    def __init__(self, engine: KafkaConsumerEngine[Any]) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.engine.commit_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass
