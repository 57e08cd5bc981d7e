"""``python -m bench.sla``: the SLA service with a million open tickets, and routing filters.

1. 1,000,000 open tickets in sla's state (the ``sla_tickets`` table), seeded by COPY: table and
   index sizes, the sla process's RSS; raw reference: the same (stream id, due date) pairs as a
   plain Python list, measured with tracemalloc.
2. Start-to-ready of ``deskstream serve sla`` (Kafka mode) against that database, and again after
   SIGKILL; raw reference: SELECTing every (stream_id, due_at) into Python with psycopg (what a
   service holding its state in memory would do at each start) and a bare interpreter start.
3. Overdue delay while 1,000 tickets fall due within one minute: TicketOverdue event time minus
   due date, exactly one event each, none for the million not yet due; raw reference: a Python
   scan of 1,000,000 due dates for those <= now, next to one timer tick. 3b: the same number
   falling due at one instant. In both, a probe measures how long another writer waits for the
   event store's append lock meanwhile.
4. Filters per second (bench/filters.py): ``evaluate`` over 200 filters x 10,000 tickets against
   a plain loop doing the same comparisons.

Prints a summary table and writes bench/results/sla-latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
from sqlalchemy import Engine, select

from bench.filters import filter_rate
from bench.procstat import CpuMonitor
from bench.report import (
    clean_up,
    conclude,
    failed,
    run_facts,
    say,
    say_cpu,
    say_failures,
    warn,
)
from bench.stats import fmt, fmt_dist, summary_ms
from libs.events.catalog import all_topics
from libs.events.clock import SystemClock
from libs.events.store import EventStore
from libs.events.types import CATALOG
from libs.platform.database import make_engine
from services import migrations
from services.sla.adapters.tables import sla_tickets
from services.sla.timer import OverdueTimer
from tests.support.kafka_broker import KafkaBroker
from tests.support.platform import ROOT, Deployment, Process, base_env
from tests.support.servers import PostgresDatabase, free_port, log_tail

RESULTS = Path(__file__).resolve().parent / "results" / "sla-latest.json"
PIPELINE_RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
COLUMNS = (
    "stream_id",
    "sla_plan_id",
    "due_at",
    "is_open",
    "overdue",
    "clock_start",
    "responded",
    "target",
)


@dataclass(frozen=True)
class Plan:
    tickets: int = 1_000_000
    horizon_days: float = 30.0
    not_due_for_s: float = 3600.0  # the seeded due dates start an hour out: none falls due here
    due: int = 1000
    due_lead_s: float = 20.0  # the first of them falls due this long after the insert starts
    due_spread_s: float = 60.0
    burst_due: int = 1000  # 3b: as many falling due at one instant
    burst_lead_s: float = 8.0
    overdue_timeout_s: float = 60.0  # after the last due date
    duplicate_watch_s: float = 3.0  # keep looking for a second TicketOverdue after the last one
    idle_seconds: float = 5.0
    ready_timeout_s: float = 120.0
    ready_poll_s: float = 0.02
    import_runs: int = 5
    tick_runs: int = 50
    scan_runs: int = 5
    filter_tickets: int = 10_000
    filters: int = 200
    filter_repeats: int = 3


QUICK = Plan(
    tickets=50_000,
    due=200,
    due_lead_s=10.0,
    due_spread_s=20.0,
    burst_due=200,
    overdue_timeout_s=30.0,
    idle_seconds=2.0,
    import_runs=2,
    tick_runs=20,
    scan_runs=3,
    filter_tickets=2000,
    filter_repeats=1,
)


def mb(nbytes: float | int | None) -> float | None:
    return None if nbytes is None else round(nbytes / 2**20, 1)


def ratio(measured: float | None, raw: float | None, digits: int = 2) -> float | None:
    if measured is None or not raw:
        return None
    return round(measured / raw, digits)


def vm_kb(pid: int, field: str = "VmRSS") -> int | None:
    """A /proc/<pid>/status size in bytes (VmRSS, VmHWM), or None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pipeline_rate() -> str:
    """The pipeline's measured ingest rate, from the last `python -m bench` run if there is one."""
    try:
        data = json.loads(PIPELINE_RESULTS.read_text())
        rates = {
            mode: m["drain"]["pipeline_tickets_per_s"]
            for mode, m in data["modes"].items()
            if m.get("drain", {}).get("pipeline_tickets_per_s")
        }
    except (OSError, ValueError, KeyError, TypeError):
        rates = {}
    if rates:
        shown = ", ".join(f"{mode} {rate:.0f}/s" for mode, rate in rates.items())
        return f"{shown} in bench/results/latest.json"
    return "~50-100 tickets/s on this machine (python -m bench)"


