"""Printing figures as a bench runs, the warnings it collects, and how a run is recorded and
concluded (shared by every bench)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.procstat import disturbance, format_cpu

WARNINGS: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str, indent: str = "      ") -> None:
    WARNINGS.append(text)
    say(f"{indent}{text}")


def say_cpu(what: str, cpu: dict[str, float], indent: str = "      ") -> None:
    say(f"{indent}{what}{format_cpu(cpu)}")
    if (warning := disturbance(cpu)) is not None:
        warn(warning, indent)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def run_facts(quick: bool) -> dict[str, Any]:
    """What every results file starts with: when, which commit, which plan, on what machine."""
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }


def failed(what: str, exc: BaseException, limit: int = 2000) -> str:
    """A part of the run that failed (the others go on): its traceback and a line printed;
    returns the error to record."""
    traceback.print_exc()
    say(f"  {what} FAILED: {exc}")
    return f"{type(exc).__name__}: {exc}"[:limit]


def say_failures(failed: Mapping[str, str], bullet: str = "  ") -> None:
    """The summary's tail: the parts that gave no figures, and how many warnings were printed."""
    for part, error in failed.items():
        say(f"{bullet}{part}: FAILED, no figures: {error}")
    if WARNINGS:
        say(f"{bullet}{len(WARNINGS)} warning(s) above; see 'warnings' in the JSON")


def conclude(
    results: dict[str, Any],
    began: float,
    summary: Callable[[dict[str, Any]], None],
    path: Path,
) -> None:
    """The end of a run: its time and warnings into the results, the summary, the JSON file."""
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    results["warnings"] = WARNINGS
    summary(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"\n  results written to {path} (run took {results['elapsed_s']} s)")


def clean_up(workdir: Path, *, ok: bool, keep: bool) -> None:
    """The work dir goes after a good run; after a failed one (or --keep) its logs stay."""
    if ok and not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"  server logs kept in {workdir}")
