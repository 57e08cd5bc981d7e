"""The short chaos run (`python -m bench.chaos --quick`: one round of each fault against the
distributed mode): no fault loses or duplicates an acknowledged ticket's effect, each fault
really fired, and the query projection equals a rebuild from position 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.platform import ROOT, base_env


# About 2.5 minutes on 2 otherwise idle cores (one deployment, eleven faults, one round each):
# the limits leave room for a loaded machine.
@pytest.mark.timeout(660)
def test_every_fault_fires_and_loses_or_duplicates_nothing(tmp_path: Path) -> None:
    results = tmp_path / "chaos.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--quick", "--results", str(results)],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert results.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(results.read_text())
    faults = {summary["fault"]: summary for summary in report.get("faults", [])}
    assert set(faults) >= {"F1", "F2", "F3", "F4", "F6", "F7", "F8", "F9", "F11", "F12", "F14"}, (
        run.stdout[-3000:] + run.stderr[-3000:]
    )
    for fault, summary in faults.items():
        details = json.dumps(summary["round_details"])[:2000]
        assert summary["acknowledged"] > 0, f"{fault}: no acknowledged ticket"
        assert summary["lost"] == 0, f"{fault} lost effects: {details}"
        assert summary["duplicated"] == 0, f"{fault} duplicated effects: {details}"
        assert summary["fired"], f"{fault} never fired: {details}"
        assert summary["converge_s_max"] is not None, f"{fault} never converged: {details}"
        assert summary["violations"] == [], f"{fault}: {summary['violations']}"
    assert report["rebuild_differences"] == []
    assert run.returncode == 0, run.stdout[-3000:]