# -- 1. the state -------------------------------------------------------------------------------


def seed(dsn: str, plan: Plan, now: datetime) -> dict[str, Any]:
    """COPY `plan.tickets` open, unmarked tickets due between `now + not_due_for_s` and
    `now + horizon_days`; then VACUUM ANALYZE (what autovacuum would do after a bulk load)."""
    rng = random.Random(7)
    first_due = now + timedelta(seconds=plan.not_due_for_s)
    span = plan.horizon_days * 86400 - plan.not_due_for_s
    columns = ", ".join(COLUMNS)
    began = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY sla_tickets ({columns}) FROM STDIN") as copy:
            for _ in range(plan.tickets):
                copy.write_row(
                    (
                        f"ticket-{uuid.uuid4()}",
                        1,
                        first_due + timedelta(seconds=rng.random() * span),
                        True,
                        False,
                        now - timedelta(seconds=rng.random() * 86400),
                        False,
                        "resolution",
                    )
                )
        conn.commit()
    copy_s = time.perf_counter() - began
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) sla_tickets")
    vacuum_s = time.perf_counter() - began
    return {
        "rows": plan.tickets,
        "copy_s": round(copy_s, 1),
        "copy_rows_per_s": round(plan.tickets / copy_s),
        "vacuum_analyze_s": round(vacuum_s, 1),
        "first_due": first_due.isoformat(),
        "last_due": (now + timedelta(days=plan.horizon_days)).isoformat(),
    }


def state_sizes(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_open AND NOT overdue), "
            "pg_total_relation_size('sla_tickets'), pg_relation_size('sla_tickets'), "
            "pg_indexes_size('sla_tickets'), pg_relation_size('ix_sla_tickets_pending'), "
            "pg_relation_size('sla_tickets_pkey') FROM sla_tickets"
        ).fetchone()
    assert row is not None
    rows, pending, total, heap, indexes, pending_index, pkey = row
    return {
        "rows": rows,
        "pending_rows": pending,
        "total_bytes": total,
        "heap_bytes": heap,
        "indexes_bytes": indexes,
        "pending_index_bytes": pending_index,
        "pkey_index_bytes": pkey,
        "bytes_per_row": round(total / max(rows, 1), 1),
    }


def python_list_memory(count: int, now: datetime) -> dict[str, Any]:
    """tracemalloc's count for a list of `count` (stream id str, aware datetime) tuples."""
    rng = random.Random(11)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = [
            (f"ticket-{uuid.uuid4()}", now + timedelta(seconds=rng.random() * 30 * 86400))
            for _ in range(count)
        ]
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(state) == count
    del state
    return {"entries": count, "bytes": used, "bytes_per_entry": round(used / count, 1)}


# -- 2. start-to-ready --------------------------------------------------------------------------


def start_sla(deployment: Deployment, port: int, plan: Plan) -> tuple[Process, dict[str, Any]]:
    """`deskstream serve sla`, timed from Popen to the first 200 from /readyz."""
    log = deployment.workdir / "sla.log"
    argv = [sys.executable, "-m", "services.cli", "serve", "sla"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    began = time.perf_counter()
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            argv, env=deployment.env, cwd=deployment.workdir, stdout=out, stderr=subprocess.STDOUT
        )
    process = Process("sla", popen, log, port)
    deployment.processes["sla"] = process
    first_answer: float | None = None
    last = ""
    while True:
        elapsed = time.perf_counter() - began
        if popen.poll() is not None:
            raise RuntimeError(
                f"deskstream serve sla exited with {popen.returncode} after {elapsed:.1f} s "
                f"(a problem in services/?):\n{log_tail(log)}"
            )
        if elapsed > plan.ready_timeout_s:
            raise RuntimeError(
                f"sla not ready after {plan.ready_timeout_s:.0f} s (last /readyz: {last}):\n"
                f"{log_tail(log)}"
            )
        try:
            response = requests.get(f"{process.url}/readyz", timeout=2)
        except requests.RequestException:
            pass
        else:
            if first_answer is None:
                first_answer = time.perf_counter() - began
            if response.status_code == 200:
                break
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(plan.ready_poll_s)
    ready_s = time.perf_counter() - began
    return process, {
        "ready_s": round(ready_s, 3),
        "first_http_answer_s": round(first_answer or ready_s, 3),
        "rss_bytes_at_ready": vm_kb(popen.pid),
        "pid": popen.pid,
    }


