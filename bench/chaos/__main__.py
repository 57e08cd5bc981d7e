"""`python -m bench.chaos [--quick] [--rounds N] [--faults F1,F4]`: exit 1 when any fault lost
or duplicated an effect, never converged, did not fire, or broke its own criterion."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos.runner import FAULTS, passed, run, table
from bench.report import clean_up, conclude, run_facts, say

RESULTS = Path(__file__).resolve().parents[1] / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round of each fault")
    parser.add_argument("--rounds", type=int, help="rounds per fault (default 3; --quick 1)")
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated F-rows")
    parser.add_argument("--keep", action="store_true", help="keep the server logs")
    parser.add_argument("--results", type=Path, help="the JSON file (default bench/results/)")
    args = parser.parse_args(argv)
    faults = [f.strip().upper() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    began = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="deskstream-chaos-"))
    results = run_facts(args.quick)
    say(f"chaos: {', '.join(faults)} against the distributed mode (logs in {workdir})")
    ok = False
    try:
        run(workdir, results, quick=args.quick, rounds=args.rounds, faults=faults)
        ok = all(passed(s) for s in results["faults"]) and not results["rebuild_differences"]
    finally:
        path = args.results or RESULTS / ("chaos-quick.json" if args.quick else "chaos.json")
        conclude(results, began, _summary, path)
        clean_up(workdir, ok=ok, keep=args.keep)
    return 0 if ok else 1


def _summary(results: dict[str, object]) -> None:
    if "faults" not in results:
        return
    say("\n" + table(results))
    differences = results.get("rebuild_differences")
    if differences is not None:
        say(f"\n  query projection vs a rebuild from position 0: {differences or 'equal'}")


if __name__ == "__main__":
    sys.exit(main())
