"""One nemesis per fault of RELIABILITY.md: `start()` injects it, `heal()` ends it, `record`
says what it really did (so a run can prove the fault fired) and `verify()` adds the fault's
own criterion (e.g. F7: 503, never 500) as a list of violations.

Process faults act on the distributed deployment's real processes; a killed process is
SIGKILLed with its children (gunicorn workers, the spawned consumer beside an HTTP service)
and restarted on the same port."""

from __future__ import annotations

import abc
import contextlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.chaos.load import Load
from tests.support.kafka_broker import KafkaBroker
from tests.support.platform import Deployment, Process
from tests.support.servers import PostgresDatabase, SmtpSink

CONSUMERS = ("routing", "sla", "notify", "query")  # query's consumer runs beside its HTTP


@dataclass
class Stage:
    """What a nemesis may act on."""

    deployment: Deployment
    database: PostgresDatabase
    broker: KafkaBroker
    smtp: SmtpSink
    workdir: Path
    rng: random.Random
    quick: bool
    load: Load | None = None
    extra_acks: dict[str, str] = field(default_factory=dict)  # tickets made by nemeses


class Nemesis(abc.ABC):
    """One fault: `start` causes it, `heal` ends it, `record` says what was done."""

    fault = ""
    title = ""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.record: list[str] = []

    @property
    def fired(self) -> bool:
        return bool(self.record)

    @abc.abstractmethod
    def start(self) -> None:
        """Cause the fault, noting what was done."""

    def heal(self) -> None:  # noqa: B027 - an optional hook: most faults end by themselves
        """End the fault; by default it ended by itself."""

    def verify(self) -> list[str]:
        """Violations of the fault's own criterion (after the checker is clean)."""
        return []

    def _note(self, text: str) -> None:
        self.record.append(f"{time.strftime('%H:%M:%S')} {text}")


# -- processes -----------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant, parents first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    return tree


def kill_tree(process: Process) -> int:
    """SIGKILL a service process and its children at once; returns how many died."""
    pids = process_tree(process.popen.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.popen.wait(10)
    return len(pids)


def restart(deployment: Deployment, name: str, service: str | None = None) -> Process:
    old = deployment.processes[name]
    return deployment.start(name, ["serve", service or name], port=old.port)


class KillConsumer(Nemesis):
    fault, title = "F1", "SIGKILL a consumer at a random point"
    choices: tuple[str, ...] = CONSUMERS

    def start(self) -> None:
        self.name = self.stage.rng.choice(self.choices)
        process = self.stage.deployment.processes[self.name]
        self.in_flight = self._in_flight()
        killed = kill_tree(process)
        self._note(
            f"SIGKILL {self.name} pid {process.popen.pid} "
            f"({killed} processes, {self.in_flight} requests in flight)"
        )

    def _in_flight(self) -> int:
        return self.stage.load.in_flight if self.stage.load else 0

    def heal(self) -> None:
        time.sleep(self.stage.rng.uniform(0, 1.5))
        restart(self.stage.deployment, self.name)
        self._note(f"restarted {self.name}")


class KillRelay(KillConsumer):
    fault, title = "F2", "SIGKILL the relay between publish and mark"
    choices = ("relay",)


class KillIntake(KillConsumer):
    fault, title = "F3", "SIGKILL intake's HTTP with requests in flight"
    choices = ("intake",)

    def _in_flight(self, wait_s: float = 3.0) -> int:
        # The kill waits (briefly) for a request to be in flight: that is the fault.
        deadline = time.monotonic() + wait_s
        while super()._in_flight() == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        return super()._in_flight()

    def verify(self) -> list[str]:
        return [] if self.in_flight else ["intake was killed with no request in flight"]


class RestartBroker(Nemesis):
    fault, title = "F4", "broker restart, clean and kill -9"

    def start(self) -> None:
        self.hard = self.stage.quick or self.stage.rng.random() < 0.5
        if self.hard:
            self.stage.broker.kill()
        else:
            self.stage.broker.stop()
        self._note(f"broker {'SIGKILL' if self.hard else 'SIGTERM'}")

    def heal(self) -> None:
        time.sleep(self.stage.rng.uniform(0.5, 2.0))
        took = self.stage.broker.start()
        self._note(f"broker up again after {took:.1f} s")


class _Database:
    """What the database faults act through: a connection to the maintenance database (a
    database cannot refuse connections to itself from a session inside it)."""

    def __init__(self, database: PostgresDatabase) -> None:
        dsn = database.dsn.rpartition("/")[0] + f"/{database.maintenance_db}"
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.name = database.name

    def terminate_backends(self) -> int:
        rows = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (self.name,),
        ).fetchall()
        return sum(1 for (done,) in rows if done)

    def allow_connections(self, allowed: bool) -> None:
        statement = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(self.name), sql.SQL("true" if allowed else "false")
        )
        self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()


class TerminateBackends(Nemesis):
    fault, title = "F6", "PostgreSQL backends terminated repeatedly"
    period_s = (0.2, 0.8)

    def start(self) -> None:
        self.db = _Database(self.stage.database)
        self.terminated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.fault)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.terminated += self.db.terminate_backends()
            self._stop.wait(self.stage.rng.uniform(*self.period_s))

    def heal(self) -> None:
        self._stop.set()
        self._thread.join()
        self.db.close()
        if self.terminated:
            self._note(f"terminated {self.terminated} backends")


class DatabaseDown(TerminateBackends):
    """The shared cluster serves every other test, so it is not stopped: the test database
    refuses new connections (ALLOW_CONNECTIONS false) and its backends are terminated, which
    is what services see when PostgreSQL is down."""

    fault, title = "F7", "PostgreSQL unavailable under load (emulated)"

    def start(self) -> None:
        self.before = dict(self.stage.load.statuses) if self.stage.load else {}
        super().start()
        self.db.allow_connections(False)
        self.db.terminate_backends()  # any that connected in between
        self._note("ALLOW_CONNECTIONS false")

    def heal(self) -> None:
        self.db.allow_connections(True)
        super().heal()
        self._note("ALLOW_CONNECTIONS true")

    def verify(self) -> list[str]:
        statuses = self.stage.load.statuses if self.stage.load else {}
        problems = [
            f"{n} answers {s}" for s, n in statuses.items() if s.startswith("5") and s != "503"
        ]
        if not statuses.get("503"):
            problems.append("no 503 while the database was down")
        else:
            self._note(f"intake answered 503 x{statuses['503']}")
        return problems


class RollingRestart(Nemesis):
    """Replicas of one consumer share its group; each is stopped (SIGTERM) and started in
    turn, so partitions move between members while effects are being made."""

    fault, title = "F12", "rolling restart of consumer replicas"

    def start(self) -> None:
        deployment = self.stage.deployment
        self.service = self.stage.rng.choice(("routing", "sla", "notify"))
        self.names = [self.service]
        for n in range(2, 3 if self.stage.quick else 4):
            name = f"{self.service}-{n}"
            deployment.start(name, ["serve", self.service])
            self.names.append(name)
        self._note(f"{len(self.names)} replicas of {self.service}")
        for name in self.names:
            deployment.processes[name].stop()
            restart(deployment, name, self.service)
            self._note(f"restarted {name}")

    def heal(self) -> None:
        for name in self.names[1:]:
            self.stage.deployment.processes.pop(name).stop()


PROCESS_AND_DATABASE: dict[str, Any] = {
    n.fault: n
    for n in (
        KillConsumer,
        KillRelay,
        KillIntake,
        RestartBroker,
        TerminateBackends,
        DatabaseDown,
        RollingRestart,
    )
}