def select_all_rows(dsn: str) -> tuple[list[datetime], dict[str, Any]]:
    """What a service keeping the open tickets in memory would do at each start."""
    began = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT stream_id, due_at FROM sla_tickets WHERE is_open AND NOT overdue"
        ).fetchall()
    seconds = time.perf_counter() - began
    dues = [due for _, due in rows]
    return dues, {"rows": len(rows), "seconds": round(seconds, 3)}


def bare_start(env: dict[str, str], runs: int) -> dict[str, Any]:
    """`python -c "import services.cli"` (the CLI imports lazily), and the workers' imports."""
    out: dict[str, Any] = {}
    for key, code in (
        ("import_services_cli", "import services.cli"),
        ("import_sla_worker_modules", "import services.workers, libs.platform.serving"),
    ):
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
            times.append(time.perf_counter() - began)
        out[key] = {"code": code, "median_s": round(statistics.median(times), 3), "runs": runs}
    return out


# -- 3. overdue ---------------------------------------------------------------------------------


def timer_select(now: datetime, limit: int = 500) -> Any:
    """OverdueTimer.run_once's select, as written there (kept in step by hand)."""
    t = sla_tickets.c
    return (
        select(t.stream_id, t.due_at, t.target)
        .where(t.is_open, ~t.overdue, t.due_at <= now)
        .order_by(t.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def timer_costs(engine: Engine, plan: Plan) -> dict[str, Any]:
    """One timer query and one whole tick (OverdueTimer.run_once) with nothing due, and the
    query plan."""
    query_times, tick_times = [], []
    for _ in range(plan.tick_runs):
        with engine.begin() as conn:
            began = time.perf_counter()
            found = conn.execute(timer_select(datetime.now(UTC))).all()
            query_times.append(time.perf_counter() - began)
        if found:
            raise RuntimeError(f"{len(found)} rows due before the overdue phase began")
    timer = OverdueTimer(EventStore(engine, CATALOG, SystemClock()), SystemClock())
    for _ in range(plan.tick_runs):
        began = time.perf_counter()
        if timer.run_once():
            raise RuntimeError("the bench's own timer tick marked tickets")
        tick_times.append(time.perf_counter() - began)
    compiled = timer_select(datetime.now(UTC)).compile(dialect=engine.dialect)
    with engine.begin() as conn:
        explain = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", dict(compiled.params)
        ).all()
    plan_lines = [r[0] for r in explain]
    return {
        "query_ms_median": round(statistics.median(query_times) * 1000, 3),
        "tick_ms_median": round(statistics.median(tick_times) * 1000, 3),
        "tick_ms_max": round(max(tick_times) * 1000, 3),
        "runs": plan.tick_runs,
        "uses_pending_index": any("ix_sla_tickets_pending" in line for line in plan_lines),
        "explain": plan_lines,
    }


def python_scan(dues: list[datetime], runs: int) -> dict[str, Any]:
    """'Scan every open ticket each tick': one pass over the due dates for those <= now.

    psycopg hands back datetimes in the session's zone (a ZoneInfo), which compare with
    datetime.now(UTC) far slower than datetimes sharing one tzinfo; the reference is the fast
    case (normalised to UTC before timing), the ZoneInfo figure is kept beside it."""

    def median_ms(values: list[datetime]) -> tuple[float, int]:
        times, found = [], 0
        for _ in range(runs):
            now = datetime.now(UTC)
            began = time.perf_counter()
            found = len([d for d in values if d <= now])
            times.append(time.perf_counter() - began)
        return round(statistics.median(times) * 1000, 1), found

    as_fetched, _ = median_ms(dues)
    utc = [d.astimezone(UTC) for d in dues]
    ms, found = median_ms(utc)
    return {
        "entries": len(dues),
        "due_found": found,
        "ms_median": ms,
        "ms_median_as_fetched_zoneinfo": as_fetched,
        "runs": runs,
    }


def insert_due(dsn: str, count: int, lead_s: float, spread_s: float) -> dict[str, datetime]:
    """`count` open tickets falling due one after another over `spread_s` (all at once for 0),
    the first `lead_s` from now; returns stream id -> due date."""
    base = datetime.now(UTC) + timedelta(seconds=lead_s)
    due = {
        f"ticket-{uuid.uuid4()}": base + timedelta(seconds=spread_s * i / count)
        for i in range(count)
    }
    columns = ", ".join(COLUMNS)
    clock_start = datetime.now(UTC) - timedelta(hours=8)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY sla_tickets ({columns}) FROM STDIN") as copy:
            for stream_id, at in due.items():
                copy.write_row((stream_id, 1, at, True, False, clock_start, False, "resolution"))
        conn.commit()
    if datetime.now(UTC) >= base:
        warn("WARNING: the due rows were committed after the first due date")
    return due


def overdue_events(conn: psycopg.Connection[Any]) -> list[tuple[str, datetime, str]]:
    return conn.execute(
        "SELECT stream_id, time, data->>'due_at' FROM events WHERE type = 'TicketOverdue'"
    ).fetchall()


class AppendLockProbe:
    """What another writer (intake appending a ticket) waits for the store's append lock while
    the timer marks: every `interval_s`, a transaction that takes the lock and commits."""

    def __init__(self, engine: Engine, interval_s: float = 0.02) -> None:
        self.store = EventStore(engine, CATALOG, SystemClock())
        self.interval_s = interval_s
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="append-lock-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            began = time.perf_counter()
            with self.store.transaction() as conn:
                self.store.lock_appends(conn)
            self.waits.append(time.perf_counter() - began)

    def __enter__(self) -> AppendLockProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float | int | None]:
        return summary_ms(self.waits)


