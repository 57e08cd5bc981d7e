"""``python -m bench.logsize``: email intake's cost per message as the event log grows.

Email intake reads the desk's configuration (departments, help topics, ban list) for every
message with `stream_id LIKE 'config-<thing>-%'`. On PostgreSQL that prefix search uses an
index only with pattern ops (migration 0008); without one it scans the whole log. This seeds a
log of N unrelated events and times `receive_email` with the index and, after dropping it,
without — the second figure is the raw reference the first is a ratio of.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import text

from bench.report import say
from libs.platform.settings import Settings
from services.intake.email_intake import receive_email
from services.platform import Platform
from tests.support.desk import build_platform
from tests.support.mail import compose
from tests.support.servers import PostgresDatabase

NOISE = """
INSERT INTO events (event_id, stream_id, version, type, schema_version, time, data, metadata)
SELECT gen_random_uuid()::text, 'ticket-noise-' || g, 1, 'Noise', 1, now(), '{}', '{}'
FROM generate_series(1, :count) AS g
"""


def per_email_ms(platform: Platform, emails: int) -> list[float]:
    for _ in range(5):  # warm the connection pool and the statement caches
        receive_email(platform, compose(), channel="bench")
    times = []
    for _ in range(emails):
        raw = compose()
        began = time.perf_counter()
        receive_email(platform, raw, channel="bench")
        times.append((time.perf_counter() - began) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logsize", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="noise events in the log")
    parser.add_argument("--emails", type=int, default=100, help="emails timed per variant")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir, PostgresDatabase(log_dir=Path(workdir)) as db:
        settings = replace(Settings(), database_url=db.url, data_dir=Path(workdir))
        platform = build_platform(settings)
        try:
            with platform.engine.begin() as conn:
                conn.execute(text(NOISE), {"count": args.events})
                conn.execute(text("ANALYZE events"))
            indexed = per_email_ms(platform, args.emails)
            with platform.engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_events_stream_prefix"))
                conn.execute(text("ANALYZE events"))
            scanned = per_email_ms(platform, args.emails)
        finally:
            platform.close()
    with_index, without = statistics.median(indexed), statistics.median(scanned)
    say(f"email intake on PostgreSQL with {args.events:,} events in the log, {args.emails} emails")
    say(f"  median ms per email, prefix index (migration 0008): {with_index:.1f}")
    say(f"  median ms per email, no index (whole-log scan):     {without:.1f}")
    say(f"  ratio: {with_index / without:.2f}x the scanning cost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
