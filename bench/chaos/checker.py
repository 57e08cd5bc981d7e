"""The one checker: acknowledged ⊆ store ⊆ topic ⊆ effects, effects per id = 1, per-ticket
order, and the query projection against the store (each check) and against a rebuild from
position 0 (`deskstream replay query` into a fresh database).

Effects of one ticket: routing's TicketRouted and sla's SlaApplied in its stream, notify's
autoresponse at the SMTP sink (one mail to the requester), query's row at the stream's version.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from libs.events.catalog import TOPICS
from services import migrations
from tests.support.servers import PostgresDatabase, SmtpSink

TICKETS_TOPIC = TOPICS["ticket"]
ONE_EACH = ("TicketRouted", "SlaApplied")  # effects that appear as events in the ticket stream


@dataclass
class Verdict:
    missing_store: list[str] = field(default_factory=list)  # acknowledged, no TicketCreated
    missing_topic: list[str] = field(default_factory=list)  # "<email>: <event in store only>"
    missing_effects: list[str] = field(default_factory=list)  # "<email>: <effect>"
    duplicated: list[str] = field(default_factory=list)  # "<email>: <what> x<n>"
    disorder: list[str] = field(default_factory=list)  # per-ticket order broken

    @property
    def clean(self) -> bool:
        return not (
            self.missing_store
            or self.missing_topic
            or self.missing_effects
            or self.duplicated
            or self.disorder
        )

    def lost(self, emails: set[str]) -> int:
        """Acknowledged tickets of ``emails`` with anything missing along the chain."""
        hit = set(self.missing_store) | {
            m.split(":", 1)[0] for m in (*self.missing_topic, *self.missing_effects)
        }
        return len(hit & emails)

    def summary(self, limit: int = 3) -> dict[str, Any]:
        return {
            name: {"count": len(items), "first": items[:limit]}
            for name, items in vars(self).items()
            if items
        }


class TopicLog:
    """Every record of the tickets topic read so far (from the beginning, incrementally)."""

    def __init__(self, bootstrap: str, topic: str = TICKETS_TOPIC) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=[bootstrap],
            enable_auto_commit=False,
            request_timeout_ms=15_000,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        partitions = self.consumer.partitions_for_topic(topic) or set()
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.counts: Counter[str] = Counter()  # ce_id -> records
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)  # ce_id -> headers
        self.seen: dict[str, int] = {}  # stream -> highest version seen, for order
        self.disorder: list[str] = []

    def catch_up(self) -> None:
        """Read up to the end offsets as they are now."""
        ends = self.consumer.end_offsets(self.partitions)
        while any(self.consumer.position(tp) < ends[tp] for tp in self.partitions):
            for records in self.consumer.poll(timeout_ms=500).values():
                for record in records:
                    self._add(record)

    def _add(self, record: Any) -> None:
        headers = {k: v.decode(errors="replace") for k, v in record.headers or [] if v}
        event_id = headers.get("ce_id", "")
        self.counts[event_id] += 1
        self.headers[event_id].append(headers)
        stream, version = headers.get("ce_subject", ""), headers.get("ce_streamversion", "")
        if self.counts[event_id] > 1 or not version.isdigit():
            return  # a duplicate may come late (relay republish); the first copy sets order
        if int(version) < self.seen.get(stream, 0):
            self.disorder.append(f"{stream}: v{version} after v{self.seen[stream]} in the topic")
        self.seen[stream] = max(self.seen.get(stream, 0), int(version))

    def close(self) -> None:
        self.consumer.close()


class Checker:
    def __init__(self, database: PostgresDatabase, bootstrap: str, smtp: SmtpSink) -> None:
        self.database = database
        self.engine = create_engine(database.url, poolclass=NullPool)  # survives F6/F7
        self.topic = TopicLog(bootstrap)
        self.smtp = smtp

    def close(self) -> None:
        self.topic.close()
        self.engine.dispose()

    def store(self) -> dict[str, Any]:
        """Ticket streams as the store has them: events by stream, streams by requester."""
        query = text(
            "SELECT stream_id, version, type, event_id, data->'requester'->>'email' "
            "FROM events WHERE stream_id LIKE 'ticket-%' ORDER BY position"
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            tickets = conn.execute(text("SELECT stream_id, version FROM tickets")).all()
        projected: dict[str, int] = {stream: version for stream, version in tickets}
        streams: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        by_email: dict[str, list[str]] = defaultdict(list)
        for stream, version, type_, event_id, email in rows:
            streams[stream].append((version, type_, event_id))
            if type_ == "TicketCreated":
                by_email[email].append(stream)
        return {"streams": streams, "by_email": by_email, "projected": projected}

    def check(self, acks: Mapping[str, str]) -> Verdict:
        self.topic.catch_up()
        store = self.store()
        streams, by_email = store["streams"], store["by_email"]
        mails = Counter(r for mail in self.smtp.messages for r in mail.rcpt_tos)
        verdict = Verdict(disorder=list(self.topic.disorder))
        for stream, events in streams.items():
            versions = [v for v, _, _ in events]
            if versions != list(range(1, len(versions) + 1)):
                verdict.disorder.append(f"{stream}: store versions {versions}")
        for email in acks:
            found = by_email.get(email, [])
            if not found:
                verdict.missing_store.append(email)
                continue
            if len(found) > 1:
                verdict.duplicated.append(f"{email}: {len(found)} tickets")
            stream = found[0]
            events = streams[stream]
            for _, type_, event_id in events:
                if self.topic.counts[event_id] == 0:
                    verdict.missing_topic.append(f"{email}: {type_} {event_id}")
            types = Counter(t for _, t, _ in events)
            effects = {**{name: types[name] for name in ONE_EACH}, "autoresponse": mails[email]}
            for name, count in effects.items():
                if count == 0:
                    verdict.missing_effects.append(f"{email}: {name}")
                elif count > 1:
                    verdict.duplicated.append(f"{email}: {name} x{count}")
            if store["projected"].get(stream) != len(events):
                have = store["projected"].get(stream)
                verdict.missing_effects.append(f"{email}: query at v{have}, store v{len(events)}")
        return verdict

    def rebuild_differences(self, workdir: Path, env: Mapping[str, str]) -> list[str]:
        """Copy the store into a fresh database, `deskstream replay query` there, and compare
        every tickets and thread_entries row with the live projection."""
        fresh = PostgresDatabase(log_dir=workdir)
        fresh.create()
        try:
            engine = create_engine(fresh.url, poolclass=NullPool)
            migrations.upgrade(engine)
            engine.dispose()
            with (
                psycopg.connect(self.database.dsn) as source,
                psycopg.connect(fresh.dsn) as target,
                source.cursor().copy("COPY events TO STDOUT") as out,
                target.cursor().copy("COPY events FROM STDIN") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            replay_env = {k: v for k, v in env.items() if k != "DESKSTREAM_KAFKA_BOOTSTRAP"}
            replay_env["DESKSTREAM_DATABASE_URL"] = fresh.url
            subprocess.run(
                [sys.executable, "-m", "services.cli", "replay", "query"],
                env=replay_env,
                cwd=workdir,
                check=True,
                capture_output=True,
                timeout=300,
            )
            return _table_differences(self.database.dsn, fresh.dsn)
        finally:
            fresh.drop()


def _table_differences(live_dsn: str, rebuilt_dsn: str) -> list[str]:
    differences = []
    for table, key in (("tickets", "ticket_id"), ("thread_entries", "entry_id")):
        query = f"SELECT * FROM {table} ORDER BY {key}"
        with psycopg.connect(live_dsn) as live, psycopg.connect(rebuilt_dsn) as rebuilt:
            a = {row[0]: row for row in live.execute(query)}
            b = {row[0]: row for row in rebuilt.execute(query)}
        for row_key in sorted(set(a) | set(b)):
            if a.get(row_key) != b.get(row_key):
                differences.append(
                    f"{table} {row_key}: live {a.get(row_key)} rebuilt {b.get(row_key)}"
                )
    return differences