def wait_for_overdue(
    dsn: str, due: dict[str, datetime], earlier: set[str], plan: Plan
) -> dict[str, Any]:
    """Wait for the TicketOverdue events of `due` (`earlier`: streams marked in a previous
    phase), then check every one of them and every other event."""
    last_due = max(due.values())
    deadline = last_due + timedelta(seconds=plan.overdue_timeout_s)
    expected = len(due) + len(earlier)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE type = 'TicketOverdue'"
            ).fetchone()
            count = row[0] if row else 0
            if count >= expected or datetime.now(UTC) > deadline:
                break
            time.sleep(0.25)
        seen_all_s = (datetime.now(UTC) - last_due).total_seconds()
        time.sleep(plan.duplicate_watch_s)  # a second mark for any ticket would land by now
        events = overdue_events(conn)
        marked = conn.execute(
            "SELECT count(*) FILTER (WHERE overdue), count(*) FILTER (WHERE is_open AND NOT "
            "overdue AND due_at <= now()) FROM sla_tickets"
        ).fetchone()
    assert marked is not None
    delays = []
    per_stream: dict[str, int] = {}
    wrong_due = 0
    for stream_id, at, due_text in events:
        per_stream[stream_id] = per_stream.get(stream_id, 0) + 1
        if stream_id in due:
            delays.append((at - due[stream_id]).total_seconds())
            if datetime.fromisoformat(due_text) != due[stream_id]:
                wrong_due += 1
    mine = [s for s in per_stream if s in due]
    strays = [s for s in per_stream if s not in due and s not in earlier]
    duplicates = {s: n for s, n in per_stream.items() if n > 1}
    missing = [s for s in due if s not in per_stream]
    early = [d for d in delays if d < 0]
    exactly_once = (
        len(delays) == len(mine) == len(due) and not strays and not duplicates and not early
    )
    times = sorted(at for stream_id, at, _ in events if stream_id in due)
    return {
        "due": len(due),
        "events": len(delays),
        "distinct_streams": len(mine),
        "exactly_once": exactly_once and not wrong_due and marked == (expected, 0),
        "missing": len(missing),
        "duplicates": len(duplicates),
        "strays_not_due": len(strays),
        "fired_early": len(early),
        "due_at_mismatch": wrong_due,
        "rows_marked_overdue": marked[0],
        "rows_marked_expected": expected,
        "due_rows_left_unmarked": marked[1],
        "delay": summary_ms([max(d, 0.0) for d in delays]),
        "delay_min_ms_signed": round(min(delays) * 1000, 1) if delays else None,
        "event_time_span_s": round((times[-1] - times[0]).total_seconds(), 3) if times else None,
        "all_seen_s_after_last_due": round(seen_all_s, 1),
    }


