"""Exercise every helper in tests.support.servers against real servers and print timings.

Run from the repository root: ``python -m tests.support.selfcheck``. Exit code 0 means all
checks passed; server logs stay in the printed directory for inspection.
"""

from __future__ import annotations

import logging
import smtplib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import psycopg
import sqlalchemy
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError

from tests.support.kafka_broker import TEST_CONSUMER_SETTINGS, KafkaBroker
from tests.support.servers import PostgresDatabase, SmtpSink

TOPIC = "selfcheck.events"
PARTITIONS = 3
TOTAL = 200
FIRST_BATCH = 50
DEADLINE_S = 60.0

timings: dict[str, float] = {}


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@contextmanager
def timed(name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    timings[name] = time.monotonic() - started


# --- Kafka -------------------------------------------------------------------------------------


def make_producer(broker: KafkaBroker) -> KafkaProducer:
    # Explicit rather than relying on kafka-python 3 defaults: the services will use these.
    return KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_block_ms=10_000,
    )


def make_consumer(broker: KafkaBroker, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **TEST_CONSUMER_SETTINGS,
    )
    consumer.subscribe([TOPIC])
    return consumer


def produce(broker: KafkaBroker, values: range) -> None:
    producer = make_producer(broker)
    try:
        futures = [
            producer.send(TOPIC, key=f"ticket-{i % 17}".encode(), value=str(i).encode())
            for i in values
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=10)  # raises if any send failed
    finally:
        producer.close(timeout=10)


def poll_values(
    consumer: KafkaConsumer, wanted: int, deadline_s: float = DEADLINE_S
) -> tuple[list[int], float | None]:
    """Poll until ``wanted`` records arrived (never more: max_records caps each poll).

    Returns the values and the seconds until the group had assigned partitions (None if it
    never did), which is the join time for a freshly subscribed consumer.
    """
    values: list[int] = []
    started = time.monotonic()
    joined_after = 0.0 if consumer.assignment() else None
    while len(values) < wanted and time.monotonic() - started < deadline_s:
        batches = consumer.poll(timeout_ms=200, max_records=wanted - len(values))
        if joined_after is None and consumer.assignment():
            joined_after = time.monotonic() - started
        values.extend(int(record.value) for batch in batches.values() for record in batch)
    return values, joined_after


def committed_total(consumer: KafkaConsumer) -> int:
    partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    return sum(consumer.committed(tp) or 0 for tp in partitions)


def consume_first_batch(broker: KafkaBroker, group: str) -> set[int]:
    consumer = make_consumer(broker, group)
    try:
        values, joined_after = poll_values(consumer, FIRST_BATCH)
        timings["group join (fresh group)"] = joined_after or -1.0
        check(len(values) == FIRST_BATCH, f"first batch got {len(values)} records")
        consumer.commit()
        check(committed_total(consumer) == FIRST_BATCH, "commit not visible")
    finally:
        consumer.close()
    return set(values)


def consume_rest_after_crash(broker: KafkaBroker, group: str, seen: set[int]) -> KafkaConsumer:
    consumer = make_consumer(broker, group)
    committed = committed_total(consumer)  # asks the coordinator; needs no assignment
    check(committed == FIRST_BATCH, f"committed after kill -9: {committed}, want {FIRST_BATCH}")
    rest, joined_after = poll_values(consumer, TOTAL - FIRST_BATCH)
    timings["group join (after restart)"] = joined_after or -1.0
    extra, _ = poll_values(consumer, 1, deadline_s=2.0)  # anything more is a duplicate
    check(not extra, f"unexpected extra records after resume: {extra}")
    check(len(rest) == len(set(rest)), "duplicates in the resumed batch")
    check(set(rest) == set(range(TOTAL)) - seen, "resumed batch is not exactly the remainder")
    consumer.commit()
    return consumer


def check_live_consumer_survives(broker: KafkaBroker, consumer: KafkaConsumer) -> None:
    """A consumer that stays up across a broker crash picks up new records afterwards."""
    timings["broker restart (kill -9, live consumer)"] = broker.restart(hard=True)
    started = time.monotonic()
    produce(broker, range(1000, 1010))
    got, _ = poll_values(consumer, 10)
    timings["live consumer recovery after kill -9"] = time.monotonic() - started
    check(sorted(got) == list(range(1000, 1010)), f"live consumer after restart got {got}")


