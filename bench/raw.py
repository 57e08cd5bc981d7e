"""Raw limits of the infrastructure, without Deskstream in the way.

* PostgreSQL: single-row INSERT + COMMIT (each row its own transaction) into a table with a
  bigserial and a jsonb column, with psycopg 3 directly, over one connection and over several.
* Broker: kafka-python KafkaProducer (acks=all, idempotent) sending ~500-byte values, flushed
  once at the end.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from kafka import KafkaProducer
from psycopg.types.json import Jsonb

PAYLOAD_BYTES = 500


def _payload(i: int) -> dict[str, Any]:
    """A ticket-like JSON document of roughly PAYLOAD_BYTES bytes."""
    doc: dict[str, Any] = {
        "type": "TicketCreated",
        "seq": i,
        "requester": {"email": f"bench{i}@example.com", "name": "Bench Requester"},
        "subject": f"Benchmark ticket {i}",
    }
    doc["message"] = "x" * max(0, PAYLOAD_BYTES - len(str(doc)) - 16)
    return doc


def _insert_rows(dsn: str, start: int, count: int) -> None:
    with psycopg.connect(dsn) as conn:
        for i in range(start, start + count):
            conn.execute("INSERT INTO bench_raw (payload) VALUES (%s)", (Jsonb(_payload(i)),))
            conn.commit()


def pg_insert_rate(dsn: str, rows: int, connections: int = 1) -> dict[str, Any]:
    """Rows/s of single-row INSERT+COMMIT; ``rows`` in total, split over ``connections``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw "
            "(id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
        )
    share, extra = divmod(rows, connections)
    counts = [share + (1 if c < extra else 0) for c in range(connections)]
    starts = [sum(counts[:c]) for c in range(connections)]
    errors: list[BaseException] = []

    def work(start: int, count: int) -> None:
        try:
            _insert_rows(dsn, start, count)
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, n), name=f"pg-insert-{c}")
        for c, (s, n) in enumerate(zip(starts, counts, strict=True))
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"PostgreSQL insert benchmark failed: {errors[0]!r}") from errors[0]
    return {
        "rows": rows,
        "connections": connections,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rows / elapsed, 1),
    }


def broker_produce_rate(bootstrap: str, topic: str, messages: int) -> dict[str, Any]:
    """Messages/s through KafkaProducer(acks=all, idempotent), timed from first send to flush."""
    value = b"v" * PAYLOAD_BYTES
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="deskstream-bench",
        request_timeout_ms=30_000,
    )
    try:
        # Warm up metadata and the producer id so that only steady-state sending is timed.
        producer.send(topic, value=value, key=b"warmup").get(timeout=30)
        began = time.perf_counter()
        futures = [producer.send(topic, value=value, key=str(i).encode()) for i in range(messages)]
        producer.flush(timeout=120)
        elapsed = time.perf_counter() - began
    finally:
        producer.close(timeout=10)
    failed = [f for f in futures if not f.succeeded()]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {messages} messages not acknowledged: {failed[0].exception!r}"
        )
    return {
        "messages": messages,
        "value_bytes": PAYLOAD_BYTES,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(messages / elapsed, 1),
        "mb_per_s": round(messages * PAYLOAD_BYTES / elapsed / 1e6, 2),
    }