def report_overdue(result: dict[str, Any]) -> None:
    say(
        f"  delay (event time - due_at): {fmt_dist(result['delay'])}  "
        f"(min {fmt(result['delay_min_ms_signed'], ' ms')}; event times span "
        f"{fmt(result['event_time_span_s'], ' s', 2)})"
    )
    say(
        f"      {result['events']} TicketOverdue for {result['due']} due tickets: "
        f"{result['distinct_streams']} distinct streams, {result['missing']} missing, "
        f"{result['duplicates']} duplicated, {result['strays_not_due']} for tickets not due, "
        f"{result['fired_early']} before their due date, {result['due_at_mismatch']} with "
        f"a wrong due_at; rows marked overdue {result['rows_marked_overdue']}/"
        f"{result['rows_marked_expected']}, due rows left unmarked "
        f"{result['due_rows_left_unmarked']} -> "
        f"{'EXACTLY ONCE' if result['exactly_once'] else 'NOT EXACTLY ONCE'}"
    )
    say(
        f"      another writer's wait for the append lock meanwhile (every 20 ms): "
        f"{fmt_dist(result['append_lock_wait'])}"
    )
    say_cpu("", result["cpu"])
    if not result["exactly_once"]:
        warn("WARNING: the overdue marks are not exactly once per due ticket, on time")


def overdue_phase(
    database: PostgresDatabase,
    engine: Engine,
    monitor: CpuMonitor,
    plan: Plan,
    due: dict[str, datetime],
    earlier: set[str],
) -> dict[str, Any]:
    with AppendLockProbe(engine) as probe:
        cpu = monitor.phase()
        result = wait_for_overdue(database.dsn, due, earlier, plan)
        result["cpu"] = cpu.finish()
    result["append_lock_wait"] = probe.summary()
    return result


# -- the run ------------------------------------------------------------------------------------