def check_pause_resume(broker: KafkaBroker, consumer: KafkaConsumer) -> None:
    """While SIGSTOPped the broker accepts nothing; after SIGCONT the pending send lands."""
    producer = make_producer(broker)
    try:
        producer.send(TOPIC, value=b"0").get(timeout=10)  # connect before pausing
        poll_values(consumer, 1)
        broker.pause()
        future = producer.send(TOPIC, key=b"paused", value=b"2000")
        try:
            future.get(timeout=2)
            raise CheckFailed("send succeeded while the broker was paused")
        except KafkaTimeoutError:
            pass
        broker.resume()
        started = time.monotonic()
        future.get(timeout=30)
        timings["pending send completes after resume"] = time.monotonic() - started
        check(poll_values(consumer, 1)[0] == [2000], "record sent during pause not consumed")
    finally:
        producer.close(timeout=10)


def check_kafka(log_dir: Path) -> None:
    broker = KafkaBroker(log_dir=log_dir)
    try:
        timings["broker start (format + start)"] = broker.start()
        broker.create_topics([TOPIC], partitions=PARTITIONS)
        broker.create_topics([TOPIC], partitions=PARTITIONS)  # idempotent
        with timed(f"produce {TOTAL} (acks=all, idempotent)"):
            produce(broker, range(TOTAL))
        group = f"selfcheck-{uuid.uuid4().hex[:8]}"
        seen = consume_first_batch(broker, group)
        port = broker.port
        timings["broker restart (kill -9)"] = broker.restart(hard=True)
        check(broker.port == port, "port changed across restart")
        consumer = consume_rest_after_crash(broker, group, seen)
        try:
            check_live_consumer_survives(broker, consumer)
            check_pause_resume(broker, consumer)
        finally:
            consumer.close()
        timings["broker restart (SIGTERM)"] = broker.restart(hard=False)
        with broker.admin() as admin:
            check(TOPIC in admin.list_topics(), "topic lost across graceful restart")
    finally:
        broker.discard()


# --- SMTP and PostgreSQL -----------------------------------------------------------------------


def check_smtp() -> None:
    sink = SmtpSink()
    timings["smtp sink start"] = sink.start()
    try:
        message = EmailMessage()
        message["From"] = "desk@example.test"
        message["To"] = "customer@example.test"
        message["Subject"] = "Ticket #42 — réponse"
        message.set_content("Hello from the selfcheck")
        host, port = sink.url.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port), timeout=10) as client:
            client.send_message(message)
        mails = sink.wait_for(1, timeout=10)
        check(len(mails) == 1, f"got {len(mails)} mails")
        mail = mails[0]
        check(mail.mail_from == "desk@example.test", f"envelope from {mail.mail_from}")
        check(mail.rcpt_tos == ("customer@example.test",), f"envelope to {mail.rcpt_tos}")
        check(mail.message["Subject"] == "Ticket #42 — réponse", "subject mangled")
        body = mail.message.get_body()
        check(body is not None and "selfcheck" in body.get_content(), "body mangled")
    finally:
        sink.stop()


def check_postgres(log_dir: Path) -> None:
    database = PostgresDatabase(log_dir=log_dir)
    with timed("postgres create database"):
        url = database.create()
    maintenance_dsn = database.dsn.rsplit("/", 1)[0] + "/postgres"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            name = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
            check(name == database.name, f"SQLAlchemy URL reached {name}")
        # A session left open by a test must not block the drop (WITH (FORCE)).
        lingering = psycopg.connect(database.dsn, connect_timeout=5)
        with timed("postgres drop database (with open session)"):
            database.drop()
        lingering.close()
    finally:
        engine.dispose()
        database.drop()
    with psycopg.connect(maintenance_dsn, connect_timeout=5) as conn:
        cursor = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,))
        check(cursor.fetchone() is None, "database still exists after drop()")


def main() -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="deskstream-selfcheck-"))
    # Client libraries log reconnect noise during the crash tests; keep it out of stdout.
    logging.basicConfig(filename=log_dir / "clients.log", level=logging.INFO)
    checks: list[tuple[str, Callable[[], None]]] = [
        ("postgres", lambda: check_postgres(log_dir)),
        ("smtp", check_smtp),
        ("kafka", lambda: check_kafka(log_dir)),
    ]
    failed = False
    for name, run in checks:
        try:
            run()
            print(f"PASS {name}")
        except Exception as exc:
            failed = True
            print(f"FAIL {name}: {exc!r}")
    print(f"\nlogs: {log_dir}")
    for name, seconds in timings.items():
        print(f"  {name:<42} {seconds:7.3f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
