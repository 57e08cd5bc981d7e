"""One distributed deployment (PostgreSQL, Apache Kafka on disk, surviving kill -9, an SMTP
sink, one process per service); every fault several rounds with random timing, the load running
through each; the checker after each heal until clean; a table and bench/results/chaos.json."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from bench.chaos.checker import Checker, Verdict
from bench.chaos.clients import KillPipe, RacingCommands
from bench.chaos.load import Load
from bench.chaos.nemeses import PROCESS_AND_DATABASE, Nemesis, Stage
from bench.chaos.records import DuplicateDelivery, PoisonRecords
from bench.deploy import _guarded, backing_services, warm_up
from bench.report import say
from tests.support.platform import start_distributed
from tests.support.servers import SmtpSink

NEMESES: dict[str, type[Nemesis]] = {
    **PROCESS_AND_DATABASE,
    "F8": DuplicateDelivery,
    "F9": PoisonRecords,
    "F11": RacingCommands,
    "F14": KillPipe,
}
FAULTS = ("F1", "F2", "F3", "F4", "F6", "F7", "F8", "F9", "F11", "F12", "F14")
CONVERGE_TIMEOUT_S = 120.0


@dataclass
class Plan:
    rounds: int
    load_s: float  # how long the load runs each round
    fault_s: tuple[float, float]  # how long a fault that lasts (F6, F7) is held
    rebuild_each_fault: bool
    seed: int = field(default_factory=lambda: random.randrange(2**32))

    @classmethod
    def of(cls, quick: bool, rounds: int | None) -> Plan:
        if quick:
            return cls(rounds or 1, load_s=3.0, fault_s=(2.0, 4.0), rebuild_each_fault=False)
        return cls(rounds or 3, load_s=8.0, fault_s=(5.0, 20.0), rebuild_each_fault=True)


@contextlib.contextmanager
def stage(workdir: Path, quick: bool, rng: random.Random) -> Iterator[Stage]:
    workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database, broker = backing_services(stack, workdir)
        smtp = stack.enter_context(SmtpSink())
        deployment = _guarded(
            lambda: start_distributed(
                workdir, database_url=database.url, bootstrap=broker.bootstrap, smtp_url=smtp.url
            )
        )
        stack.callback(deployment.stop)
        yield Stage(deployment, database, broker, smtp, workdir, rng, quick)


def converge(checker: Checker, acks: dict[str, str], healed: float) -> tuple[Verdict, float | None]:
    """Check until clean; the seconds from heal to clean, or None when it never got there."""
    verdict: Verdict | None = None
    while True:
        try:
            verdict = checker.check(acks)
        except KafkaError as exc:
            # A broker just restarted (F4) can time out the checker's own reads: not clean yet.
            say(f"    checker could not read the topic yet: {exc}")
        else:
            if verdict.clean:
                return verdict, round(time.monotonic() - healed, 2)
        if time.monotonic() - healed > CONVERGE_TIMEOUT_S:
            if verdict is None:
                raise RuntimeError("the checker never read the topic after the fault healed")
            return verdict, None
        time.sleep(0.5)


def run_round(
    stage: Stage, checker: Checker, plan: Plan, fault: str, n: int, acks: dict[str, str]
) -> dict[str, Any]:
    rng = stage.rng
    load = Load(stage.deployment, f"{fault.lower()}r{n}x{rng.randrange(10**6)}")
    stage.load = load
    duplicated_before = len(checker.check(acks).duplicated)
    nemesis = NEMESES[fault](stage)
    load.start(plan.load_s)
    time.sleep(rng.uniform(0.2, 0.5) * plan.load_s)
    failures = []
    try:
        nemesis.start()
        if fault in ("F6", "F7"):
            time.sleep(rng.uniform(*plan.fault_s))
    except Exception as exc:  # one fault's failure is its result, the run goes on
        failures.append(f"start: {type(exc).__name__}: {exc}")
    try:
        nemesis.heal()
    except Exception as exc:
        failures.append(f"heal: {type(exc).__name__}: {exc}")
    healed = time.monotonic()
    load.join()
    round_acks = {**load.acks, **stage.extra_acks}
    stage.extra_acks.clear()
    acks.update(round_acks)
    verdict, converged = converge(checker, acks, healed)
    violations = failures + (nemesis.verify() if not failures else [])
    result = {
        "round": n,
        "acknowledged": len(round_acks),
        "lost": verdict.lost(set(round_acks)),
        "duplicated": max(0, len(verdict.duplicated) - duplicated_before),
        "converge_s": converged,
        "fired": nemesis.fired,
        "record": nemesis.record,
        "violations": violations,
        "answers": dict(load.statuses),
    }
    if not verdict.clean:
        result["checker"] = verdict.summary()
    return result


def run_fault(
    stage: Stage, checker: Checker, plan: Plan, fault: str, acks: dict[str, str]
) -> dict[str, Any]:
    rounds = [run_round(stage, checker, plan, fault, n, acks) for n in range(1, plan.rounds + 1)]
    converged = [r["converge_s"] for r in rounds if r["converge_s"] is not None]
    summary: dict[str, Any] = {
        "fault": fault,
        "title": NEMESES[fault].title,
        "rounds": len(rounds),
        "acknowledged": sum(r["acknowledged"] for r in rounds),
        "lost": sum(r["lost"] for r in rounds),
        "duplicated": sum(r["duplicated"] for r in rounds),
        "converge_s_max": max(converged) if len(converged) == len(rounds) else None,
        "fired": all(r["fired"] for r in rounds),
        "violations": [v for r in rounds for v in r["violations"]],
        "round_details": rounds,
    }
    if plan.rebuild_each_fault:
        summary["rebuild_differences"] = rebuild(stage, checker)
    return summary


def rebuild(stage: Stage, checker: Checker) -> list[str]:
    return checker.rebuild_differences(stage.workdir, stage.deployment.env)[:5]


def run(
    workdir: Path, results: dict[str, Any], *, quick: bool, rounds: int | None, faults: list[str]
) -> None:
    """Fills ``results`` as faults finish, so a run that breaks still reports what it did."""
    plan = Plan.of(quick, rounds)
    rng = random.Random(plan.seed)
    results.update({"seed": plan.seed, "rounds": plan.rounds, "faults": []})
    with stage(workdir, quick, rng) as running:
        warm_up(running.deployment, 3, "chaos-warmup")
        checker = Checker(running.database, running.broker.bootstrap, running.smtp)
        acks: dict[str, str] = {}
        try:
            for fault in faults:
                say(f"  {fault} {NEMESES[fault].title} ...")
                summary = run_fault(running, checker, plan, fault, acks)
                results["faults"].append(summary)
                say("    " + row(summary))
            results["rebuild_differences"] = rebuild(running, checker)
        finally:
            checker.close()


COLUMNS = ("fault", "rounds", "acknowledged", "lost", "duplicated", "converge (s)", "fired", "ok")


def row(summary: dict[str, Any]) -> str:
    converge_s = summary["converge_s_max"]
    values = (
        summary["fault"],
        summary["rounds"],
        summary["acknowledged"],
        summary["lost"],
        summary["duplicated"],
        "never" if converge_s is None else f"{converge_s:.1f}",
        "yes" if summary["fired"] else "NO",
        "yes" if passed(summary) else "NO",
    )
    return "  ".join(f"{v!s:>{len(c)}}" for v, c in zip(values, COLUMNS, strict=True))


def passed(summary: dict[str, Any]) -> bool:
    return (
        summary["lost"] == 0
        and summary["duplicated"] == 0
        and summary["converge_s_max"] is not None
        and summary["fired"]
        and not summary["violations"]
        and not summary.get("rebuild_differences")
    )


def table(results: dict[str, Any]) -> str:
    lines = ["  ".join(COLUMNS)]
    lines += [row(summary) for summary in results["faults"]]
    return "\n".join(lines)