def run_sla(plan: Plan, workdir: Path, monitor: CpuMonitor, results: dict[str, Any]) -> None:
    with contextlib.ExitStack() as stack:
        database = PostgresDatabase(log_dir=workdir)
        database.create()
        stack.callback(database.drop)
        monitor.databases.add(database.name)
        engine = make_engine(database.url, pool_size=2)
        stack.callback(engine.dispose)
        migrations.upgrade(engine)

        say(f"== 1. {plan.tickets:,} open tickets in sla's state (table sla_tickets)")
        now = datetime.now(UTC)
        seeded = seed(database.dsn, plan, now)
        sizes = state_sizes(database.dsn)
        memory = python_list_memory(plan.tickets, now)
        state: dict[str, Any] = {"seed": seeded, "sizes": sizes, "python_list": memory}
        results["state"] = state
        say(
            f"  SEEDED BY COPY, not through the pipeline (which ingests "
            f"{pipeline_rate()}): {seeded['rows']:,} rows in {seeded['copy_s']} s "
            f"({fmt(seeded['copy_rows_per_s'])} rows/s), VACUUM ANALYZE {seeded['vacuum_analyze_s']} s"
        )
        say(
            f"  due dates spread from now + {plan.not_due_for_s / 3600:.0f} h to now + "
            f"{plan.horizon_days:.0f} days (none falls due during the bench)"
        )
        say(
            f"  rows {sizes['rows']:,} (pending {sizes['pending_rows']:,}); "
            f"pg_total_relation_size {fmt(mb(sizes['total_bytes']), ' MB')} = heap "
            f"{fmt(mb(sizes['heap_bytes']), ' MB')} + indexes {fmt(mb(sizes['indexes_bytes']), ' MB')} "
            f"(ix_sla_tickets_pending {fmt(mb(sizes['pending_index_bytes']), ' MB')}, pkey "
            f"{fmt(mb(sizes['pkey_index_bytes']), ' MB')}); {sizes['bytes_per_row']} B/row"
        )
        say(
            f"      raw: Python list of {memory['entries']:,} (str, aware datetime) tuples "
            f"(tracemalloc): {fmt(mb(memory['bytes']), ' MB')} ({memory['bytes_per_entry']} B/entry)"
        )

        broker = KafkaBroker(log_dir=workdir)
        stack.callback(broker.discard)
        broker.start()
        broker.create_topics(all_topics(), partitions=3)
        monitor.brokers.add(broker.marker)
        env = base_env(
            database_url=database.url,
            kafka_bootstrap=broker.bootstrap,
            kafka_fetch_max_wait_ms="100",
        )
        deployment = Deployment(env, workdir)
        stack.callback(deployment.stop)
        port = free_port()

        say("== 2. start-to-ready of `deskstream serve sla` (Kafka mode) on that database")
        starts: dict[str, Any] = {}
        results["restart"] = starts
        process, starts["first"] = start_sla(deployment, port, plan)
        monitor.roots = {process.popen.pid: "sla"}
        idle_cpu = monitor.phase()
        time.sleep(plan.idle_seconds)
        starts["first"]["idle_cpu"] = idle_cpu.finish()
        starts["first"]["rss_bytes_after_idle"] = vm_kb(process.popen.pid)
        process.kill()  # SIGKILL
        process, starts["after_sigkill"] = start_sla(deployment, port, plan)
        monitor.roots = {process.popen.pid: "sla"}
        for key, label in (("first", "first start"), ("after_sigkill", "after SIGKILL")):
            s = starts[key]
            say(
                f"  {label}: /readyz 200 after {s['ready_s']:.2f} s (first HTTP answer "
                f"{s['first_http_answer_s']:.2f} s); sla RSS at ready "
                f"{fmt(mb(s['rss_bytes_at_ready']), ' MB')}"
            )
        say_cpu(
            f"idle {plan.idle_seconds:.0f} s after the first start (RSS then "
            f"{fmt(mb(starts['first']['rss_bytes_after_idle']), ' MB')}): ",
            starts["first"]["idle_cpu"],
        )
        dues, selected = select_all_rows(database.dsn)
        bare = bare_start(env, plan.import_runs)
        starts["raw_select_all"] = selected
        starts["raw_bare_start"] = bare
        cli, workers = bare["import_services_cli"], bare["import_sla_worker_modules"]
        say(
            f"      raw: SELECT all {selected['rows']:,} (stream_id, due_at) rows into Python "
            f"with psycopg: {selected['seconds']:.2f} s (each start of an in-memory service)"
        )
        say(
            f'      raw: bare `python -c "{cli["code"]}"`: {cli["median_s"]:.2f} s; '
            f"`{workers['code']}`: {workers['median_s']:.2f} s (median of {cli['runs']})"
        )

        say(
            f"== 3. overdue delay: {plan.due:,} tickets falling due within "
            f"{plan.due_spread_s:.0f} s, beside {plan.tickets:,} not yet due"
        )
        costs = timer_costs(engine, plan)
        scan = python_scan(dues, plan.scan_runs)
        del dues
        overdue: dict[str, Any] = {"timer": costs, "raw_python_scan": scan}
        results["overdue"] = overdue
        say(
            f"  one timer query (limit 500, nothing due): {costs['query_ms_median']:.2f} ms "
            f"median; whole tick (OverdueTimer.run_once): {costs['tick_ms_median']:.2f} ms "
            f"(max {costs['tick_ms_max']:.2f}); plan uses ix_sla_tickets_pending: "
            f"{costs['uses_pending_index']}"
        )
        say(f"      plan: {costs['explain'][0].strip()}")
        if not costs["uses_pending_index"]:
            warn("WARNING: the timer query does not use ix_sla_tickets_pending")
        say(
            f"      raw: Python scan of {scan['entries']:,} due dates for those <= now: "
            f"{scan['ms_median']:.1f} ms per scan ({scan['due_found']} found; "
            f"{scan['ms_median_as_fetched_zoneinfo']:.1f} ms with psycopg's ZoneInfo datetimes)"
        )
        began = time.perf_counter()
        due = insert_due(database.dsn, plan.due, plan.due_lead_s, plan.due_spread_s)
        overdue["insert_s"] = round(time.perf_counter() - began, 3)
        result = overdue_phase(database, engine, monitor, plan, due, set())
        overdue.update(result)
        report_overdue(result)

        say(
            f"== 3b. the same with {plan.burst_due:,} tickets falling due at one instant "
            f"(a burst: batches of 500)"
        )
        burst_due = insert_due(database.dsn, plan.burst_due, plan.burst_lead_s, 0.0)
        burst = overdue_phase(database, engine, monitor, plan, burst_due, set(due))
        overdue["burst"] = burst
        report_overdue(burst)
        overdue["rss_bytes_after"] = vm_kb(process.popen.pid)
        overdue["rss_hwm_bytes"] = vm_kb(process.popen.pid, "VmHWM")
        say(
            f"  sla RSS after: {fmt(mb(overdue['rss_bytes_after']), ' MB')} "
            f"(high-water {fmt(mb(overdue['rss_hwm_bytes']), ' MB')})"
        )
        if process.popen.poll() is not None:
            warn(f"WARNING: sla exited with {process.popen.returncode}: {log_tail(process.log)}")


