"""``python -m bench.mail``: email intake, next to the plain JSON ticket rate of the same run.

Per mode (embedded: `deskstream run` on SQLite; kafka: the distributed services on PostgreSQL):

0. reference: ``POST /api/tickets.json`` (no attachment), concurrency 8 (measured first and
   again last; the ratios divide by the mean of both);
1. ``deskstream pipe``: every corpus email (tests/fixtures/mail/mikel-mail/) through its own
   process, one after another, as an MTA would pipe them (in a second mode every third one:
   the cost is mostly start-up; ``--all-pipes`` for all); then the corpus through
   ``receive_email`` in this process (parse + commit without a process start-up); and, once,
   ``parse_email`` alone;
2. ``POST /api/tickets.email``: the corpus, concurrency 8;
3. ``POST /api/tickets.json`` with a 100 KB attachment (base64 data URL), concurrency 8.

Every use of a corpus email gets a fresh Message-ID (bench/mailcorpus.py), so none is answered as
a duplicate. Refusals (bounces for no known ticket, unparseable messages, ...) count as processed
and are reported. Before the modes: the start-up cost of a Python process, of the pipe's imports,
and of a whole `deskstream pipe` that commits nothing.

Prints a markdown summary table and writes bench/results/mail.json.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import requests

from bench import deploy
from bench.intake import TIMEOUT_S, json_ticket
from bench.load import ERROR, Send, Tally, closed_loop
from bench.mailcorpus import CORPUS, fresh_corpus, load_corpus
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
from bench.stats import fmt, fmt_dist
from libs.platform.settings import Settings
from services.intake.domain.mail.parser import parse_email
from services.intake.email_intake import receive_email
from services.platform import Platform
from tests.support.platform import ROOT, Deployment, base_env

RESULTS = Path(__file__).resolve().parent / "results" / "mail.json"
PIPE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Plan:
    settle_s: float = 3.0  # after the services report ready: consumer groups join
    warmup_tickets: int = 10  # through the whole pipeline before the first figure
    concurrency: int = 8
    api_seconds: float = 6.0
    api_max_requests: int = 5000
    attachment_bytes: int = 100 * 1024
    corpus_limit: int = 0  # the first N corpus emails only (0: every one)
    # The pipe's cost is mostly process start-up, the same in every mode: the first mode pipes
    # every email, later ones every Nth (1: all, --all-pipes), to keep a run near 5 minutes.
    later_pipe_stride: int = 3
    inprocess_passes: int = 2  # over the corpus, each pass with fresh Message-IDs
    parse_passes: int = 5
    startup_runs: int = 3
    quiet_cores: float = 0.3  # Deskstream is idle again below this (background work done)
    quiet_timeout_s: float = 20.0


QUICK = Plan(
    settle_s=2.0,
    warmup_tickets=3,
    api_seconds=3.0,
    api_max_requests=1000,
    corpus_limit=15,
    later_pipe_stride=1,
    inprocess_passes=1,
    parse_passes=2,
    startup_runs=2,
    quiet_timeout_s=8.0,
)


# -- load: the email API in a closed loop -------------------------------------------------


# osTicket's answers for email it will not take (services/intake/entrypoints/http.py).
REFUSED_STATUSES = (400, 403, 422)


def email_api(deployment: Deployment, messages: list[tuple[str, bytes]]) -> Send:
    """``POST /api/tickets.email``: request i sends messages[i] (as many as max_requests)."""

    def send(session: requests.Session, i: int) -> tuple[str, str]:
        name, raw = messages[i]
        response = session.post(
            f"{deployment.intake_url}/api/tickets.email",
            data=raw,
            headers={"X-API-Key": deployment.api_key, "Content-Type": "message/rfc822"},
            timeout=TIMEOUT_S,
        )
        if response.status_code == 201:
            return "accepted (201)", ""
        if response.status_code in REFUSED_STATUSES and "Unable to create" in response.text:
            return f"refused ({response.status_code})", ""
        return f"{ERROR} HTTP {response.status_code}", f"{name}: {response.text}"

    return send


def corpus_stream(corpus: list[tuple[str, bytes]], count: int, tag: str) -> list[tuple[str, bytes]]:
    """`count` messages: the corpus over and over, each pass with fresh Message-IDs."""
    passes = -(-count // len(corpus))
    out = [m for p in range(passes) for m in fresh_corpus(corpus, f"{tag}{p}")]
    return out[:count]


# -- the pipe, in processes and in-process ---------------------------------------------------


def deskstream_argv() -> list[str]:
    """The `deskstream` console script an MTA would run (beside this interpreter)."""
    script = Path(sys.executable).with_name("deskstream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli"]


def pipe_one(argv: list[str], raw: bytes, env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """One `deskstream pipe` process: (outcome, stderr tail) from its exit status and output."""
    done = subprocess.run(
        argv, input=raw, env=env, cwd=cwd, capture_output=True, timeout=PIPE_TIMEOUT_S
    )
    stderr = done.stderr.decode(errors="replace").strip()
    if done.returncode == 0:
        words = done.stdout.decode(errors="replace").split()
        return (words[0] if words else "exit 0, no output"), stderr
    if done.returncode == 65:
        return "refused", stderr
    return f"{ERROR} exit {done.returncode}", stderr.splitlines()[-1] if stderr else ""


def sequential(
    messages: list[tuple[str, bytes]], take: Callable[[bytes], tuple[str, str]], unit: str
) -> dict[str, Any]:
    """Each message through `take`, one after another; the rate counts processed ones."""
    tally = Tally()
    began = time.perf_counter()
    for name, raw in messages:
        sent = time.perf_counter()
        try:
            outcome, detail = take(raw)
        except Exception as exc:  # reported, and the run goes on
            outcome, detail = f"{ERROR} {type(exc).__name__}", str(exc)
        tally.add(outcome, time.perf_counter() - sent, f"{name}: {detail}")
    result = tally.result(time.perf_counter() - began, "emails")
    result["per_email"] = result.pop("response_time")
    return result


def mode_settings(deployment: Deployment, embedded: bool) -> Settings:
    settings = Settings.from_env(deployment.env)
    return settings.with_data_dir(deployment.workdir / "var") if embedded else settings


def in_process(
    settings: Settings, messages: list[tuple[str, bytes]], cold: bytes
) -> dict[str, Any]:
    """``receive_email`` on a Platform built once: parse + commit, no process start-up. The
    `cold` email goes first, uncounted (its time is reported: what every pipe pays again)."""
    platform = Platform.build(settings)
    try:

        def take(raw: bytes) -> tuple[str, str]:
            outcome = receive_email(platform, raw, channel="pipe")
            return outcome.action, outcome.reason or ""

        began = time.perf_counter()
        take(cold)
        cold_ms = round((time.perf_counter() - began) * 1000, 1)
        result = sequential(messages, take, "emails")
        result["cold_first_email_ms"] = cold_ms
        return result
    finally:
        platform.close()


def parse_only(corpus: list[tuple[str, bytes]], passes: int, limit: int) -> dict[str, Any]:
    """``parse_email`` over the corpus, best of `passes` (pure CPU, no database)."""
    from services.intake.domain.mail.parsed import Unparseable

    best = float("inf")
    unparseable = 0
    for _ in range(passes):
        unparseable = 0
        began = time.perf_counter()
        for _name, raw in corpus:
            try:
                parse_email(raw, max_attachment_bytes=limit)
            except Unparseable:
                unparseable += 1
        best = min(best, time.perf_counter() - began)
    return {
        "emails": len(corpus),
        "passes": passes,
        "best_pass_s": round(best, 4),
        "emails_per_s": round(len(corpus) / best, 1),
        "unparseable": unparseable,
    }


def startup_costs(runs: int, workdir: Path) -> dict[str, Any]:
    """What a pipe process costs before it touches an email: a bare interpreter, the CLI
    module (which imports lazily), the pipe's own imports, and a whole `deskstream pipe` given
    an empty message (refused before any database work: exit 65)."""
    env = base_env()
    data = ["--data-dir", str(workdir / "startup-var")]
    commands = {
        "python_bare": [sys.executable, "-c", "pass"],
        "import_services_cli": [sys.executable, "-c", "import services.cli"],
        "import_pipe_modules": [
            sys.executable,
            "-c",
            "import services.platform, services.intake.email_intake",
        ],
        "pipe_empty_message": [*deskstream_argv(), "pipe", *data],
    }
    out: dict[str, Any] = {}
    for key, argv in commands.items():
        times, codes = [], set()
        for _ in range(runs):
            began = time.perf_counter()
            done = subprocess.run(
                argv, input=b"", env=env, cwd=ROOT, capture_output=True, timeout=PIPE_TIMEOUT_S
            )
            times.append(time.perf_counter() - began)
            codes.add(done.returncode)
        out[key] = {
            "command": " ".join(Path(a).name if a == sys.executable else a for a in argv),
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "runs": runs,
            "exit_codes": sorted(codes),
        }
    return out


# -- one mode ---------------------------------------------------------------------------------


def wait_quiet(monitor: CpuMonitor, plan: Plan) -> dict[str, Any]:
    """Wait until the deployment's background work (routing, SLA, notifications, projections
    of the last phase) is done, so it does not run into the next phase's figure."""
    ours = {*monitor.roots.values(), "postgres", "kafka"}
    ours |= {f"{name}/child" for name in monitor.roots.values()}
    began = time.perf_counter()
    busy = 0.0
    while time.perf_counter() - began < plan.quiet_timeout_s:
        phase = monitor.phase()
        time.sleep(1.0)
        cpu = phase.finish()
        busy = sum(v for k, v in cpu.items() if k in ours)
        if busy < plan.quiet_cores:
            break
    return {"waited_s": round(time.perf_counter() - began, 1), "cores_busy": round(busy, 2)}


