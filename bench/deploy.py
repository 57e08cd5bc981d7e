"""Start the infrastructure and Deskstream for one mode, and always stop all of it; warm it up
before the first figure."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.intake import post_ticket, ticket_payload, wait_until_due
from bench.procstat import CpuMonitor
from bench.report import say
from libs.events.catalog import all_topics
from tests.support.kafka_broker import KafkaBroker
from tests.support.platform import Deployment, start_distributed, start_embedded
from tests.support.servers import PostgresDatabase

MODES = ("embedded", "kafka")


def _children() -> dict[int, str]:
    """Direct children of this process: pid -> command line."""
    me = os.getpid()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == me:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    return found


def _guarded(start: Callable[[], Deployment]) -> Deployment:
    """Run ``start``; if it fails half way, stop the Deskstream processes it had started
    (start_embedded/start_distributed do not hand back a partial Deployment)."""
    before = set(_children())
    try:
        return start()
    except BaseException:
        for pid, cmdline in _children().items():
            if pid not in before and "services.cli" in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        raise


@dataclass
class Running:
    deployment: Deployment
    database: PostgresDatabase | None = None
    broker: KafkaBroker | None = None


def backing_services(
    stack: contextlib.ExitStack[Any], workdir: Path
) -> tuple[PostgresDatabase, KafkaBroker]:
    """What the distributed mode runs on: a fresh database and a broker with every topic, both
    torn down when ``stack`` closes."""
    database = PostgresDatabase(log_dir=workdir)
    database.create()
    stack.callback(database.drop)
    broker = KafkaBroker(log_dir=workdir)
    stack.callback(broker.discard)
    broker.start()
    broker.create_topics(all_topics(), partitions=3)
    return database, broker


@contextlib.contextmanager
def running(mode: str, workdir: Path) -> Iterator[Running]:
    """A running Deskstream in ``mode`` ("embedded" or "kafka"); everything it needed
    (database, broker, processes) is stopped on exit, also on errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    database: PostgresDatabase | None = None
    broker: KafkaBroker | None = None
    with contextlib.ExitStack() as stack:
        if mode == "embedded":
            deployment = _guarded(lambda: start_embedded(workdir))
        elif mode == "kafka":
            database, broker = backing_services(stack, workdir)
            deployment = _guarded(
                lambda: start_distributed(
                    workdir, database_url=database.url, bootstrap=broker.bootstrap
                )
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")
        stack.callback(deployment.stop)
        yield Running(deployment, database, broker)


@contextlib.contextmanager
def warmed_up(
    mode: str,
    workdir: Path,
    monitor: CpuMonitor,
    result: dict[str, Any],
    settle_s: float,
    warmup_tickets: int,
) -> Iterator[Running]:
    """``running`` in ``workdir/mode``, its processes, database and broker watched by
    ``monitor``, given ``settle_s`` for consumer groups to join and ``warmup_tickets`` through
    the whole pipeline; the start-up time goes to result["startup_s"]."""
    began = time.perf_counter()
    with running(mode, workdir / mode) as stack:
        deployment = stack.deployment
        result["startup_s"] = round(time.perf_counter() - began, 1)
        monitor.roots = {p.popen.pid: name for name, p in deployment.processes.items()}
        if stack.database is not None:
            monitor.databases.add(stack.database.name)
        if stack.broker is not None:
            monitor.brokers.add(stack.broker.marker)
        time.sleep(settle_s)
        warm = warm_up(deployment, warmup_tickets, f"{mode}-warmup")
        say(
            f"  started in {result['startup_s']} s ({', '.join(deployment.processes)}); "
            f"warm-up: {warm['tickets']} tickets due after {warm['drain_s']} s"
        )
        yield stack


def warm_up(deployment: Deployment, count: int, tag: str) -> dict[str, Any]:
    """A few tickets through the whole pipeline, so consumers are assigned and warm."""
    numbers = []
    with requests.Session() as session:
        for i in range(count):
            response = post_ticket(session, deployment, ticket_payload(tag, i))
            if response.status_code != 201:
                raise RuntimeError(
                    f"warm-up ticket refused: {response.status_code} {response.text}"
                )
            numbers.append(response.text.strip())
    drained = wait_until_due(deployment, numbers, timeout_s=60)
    if drained["missing_after_timeout"]:
        raise RuntimeError(
            f"warm-up tickets never got a due date: {drained}; {diagnose(deployment, numbers)}"
        )
    return drained


def diagnose(deployment: Deployment, numbers: list[str]) -> str:
    """Where the given tickets are stuck: in the queue at all, and the first one's events."""
    try:
        with requests.Session() as session:
            queue = session.get(
                f"{deployment.query_url}/api/v1/queues/open/tickets",
                params={"per_page": "200", "sort": "-created"},
                headers=deployment.headers(),
                timeout=10,
            ).json()
            listed = {t["number"]: t["sla"]["due_at"] for t in queue["tickets"]}
            events = session.get(
                f"{deployment.query_url}/api/v1/tickets/{numbers[0]}/events",
                headers=deployment.headers(),
                timeout=10,
            )
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"diagnosis failed: {exc!r}"
    in_queue = [n for n in numbers if n in listed]
    types = [e["type"] for e in events.json()["events"]] if events.ok else events.status_code
    return (
        f"{len(in_queue)}/{len(numbers)} in the open queue (none with a due date); "
        f"events of {numbers[0]}: {types}"
    )
