"""CPU accounting from /proc: which process used how much CPU during a phase.

Processes are labelled: a Deskstream service and its descendants by the service name (the
query service's spawned projector as ``query/child``), PostgreSQL backends serving the
benchmark's own databases as ``postgres``, PostgreSQL's shared background processes as
``postgres/shared``, the benchmark's own broker as ``kafka``, this client as ``bench client``,
and everything else (other users of this machine) as ``other``. A sampler thread reads /proc
every 0.2 s so that short-lived processes (a connection's backend) are counted up to their
last sample. Results are cores busy: 1.0 = one core fully used for the whole phase.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")
SAMPLE_INTERVAL_S = 0.2
MACHINE = "machine"
OTHER = "other"
OTHER_WARN_CORES = 0.25


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(ppid, comm, cpu seconds) of a process, or None if it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or parentheses: split at the last ')'.
    head, _, tail = raw.rpartition(")")
    fields = tail.split()  # fields[0] is stat field 3 (state); utime/stime are fields 14/15
    return int(fields[1]), head.partition("(")[2], (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _pids() -> list[int]:
    return [int(e.name) for e in _PROC.iterdir() if e.name.isdigit()]


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    parts = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) / _TICKS for v in parts]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])  # guest time is already in user


class CpuMonitor:
    """What belongs to the benchmark: Deskstream process roots (pid -> label), the names of
    its databases and the ports of its brokers. Update these before starting a phase."""

    def __init__(self) -> None:
        self.roots: dict[int, str] = {}
        self.databases: set[str] = set()
        self.brokers: set[str] = set()  # KafkaBroker.marker of the benchmark's own brokers

    def phase(self) -> CpuPhase:
        return CpuPhase(self)

    def label(self, pid: int, ppid_of: Mapping[int, int], comm: str) -> str:
        if pid == os.getpid():
            return "bench client"
        current, hops = pid, 0
        while current in ppid_of and hops < 64:
            if current in self.roots:
                name = self.roots[current]
                if current != pid and "multiprocessing" in _cmdline(pid):
                    return f"{name}/child"  # the query service's projector
                return name
            current, hops = ppid_of[current], hops + 1
        if comm.startswith("postgres"):
            cmdline = _cmdline(pid)
            if any(f" {db} " in cmdline for db in self.databases):
                return "postgres"
            # A backend of someone else's database is theirs; the rest is shared machinery.
            return OTHER if "127.0.0.1(" in cmdline or "[local]" in cmdline else "postgres/shared"
        if comm == "java":
            cmdline = _cmdline(pid)
            return "kafka" if any(marker in cmdline for marker in self.brokers) else OTHER
        return OTHER


class CpuPhase:
    """Started by ``CpuMonitor.phase()``; ``finish()`` returns cores busy per label since."""

    def __init__(self, monitor: CpuMonitor) -> None:
        self.monitor = monitor
        self._labels: dict[int, str] = {}
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._sample(first=True)
        self.started = time.monotonic()
        self._start_busy, self._start_total = _machine_busy_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def _sample(self, first: bool = False) -> None:
        stats = {pid: s for pid in _pids() if (s := _stat(pid)) is not None}
        ppid_of = {pid: s[0] for pid, s in stats.items()}
        for pid, (_, comm, cpu) in stats.items():
            if first:
                self._start[pid] = cpu
            self._last[pid] = cpu
            if pid not in self._labels or self._labels[pid] == OTHER:
                # "other" is re-checked: a new backend may not have set its title yet.
                self._labels[pid] = self.monitor.label(pid, ppid_of, comm)

    def finish(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = max(time.monotonic() - self.started, 1e-9)
        busy, total = _machine_busy_s()
        per_label: dict[str, float] = {}
        for pid, cpu in self._last.items():
            # A process that started during the phase counts from zero.
            label = self._labels[pid]
            per_label[label] = per_label.get(label, 0.0) + cpu - self._start.get(pid, 0.0)
        result = {k: round(v / wall, 2) for k, v in sorted(per_label.items()) if v / wall >= 0.01}
        machine = (busy - self._start_busy) / max(total - self._start_total, 1e-9)
        result[MACHINE] = round(machine * (os.cpu_count() or 1), 2)
        return result


def format_cpu(result: Mapping[str, float]) -> str:
    """One line: labels by cores busy, busiest first, then the machine total."""
    ordered = sorted(((k, v) for k, v in result.items() if k != MACHINE), key=lambda kv: -kv[1])
    parts = ", ".join(f"{k} {v:.2f}" for k, v in ordered)
    return f"cores busy: {parts} | machine {result.get(MACHINE, 0):.2f} of {os.cpu_count()}"


def disturbance(result: Mapping[str, float]) -> str | None:
    """A warning when processes outside the benchmark used a noticeable share of the CPU."""
    other = result.get(OTHER, 0.0)
    if other < OTHER_WARN_CORES:
        return None
    return (
        f"WARNING: other processes on this machine used {other:.2f} cores during this phase; "
        "the figures above are disturbed"
    )
