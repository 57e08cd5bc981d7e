"""CloudEvents in on Kafka (PostgreSQL + a Kafka-protocol broker): intake's consumer of
deskstream.inbound.v1 applies binary-mode records through the same event mappings as HTTP —
a duplicate has no second effect, and a garbage record goes to the DLQ while the rest flows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from libs.events.catalog import DLQ_SUFFIX, INBOUND_TOPIC
from libs.events.kafka import consumer_options, make_producer
from libs.events.runner import Runner
from services.intake.config_resources import create_thing
from services.intake.entrypoints.inbound_worker import GROUP, InboundConsumer
from services.platform import Platform
from services.workers import workers_for
from tests.support.desk import desk_settings, open_platform
from tests.support.kafka_broker import KafkaBroker

DLQ = INBOUND_TOPIC + DLQ_SUFFIX
SOURCE = "//monitoring/prod"


@pytest.fixture
def platform(postgres_url: str, broker: KafkaBroker, tmp_path: Path) -> Iterator[Platform]:
    broker.create_topics([DLQ])  # the fixture provisions the backbone's topics only
    settings = desk_settings(
        tmp_path, postgres_url, kafka_bootstrap=(broker.bootstrap,), kafka_fetch_max_wait_ms=50
    )
    with open_platform(settings) as platform:
        yield platform


def record(event_id: str, alert_id: str, kind: str = "fired") -> tuple[bytes, bytes, list[Any]]:
    headers = {
        "ce_specversion": "1.0",
        "ce_id": event_id,
        "ce_source": SOURCE,
        "ce_type": f"com.example.alert.{kind}",
        "content-type": "application/json",
    }
    value = {"alert_id": alert_id, "summary": f"{alert_id} alert"}
    return (
        f"{SOURCE} {event_id}".encode(),  # keyed by source + id, as on the contract
        orjson.dumps(value),
        [(k, v.encode()) for k, v in headers.items()],
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_inbound_topic_opens_tickets_once_and_dead_letters_garbage(
    platform: Platform, broker: KafkaBroker
) -> None:
    # `serve intake` in Kafka mode runs this consumer (besides any IMAP pollers).
    assert GROUP in [w.name for w in workers_for(platform, ["intake"])]
    create_thing(
        platform.store,
        "event-mapping",
        {
            "name": "Alerts",
            "type": "com.example.alert.fired",
            "subject": "Alert: {data.summary}",
            "body": "{data.summary} ({id})",
            "requester_email": "alerts@monitoring.example",
            "correlation": "{data.alert_id}",
        },
        actor="test",
    )
    options = {
        **consumer_options([broker.bootstrap], GROUP, 50),
        "session_timeout_ms": 6000,
        "max_poll_interval_ms": 10000,
    }
    consumer = InboundConsumer(
        platform.store,
        platform.clock,
        lambda: KafkaConsumer(**options),
        platform.kafka_producer,
        max_open_tickets=0,
    )
    runner = Runner([consumer], poll_interval=0.05, idle_wait=0.1)
    runner.start()
    producer = make_producer([broker.bootstrap])
    try:
        for key, value, headers in [
            record("evt-1", "disk-full"),
            record("evt-1", "disk-full"),  # redelivered by the sender
            record("evt-2", "disk-full"),  # the same alert again: a message on its ticket
            record("evt-3", "cpu-hot"),
            record("evt-4", "cpu-hot", kind="unknown"),  # no mapping
        ]:
            producer.send(INBOUND_TOPIC, key=key, value=value, headers=headers)
        producer.send(INBOUND_TOPIC, key=b"junk", value=b"\x00garbage", headers=[])
        producer.flush(10)

        wait_for(lambda: _caught_up(broker, 6), "the consumer group to commit every record")
    finally:
        producer.close()
        runner.stop()

    created = [e for e in platform.store.read_all(0, 1000) if e.type == "TicketCreated"]
    assert sorted(e.data["subject"] for e in created) == [
        "Alert: cpu-hot alert",
        "Alert: disk-full alert",
    ]
    assert all(e.data["channel"] == "event" for e in created)
    disk = next(e for e in created if "disk" in e.data["subject"])
    thread = platform.store.read_stream(disk.stream_id)
    assert [e.type for e in thread] == ["TicketCreated", "MessageAppended"]
    # Either of the two events may come first (they are keyed to different partitions).
    assert {thread[0].data["body"], thread[1].data["body"]} == {
        "disk-full alert (evt-1)",
        "disk-full alert (evt-2)",
    }
    messages = [e for e in platform.store.read_all(0, 1000) if e.type == "MessageAppended"]
    assert len(messages) == 1

    dead = _read_all(broker, DLQ, expected=2)
    errors = sorted(dict(r.headers)["dlq_error"].decode() for r in dead)
    assert errors[0].startswith("no_mapping: no enabled event mapping for type")
    assert errors[1].startswith("not a valid CloudEvent")
    assert {r.value for r in dead} == {b"\x00garbage", record("evt-4", "cpu-hot")[1]}


def _caught_up(broker: KafkaBroker, produced: int) -> bool:
    """The group has committed past every record produced (offsets start at 0; Tansu answers
    ListOffsets wrongly, so the count, not the topic's end offsets, is the measure)."""
    # Never subscribes, so it only reads the group's offsets; it does not join the group.
    reader = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=GROUP, enable_auto_commit=False
    )
    try:
        partitions = reader.partitions_for_topic(INBOUND_TOPIC) or ()
        committed = [reader.committed(TopicPartition(INBOUND_TOPIC, p)) or 0 for p in partitions]
    finally:
        reader.close()
    return sum(committed) >= produced


def _read_all(broker: KafkaBroker, topic: str, expected: int) -> list[Any]:
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + 30
        while len(found) < expected and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                found.extend(records)
        assert len(found) == expected, found
        return found
    finally:
        reader.close()
