"""Start the infrastructure and Deskstream for one mode, and always stop all of it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from libs.events.catalog import all_topics
from tests.support.platform import Deployment, start_distributed, start_embedded
from tests.support.servers import PostgresDatabase, TansuBroker

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
    broker: TansuBroker | None = None


@contextlib.contextmanager
def running(mode: str, workdir: Path) -> Iterator[Running]:
    """A running Deskstream in ``mode`` ("embedded" or "kafka"); everything it needed
    (database, broker, processes) is stopped on exit, also on errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    database: PostgresDatabase | None = None
    broker: TansuBroker | None = None
    with contextlib.ExitStack() as stack:
        if mode == "embedded":
            deployment = _guarded(lambda: start_embedded(workdir))
        elif mode == "kafka":
            database = PostgresDatabase(log_dir=workdir)
            database.create()
            stack.callback(database.drop)
            broker = TansuBroker(log_dir=workdir)
            stack.callback(broker.stop)
            broker.start()
            broker.create_topics(all_topics(), partitions=3)
            deployment = _guarded(
                lambda: start_distributed(
                    workdir, database_url=database.url, bootstrap=broker.bootstrap
                )
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")
        stack.callback(deployment.stop)
        yield Running(deployment, database, broker)