def run_filters(plan: Plan, results: dict[str, Any]) -> None:
    say(f"== 4. routing filters: {plan.filters} filters x {plan.filter_tickets:,} tickets")
    r = filter_rate(plan.filter_tickets, plan.filters, plan.filter_repeats)
    results["filters"] = r
    raw = r["raw"]
    say(
        f"  {r['rules']} rules, ops {', '.join(r['ops_used'])}; {r['match_any_filters']} match "
        f"any, {r['stop_on_match_filters']} stop_on_match, {r['email_only_filters']} email-only; "
        f"{r['tickets_with_a_match_pct']}% of tickets match any filter "
        f"(mean {r['matches_per_ticket_mean']} matches/ticket)"
    )
    say(
        f"  evaluate(): {fmt(r['tickets_per_s'])} tickets/s = "
        f"{fmt(r['filter_evaluations_per_s'], digits=0)} filter evaluations/s "
        f"({r['us_per_ticket']} us/ticket, best of {r['repeats']})"
    )
    say(
        f"      raw: plain loop, same semantics, pre-lowercased strings: "
        f"{fmt(raw['tickets_per_s'])} tickets/s = "
        f"{fmt(raw['filter_evaluations_per_s'], digits=0)} filter evaluations/s, "
        f"{fmt(raw['rule_evaluations_per_s'], digits=0)} rule evaluations/s; "
        f"evaluate() = {r['ratio_vs_raw'] * 100:.0f}% of raw; outcome mismatches "
        f"{r['outcome_mismatches']}"
    )
    if r["outcome_mismatches"]:
        warn("WARNING: evaluate() and the plain loop disagree on matched filters")


