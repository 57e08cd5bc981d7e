"""``python -m bench``: raw limits, then intake throughput and end-to-end latency per mode,
ratios against the targets, a summary table, and bench/results/latest.json."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import deploy
from bench.intake import intake_rate, wait_until_due
from bench.latency import e2e_latency
from bench.procstat import CpuMonitor
from bench.raw import broker_produce_rate, pg_insert_rate
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
from bench.stats import fmt, fmt_dist
from tests.support.kafka_broker import KafkaBroker
from tests.support.servers import PostgresDatabase

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
INTAKE_TARGET = 0.40  # intake tickets/s >= 40% of raw single-connection INSERT+COMMIT rows/s
P99_TARGET_MS = 300.0  # Kafka-mode end-to-end p99


@dataclass(frozen=True)
class Plan:
    pg_rows: int = 2000
    pg_connections: int = 8
    broker_messages: int = 20_000
    settle_s: float = 5.0  # after the services report ready: consumer groups join, config lands
    warmup_tickets: int = 10
    idle_seconds: float = 3.0
    intake_concurrency: int = 8
    intake_seconds: float = 10.0
    intake_max_tickets: int = 1000
    drain_timeout_s: float = 60.0
    floor_rate: float = 5.0  # a light load, for the pipeline's own latency
    floor_seconds: float = 6.0
    latency_rate: float = 50.0
    latency_seconds: float = 20.0
    settle_timeout_s: float = 20.0
    poll_interval_s: float = 0.01


QUICK = Plan(
    pg_rows=300,
    broker_messages=2000,
    settle_s=3.0,
    warmup_tickets=3,
    idle_seconds=1.5,
    intake_seconds=3.0,
    intake_max_tickets=200,
    drain_timeout_s=30.0,
    floor_seconds=3.0,
    latency_seconds=4.0,
    settle_timeout_s=10.0,
)


def run_raw(plan: Plan, workdir: Path, modes: list[str], monitor: CpuMonitor) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    say("== 1. Raw limits")
    with PostgresDatabase(log_dir=workdir) as database:
        monitor.databases.add(database.name)
        for connections in (1, plan.pg_connections):
            phase = monitor.phase()
            result = pg_insert_rate(database.dsn, plan.pg_rows, connections)
            result["cpu"] = phase.finish()
            raw[f"pg_insert_{connections}conn"] = result
            say(
                f"  PostgreSQL INSERT+COMMIT, {connections} connection(s), {result['rows']} rows: "
                f"{fmt(result['rows_per_s'])} rows/s ({result['seconds']:.2f} s)"
            )
            say_cpu("", result["cpu"], "    ")
    if "kafka" in modes:
        with KafkaBroker(log_dir=workdir) as broker:
            monitor.brokers.add(broker.marker)
            broker.create_topics(["bench.raw"], partitions=3)
            phase = monitor.phase()
            result = broker_produce_rate(broker.bootstrap, "bench.raw", plan.broker_messages)
            result["cpu"] = phase.finish()
            raw["broker_produce"] = result
            say(
                f"  Apache Kafka produce (kafka-python, acks=all, idempotent, {result['value_bytes']} B), "
                f"{result['messages']} msgs: {fmt(result['messages_per_s'])} msgs/s "
                f"({result['mb_per_s']} MB/s, {result['seconds']:.2f} s)"
            )
            say_cpu("", result["cpu"], "    ")
    return raw


def run_mode(mode: str, plan: Plan, workdir: Path, monitor: CpuMonitor) -> dict[str, Any]:
    say(f"== 2. {mode} mode")
    result: dict[str, Any] = {}
    ready = deploy.warmed_up(mode, workdir, monitor, result, plan.settle_s, plan.warmup_tickets)
    with ready as stack:
        deployment = stack.deployment

        phase = monitor.phase()
        time.sleep(plan.idle_seconds)
        result["idle_cpu"] = phase.finish()
        say_cpu(f"idle ({plan.idle_seconds:.0f} s, no traffic): ", result["idle_cpu"], "  ")

        phase = monitor.phase()
        intake = intake_rate(
            deployment,
            concurrency=plan.intake_concurrency,
            duration_s=plan.intake_seconds,
            max_tickets=plan.intake_max_tickets,
            tag=f"{mode}-intake",
        )
        intake["cpu"] = phase.finish()
        numbers = intake.pop("numbers")
        say(
            f"  (a) intake, concurrency {intake['concurrency']}: {fmt(intake['tickets_per_s'])} "
            f"tickets/s ({intake['accepted']} x 201 in {intake['seconds']:.1f} s, "
            f"{intake['errors']} errors {intake['errors_by_kind'] or ''})"
        )
        say(f"      response time: {fmt_dist(intake['response_time'])}")
        say_cpu("", intake["cpu"])
        for error in intake["first_errors"]:
            say(f"      error: {error}")

        phase = monitor.phase()
        drain = wait_until_due(deployment, numbers, timeout_s=plan.drain_timeout_s)
        drain["cpu"] = phase.finish()
        total_s = intake["seconds"] + drain["drain_s"]
        drain["pipeline_tickets_per_s"] = (
            round(len(numbers) / total_s, 1) if not drain["missing_after_timeout"] else None
        )
        result["intake"], result["drain"] = intake, drain
        say(
            f"      pipeline drain: all {drain['tickets']} due {drain['drain_s']} s after intake "
            f"ended (missing {drain['missing_after_timeout']}); pipeline "
            f"{fmt(drain['pipeline_tickets_per_s'])} tickets/s overall"
        )
        say_cpu("during drain: ", drain["cpu"])
        if drain["missing_after_timeout"]:
            warn(
                f"WARNING: {drain['missing_after_timeout']} intake tickets still had no due date "
                "after the drain timeout; the latency run starts with a backlog"
            )

        for key, label, rate, seconds in (
            (
                "latency_floor",
                "(b0) light-load floor: e2e latency",
                plan.floor_rate,
                plan.floor_seconds,
            ),
            ("latency", "(b) e2e latency", plan.latency_rate, plan.latency_seconds),
        ):
            phase = monitor.phase()
            latency = e2e_latency(
                deployment,
                rate_per_s=rate,
                duration_s=seconds,
                settle_timeout_s=plan.settle_timeout_s,
                poll_interval_s=plan.poll_interval_s,
                tag=f"{mode}-{key}",
            )
            latency["cpu"] = phase.finish()
            result[key] = latency
            report_latency(label, latency, seconds)
    return result


def completed(results: dict[str, Any]) -> dict[str, Any]:
    return {mode: data for mode, data in results["modes"].items() if "error" not in data}


def report_latency(label: str, latency: dict[str, Any], seconds: float) -> None:
    rate = latency["target_rate_per_s"]
    say(
        f"  {label} (201 -> in open queue with due date) at {rate:.0f}/s for {seconds:.0f} s: "
        f"{fmt_dist(latency['e2e'])}"
    )
    say(
        f"      {latency['visible']}/{latency['accepted']} visible "
        f"({latency['not_visible_in_time']} not in time, {latency['errors']} send errors "
        f"{latency['errors_by_kind'] or ''}, achieved {fmt(latency['achieved_rate_per_s'])}/s, "
        f"max send lag {fmt(latency['max_send_lag_ms'], ' ms')}); intake response "
        f"{fmt_dist(latency['intake_response_time'])}"
    )
    say(
        f"      poller: {latency['polls']} polls, rtt {fmt_dist(latency['poll_rtt'])}, "
        f"errors {latency['poll_errors'] or 0}, fallback lookups {latency['fallback_lookups']}"
    )
    for error in latency["first_errors"]:
        say(f"      error: {error}")
    say_cpu("", latency["cpu"])
    achieved = latency["achieved_rate_per_s"] or 0.0
    if achieved < 0.9 * rate:
        warn(
            f"WARNING: intake sustained only {achieved:.1f} of {rate:.0f} tickets/s: "
            "these latencies are those of an overloaded system"
        )


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    raw_rate = results["raw"]["pg_insert_1conn"]["rows_per_s"]
    out: dict[str, Any] = {}
    for mode, data in completed(results).items():
        ratio = data["intake"]["tickets_per_s"] / raw_rate
        out[f"{mode}_intake_vs_raw_insert"] = {
            "ratio": round(ratio, 3),
            "target": INTAKE_TARGET,
            "pass": ratio >= INTAKE_TARGET,
        }
        p99 = data["latency"]["e2e"]["p99_ms"]
        complete = data["latency"]["not_visible_in_time"] == 0
        out[f"{mode}_e2e_p99_vs_target"] = {
            "p99_ms": p99,
            "target_ms": P99_TARGET_MS,
            "ratio": round(p99 / P99_TARGET_MS, 2) if p99 is not None else None,
            "pass": p99 is not None and p99 <= P99_TARGET_MS and complete,
            "binding": mode == "kafka",
        }
    return out


def summary(results: dict[str, Any]) -> None:
    data = completed(results)
    modes = list(data)
    raw = results["raw"]
    say()
    say("== 3. Summary")
    say(
        f"  raw PostgreSQL INSERT+COMMIT, 1 conn : {fmt(raw['pg_insert_1conn']['rows_per_s'])} rows/s"
    )
    for key, value in raw.items():
        if key.startswith("pg_insert_") and key != "pg_insert_1conn":
            say(
                f"  raw PostgreSQL INSERT+COMMIT, {value['connections']} conns: "
                f"{fmt(value['rows_per_s'])} rows/s"
            )
    if "broker_produce" in raw:
        say(
            f"  raw Kafka produce (acks=all, idemp.) : "
            f"{fmt(raw['broker_produce']['messages_per_s'])} msgs/s"
        )
    width = 14
    header = f"  {'metric':<34}" + "".join(f"{m:>{width}}" for m in modes) + f"{'target':>{width}}"
    say(header)
    say("  " + "-" * (len(header) - 2))

    def row(label: str, values: list[str], target: str = "") -> None:
        say(f"  {label:<34}" + "".join(f"{v:>{width}}" for v in values) + f"{target:>{width}}")

    rat = results["ratios"]
    row("intake tickets/s (c=8)", [fmt(data[m]["intake"]["tickets_per_s"]) for m in modes])
    row("intake errors", [str(data[m]["intake"]["errors"]) for m in modes])
    row(
        "intake / raw 1-conn insert",
        [f"{rat[f'{m}_intake_vs_raw_insert']['ratio'] * 100:.0f}%" for m in modes],
        f">= {INTAKE_TARGET * 100:.0f}%",
    )
    row("pipeline drain after intake (s)", [fmt(data[m]["drain"]["drain_s"]) for m in modes])
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        target = f"<= {P99_TARGET_MS:.0f} ms" if key == "p99_ms" else ""
        row(
            f"e2e {key[:-3]} (ms) at {results['plan']['latency_rate']:.0f}/s",
            [fmt(data[m]["latency"]["e2e"][key]) for m in modes],
            target,
        )
    row(
        f"e2e p99 (ms) at {results['plan']['floor_rate']:.0f}/s (floor)",
        [fmt(data[m]["latency_floor"]["e2e"]["p99_ms"]) for m in modes],
    )
    row(
        "latency run achieved tickets/s",
        [fmt(data[m]["latency"]["achieved_rate_per_s"]) for m in modes],
    )
    row(
        "latency run sends skipped (behind)",
        [str(data[m]["latency"]["skipped_behind_schedule"]) for m in modes],
    )
    row("e2e not visible in time", [str(data[m]["latency"]["not_visible_in_time"]) for m in modes])
    row("poll rtt p50 (ms)", [fmt(data[m]["latency"]["poll_rtt"]["p50_ms"]) for m in modes])
    say()
    for mode in modes:
        intake = rat[f"{mode}_intake_vs_raw_insert"]
        p99 = rat[f"{mode}_e2e_p99_vs_target"]
        say(
            f"  {mode}: intake/raw = {intake['ratio'] * 100:.0f}% "
            f"({'PASS' if intake['pass'] else 'FAIL'} vs >= {INTAKE_TARGET * 100:.0f}%); "
            f"e2e p99 = {fmt(p99['p99_ms'], ' ms')} = {fmt(p99['ratio'], 'x', 2)} of "
            f"{P99_TARGET_MS:.0f} ms target ({'PASS' if p99['pass'] else 'FAIL'}"
            f"{'' if p99['binding'] else ', informational'})"
        )
    say_failures({m: d["error"] for m, d in results["modes"].items() if "error" in d})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (~1 minute)")
    parser.add_argument("--mode", choices=["embedded", "kafka", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server logs)")
    parser.add_argument(
        "--log-level", default="WARNING", help="Deskstream services' log level (WARNING)"
    )
    args = parser.parse_args(argv)
    os.environ["TEST_LOG_LEVEL"] = args.log_level  # read by tests.support.platform.base_env
    plan = QUICK if args.quick else Plan()
    modes = list(deploy.MODES) if args.mode == "both" else [args.mode]
    workdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-"))
    monitor = CpuMonitor()
    results: dict[str, Any] = {
        **run_facts(args.quick),
        "plan": asdict(plan),
        "raw": {},
        "modes": {},
    }
    began = time.perf_counter()
    say(
        f"Deskstream bench ({'quick' if args.quick else 'full'}, modes: {', '.join(modes)}); "
        f"logs in {workdir}"
    )
    ok = False
    try:
        results["raw"] = run_raw(plan, workdir, modes, monitor)
        for mode in modes:
            try:
                results["modes"][mode] = run_mode(mode, plan, workdir, monitor)
            except Exception as exc:  # the other mode's figures are still worth having
                results["modes"][mode] = {"error": failed(f"{mode} mode", exc)}
        results["ratios"] = ratios(results)
        conclude(results, began, summary, RESULTS)
        ok = not any("error" in data for data in results["modes"].values())
    finally:
        clean_up(workdir, ok=ok, keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