@contextlib.contextmanager
def measured(monitor: CpuMonitor, result: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    """A phase: its figures go to result[key], with the CPU it used."""
    figures: dict[str, Any] = {}
    phase = monitor.phase()
    yield figures
    figures["cpu"] = phase.finish()
    result[key] = figures


def report_load(label: str, r: dict[str, Any], unit: str) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
    say(
        f"  {label}: {fmt(r[f'{unit}_per_s'])} {unit}/s ({r['processed']} in {r['seconds']:.1f} s: "
        f"{outcomes}; {r['errors']} errors {r['errors_by_kind'] or ''})"
    )
    times = r.get("response_time") or r.get("per_email")
    if times:
        say(f"      {'response time' if 'response_time' in r else 'per email'}: {fmt_dist(times)}")
    say_cpu("", r["cpu"])
    for error in r["first_errors"]:
        say(f"      error: {error}")
    if r["errors"]:
        warn(f"WARNING: {r['errors']} errors in: {label}")


def run_mode(
    mode: str,
    plan: Plan,
    workdir: Path,
    monitor: CpuMonitor,
    corpus: list[tuple[str, bytes]],
    *,
    first: bool,
) -> dict[str, Any]:
    say(f"== {mode} mode")
    result: dict[str, Any] = {}
    ready = deploy.warmed_up(mode, workdir, monitor, result, plan.settle_s, plan.warmup_tickets)
    with ready as stack:
        deployment = stack.deployment
        embedded = stack.database is None
        quiet: dict[str, Any] = {}
        result["quiet_waits"] = quiet

        def api_phase(key: str, label: str, send: Send, unit: str) -> None:
            quiet[key] = wait_quiet(monitor, plan)
            with measured(monitor, result, key) as figures:
                figures.update(
                    closed_loop(
                        send,
                        concurrency=plan.concurrency,
                        duration_s=plan.api_seconds,
                        max_requests=plan.api_max_requests,
                        unit=unit,
                    )
                )
            report_load(label, result[key], unit)

        c = plan.concurrency
        api_phase(
            "json",
            f"(0) POST /api/tickets.json, c={c} [reference]",
            json_ticket(deployment, f"{mode}-json"),
            "tickets",
        )
        attachment = os.urandom(plan.attachment_bytes)
        api_phase(
            "json_attachment",
            f"(3) POST /api/tickets.json + {plan.attachment_bytes // 1024} KB attachment, c={c}",
            json_ticket(deployment, f"{mode}-attach", attachment),
            "tickets",
        )
        messages = corpus_stream(corpus, plan.api_max_requests, f"{mode}-api")
        api_phase(
            "email_api",
            f"(2) POST /api/tickets.email (corpus, cycled), c={c}",
            email_api(deployment, messages),
            "emails",
        )

        sample = corpus[: plan.corpus_limit] if plan.corpus_limit else corpus
        piped = sample if first else sample[:: plan.later_pipe_stride]
        argv = [*deskstream_argv(), "pipe"]
        if embedded:
            argv += ["--data-dir", str(deployment.workdir / "var")]
        quiet["pipe"] = wait_quiet(monitor, plan)
        # The pipe processes are this process's children: label them as such.
        monitor.roots[os.getpid()] = "pipe processes"
        with measured(monitor, result, "pipe") as figures:
            figures.update(
                sequential(
                    fresh_corpus(piped, f"{mode}-pipe"),
                    lambda raw: pipe_one(argv, raw, deployment.env, deployment.workdir),
                    "emails",
                )
            )
        del monitor.roots[os.getpid()]
        report_load(
            f"(1a) deskstream pipe, {len(piped)} of {len(sample)} emails, one process each, "
            "sequential",
            result["pipe"],
            "emails",
        )

        settings = mode_settings(deployment, embedded)
        quiet["in_process"] = wait_quiet(monitor, plan)
        stream = corpus_stream(sample, len(sample) * plan.inprocess_passes, f"{mode}-inproc")
        with measured(monitor, result, "in_process") as figures:
            cold = fresh_corpus(sample[:1], f"{mode}-warm")[0][1]
            figures.update(in_process(settings, stream, cold))
        report_load(
            f"(1b) receive_email in-process, {len(stream)} emails ({plan.inprocess_passes} "
            f"pass(es)), sequential",
            result["in_process"],
            "emails",
        )
        say(
            f"      first email (cold, uncounted): {result['in_process']['cold_first_email_ms']} ms"
        )

        api_phase(
            "json_after",
            f"(0') POST /api/tickets.json, c={c} [reference, again]",
            json_ticket(deployment, f"{mode}-json-after"),
            "tickets",
        )
        before, after = result["json"]["tickets_per_s"], result["json_after"]["tickets_per_s"]
        result["reference_tickets_per_s"] = round((before + after) / 2, 1)
        if min(before, after) < 0.8 * max(before, after):
            warn(
                f"WARNING: the reference rate moved from {before} to {after} tickets/s during "
                "the run: the ratios are rough"
            )
    return result


def ratios(data: dict[str, Any]) -> dict[str, float | None]:
    ref = data.get("reference_tickets_per_s")
    figures = {
        "json_attachment": data["json_attachment"]["tickets_per_s"],
        "email_api": data["email_api"]["emails_per_s"],
        "pipe": data["pipe"]["emails_per_s"],
        "in_process": data["in_process"]["emails_per_s"],
    }
    return {k: round(v / ref, 3) if ref else None for k, v in figures.items()}


# -- the summary ------------------------------------------------------------------------------


def outcome_text(outcomes: dict[str, int], errors: int) -> str:
    parts = [f"{k} {v}" for k, v in sorted(outcomes.items())]
    return ", ".join(parts + ([f"errors {errors}"] if errors else []))


def summary(results: dict[str, Any]) -> None:
    modes = {m: d for m, d in results["modes"].items() if "error" not in d}
    startup = results.get("startup", {})
    parse = results.get("parse_only")
    say()
    say("== Summary (rates; x ref = ratio to the plain JSON ticket rate of the same mode)")
    say()
    head = ["figure"]
    for mode in modes:
        head += [mode, "x ref"]
    say("| " + " | ".join(head) + " |")
    say("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")

    def row(label: str, key: str | None, value: Callable[[dict[str, Any]], str]) -> None:
        cells = [label]
        for data in modes.values():
            cells.append(value(data))
            ratio = data["ratios"].get(key) if key else None
            cells.append(fmt(ratio, "x", 2) if ratio is not None else "")
        say("| " + " | ".join(cells) + " |")

    c = results["plan"]["concurrency"]
    kb = results["plan"]["attachment_bytes"] // 1024
    row(
        f"plain JSON tickets/s, c={c} (reference: before / after)",
        None,
        lambda d: (
            f"{fmt(d['reference_tickets_per_s'])} ({fmt(d['json']['tickets_per_s'])} / "
            f"{fmt(d['json_after']['tickets_per_s'])})"
        ),
    )
    row(
        f"JSON + {kb} KB attachment tickets/s, c={c}",
        "json_attachment",
        lambda d: fmt(d["json_attachment"]["tickets_per_s"]),
    )
    row(
        f"POST /api/tickets.email emails/s, c={c}",
        "email_api",
        lambda d: fmt(d["email_api"]["emails_per_s"]),
    )
    row(
        "deskstream pipe emails/s (a process each, sequential)",
        "pipe",
        lambda d: fmt(d["pipe"]["emails_per_s"]),
    )
    row(
        "receive_email in-process emails/s (sequential)",
        "in_process",
        lambda d: fmt(d["in_process"]["emails_per_s"]),
    )
    row("pipe: mean ms per email", None, lambda d: fmt(d["pipe"]["per_email"]["mean_ms"]))
    row(
        "in-process: mean ms per email (parse + commit)",
        None,
        lambda d: fmt(d["in_process"]["per_email"]["mean_ms"]),
    )
    row(
        "pipe minus in-process: process cost per email (ms)",
        None,
        lambda d: fmt(d["pipe"]["per_email"]["mean_ms"] - d["in_process"]["per_email"]["mean_ms"]),
    )
    empty = startup.get("pipe_empty_message", {}).get("median_s")
    row(
        "a pipe given an empty message: start-up only (ms)",
        None,
        lambda d: fmt(empty * 1000 if empty else None),
    )
    row(
        "in-process: the first email, cold (ms)",
        None,
        lambda d: fmt(d["in_process"]["cold_first_email_ms"]),
    )
    row(
        "pipe outcomes",
        None,
        lambda d: outcome_text(d["pipe"]["outcomes"], d["pipe"]["errors"]),
    )
    row(
        "in-process outcomes",
        None,
        lambda d: outcome_text(d["in_process"]["outcomes"], d["in_process"]["errors"]),
    )
    row(
        "tickets.email outcomes",
        None,
        lambda d: outcome_text(d["email_api"]["outcomes"], d["email_api"]["errors"]),
    )
    say()
    if parse:
        say(
            f"- parse_email alone (no database, best of {parse['passes']} passes over "
            f"{parse['emails']} emails): {fmt(parse['emails_per_s'])} emails/s "
            f"({parse['best_pass_s'] / parse['emails'] * 1000:.2f} ms per email; "
            f"{parse['unparseable']} unparseable)"
        )
    for figure in startup.values():
        say(
            f"- start-up `{figure['command']}`: {figure['median_s'] * 1000:.0f} ms median "
            f"(min {figure['min_s'] * 1000:.0f}, {figure['runs']} runs, exit {figure['exit_codes']})"
        )
    say_failures({m: d["error"] for m, d in results["modes"].items() if "error" in d}, "- ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mail", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (~1 minute)")
    parser.add_argument("--mode", choices=["embedded", "kafka", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server logs)")
    parser.add_argument(
        "--all-pipes", action="store_true", help="pipe every corpus email in every mode"
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="Deskstream services' log level (WARNING)"
    )
    args = parser.parse_args(argv)
    os.environ["TEST_LOG_LEVEL"] = args.log_level  # read by tests.support.platform.base_env
    # receive_email logs each refusal at WARNING; here they are counted, not printed.
    logging.getLogger("services").setLevel(logging.ERROR)
    plan = QUICK if args.quick else Plan()
    if args.all_pipes:
        plan = replace(plan, later_pipe_stride=1)
    modes = list(deploy.MODES) if args.mode == "both" else [args.mode]
    workdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-mail-"))
    monitor = CpuMonitor()
    corpus = load_corpus()
    results: dict[str, Any] = {
        **run_facts(args.quick),
        "plan": asdict(plan),
        "corpus": {"path": str(CORPUS), "emails": len(corpus)},
        "modes": {},
    }
    began = time.perf_counter()
    say(
        f"Deskstream mail bench ({'quick' if args.quick else 'full'}, modes: {', '.join(modes)}; "
        f"{len(corpus)} corpus emails); logs in {workdir}"
    )
    ok = False
    try:
        say("== start-up and parsing, no deployment")
        results["startup"] = startup_costs(plan.startup_runs, workdir)
        for figure in results["startup"].values():
            say(f"  `{figure['command']}`: {figure['median_s'] * 1000:.0f} ms median")
        limit = Settings().max_attachment_bytes
        results["parse_only"] = parse_only(corpus, plan.parse_passes, limit)
        say(f"  parse_email alone: {fmt(results['parse_only']['emails_per_s'])} emails/s")
        for index, mode in enumerate(modes):
            try:
                data = run_mode(mode, plan, workdir, monitor, corpus, first=index == 0)
                data["ratios"] = ratios(data)
                results["modes"][mode] = data
            except Exception as exc:  # the other mode's figures are still worth having
                results["modes"][mode] = {"error": failed(f"{mode} mode", exc)}
        conclude(results, began, summary, RESULTS)
        ok = not any("error" in data for data in results["modes"].values())
    finally:
        clean_up(workdir, ok=ok, keep=args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