def summary(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    state = results.get("state")
    if state:
        sizes, memory = state["sizes"], state["python_list"]
        rows.append(
            (
                f"sla_tickets {sizes['rows']:,} rows, table+indexes",
                fmt(mb(sizes["total_bytes"]), " MB"),
                f"Python list {fmt(mb(memory['bytes']), ' MB')}",
                fmt(ratio(sizes["total_bytes"], memory["bytes"]), "x", 2),
            )
        )
        rows.append(
            (
                "  of which ix_sla_tickets_pending",
                fmt(mb(sizes["pending_index_bytes"]), " MB"),
                "",
                "",
            )
        )
    starts = results.get("restart")
    if starts and "after_sigkill" in starts:
        first, again = starts["first"], starts["after_sigkill"]
        rows.append(
            (
                "sla process RSS at ready",
                fmt(mb(first["rss_bytes_at_ready"]), " MB"),
                f"Python list {fmt(mb(state['python_list']['bytes']), ' MB')}" if state else "",
                fmt(ratio(first["rss_bytes_at_ready"], state["python_list"]["bytes"]), "x", 2)
                if state
                else "",
            )
        )
        select_s = starts["raw_select_all"]["seconds"]
        bare_s = starts["raw_bare_start"]["import_services_cli"]["median_s"]
        rows.append(
            (
                "start -> /readyz 200, first start",
                fmt(first["ready_s"], " s", 2),
                f"SELECT all rows {select_s:.2f} s",
                fmt(ratio(first["ready_s"], select_s), "x", 2),
            )
        )
        rows.append(
            (
                "start -> /readyz 200, after SIGKILL",
                fmt(again["ready_s"], " s", 2),
                f"bare import {bare_s:.2f} s",
                fmt(ratio(again["ready_s"], bare_s), "x", 2),
            )
        )
        workers_s = starts["raw_bare_start"]["import_sla_worker_modules"]["median_s"]
        rows.append(
            (
                "  (python -c import services.workers, ...)",
                "",
                f"worker imports {workers_s:.2f} s",
                fmt(ratio(again["ready_s"], workers_s), "x", 2),
            )
        )
    overdue = results.get("overdue")
    if overdue:
        timer, scan = overdue["timer"], overdue["raw_python_scan"]
        rows.append(
            (
                "timer query, nothing due (limit 500)",
                fmt(timer["query_ms_median"], " ms", 2),
                f"Python scan {scan['ms_median']:.1f} ms",
                fmt(ratio(timer["query_ms_median"], scan["ms_median"], 4), "x", 4),
            )
        )
        rows.append(
            (
                "timer tick (run_once), nothing due",
                fmt(timer["tick_ms_median"], " ms", 2),
                f"Python scan {scan['ms_median']:.1f} ms",
                fmt(ratio(timer["tick_ms_median"], scan["ms_median"], 4), "x", 4),
            )
        )
        spread = f"over {results['plan']['due_spread_s']:.0f} s"
        for key, what in (("", spread), ("burst", "at once")):
            phase = overdue.get(key) if key else overdue
            if not phase or "delay" not in phase:
                continue
            d = phase["delay"]
            for stat in ("p50_ms", "p99_ms", "max_ms"):
                rows.append(
                    (
                        f"overdue delay {stat[:-3]} ({phase['due']} due {what})",
                        fmt(d[stat], " ms"),
                        "poll interval 250 ms",
                        fmt(ratio(d[stat], 250.0), "x", 2),
                    )
                )
            rows.append(
                (
                    f"  once each / strays ({what})",
                    f"{phase['distinct_streams']}/{phase['due']}, {phase['strays_not_due']}",
                    f"{phase['events']} events",
                    "OK" if phase["exactly_once"] else "FAIL",
                )
            )
            rows.append(
                (
                    f"  other writer's append-lock wait max ({what})",
                    fmt(phase["append_lock_wait"]["max_ms"], " ms"),
                    f"p50 {fmt(phase['append_lock_wait']['p50_ms'], ' ms')}",
                    "",
                )
            )
    flt = results.get("filters")
    if flt:
        raw = flt["raw"]
        rows.append(
            (
                "filters: tickets/s",
                fmt(flt["tickets_per_s"], digits=0),
                f"plain loop {fmt(raw['tickets_per_s'], digits=0)}",
                fmt(flt["ratio_vs_raw"], "x", 2),
            )
        )
        rows.append(
            (
                "filter evaluations/s (tickets x filters)",
                fmt(flt["filter_evaluations_per_s"], digits=0),
                f"plain loop {fmt(raw['filter_evaluations_per_s'], digits=0)}",
                fmt(flt["ratio_vs_raw"], "x", 2),
            )
        )
        rows.append(
            (
                "  plain loop rule evaluations/s",
                "",
                fmt(raw["rule_evaluations_per_s"], digits=0),
                "",
            )
        )
    say()
    say("== Summary")
    widths = (50, 14, 30, 8)
    header = ("figure", "measured", "raw reference", "ratio")
    say("  " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    say("  " + "-+-".join("-" * w for w in widths))
    for row in rows:
        say("  " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    say_failures(results.get("errors", {}))


@contextlib.contextmanager
def recorded(results: dict[str, Any], part: str) -> Iterator[None]:
    """A failing part is reported and recorded; the other parts still run."""
    try:
        yield
    except Exception as exc:
        results.setdefault("errors", {})[part] = failed(part, exc, limit=3000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sla", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50,000 tickets, 200 due (~1 minute)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server logs)")
    parser.add_argument("--skip-filters", action="store_true", help="only parts 1-3")
    parser.add_argument(
        "--log-level", default="WARNING", help="Deskstream services' log level (WARNING)"
    )
    args = parser.parse_args(argv)
    os.environ["TEST_LOG_LEVEL"] = args.log_level  # read by tests.support.platform.base_env
    plan = QUICK if args.quick else Plan()
    workdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-sla-"))
    results: dict[str, Any] = {**run_facts(args.quick), "plan": asdict(plan)}
    began = time.perf_counter()
    say(f"Deskstream SLA + routing bench ({'quick' if args.quick else 'full'}); logs in {workdir}")
    monitor = CpuMonitor()
    try:
        with recorded(results, "sla"):
            run_sla(plan, workdir, monitor, results)
        if not args.skip_filters:
            with recorded(results, "filters"):
                run_filters(plan, results)
        conclude(results, began, summary, RESULTS)
    finally:
        ok = "errors" not in results
        clean_up(workdir, ok=ok, keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
