"""Load as the benches apply it: a closed loop of concurrent clients sending back to back until
a deadline, and the tally of what each answer was (bench/intake.py's ticket rate, the email
rates of bench/mail.py)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.stats import summary_ms

ERROR = "error"  # an outcome that is not processed: a 5xx, a 75 from the pipe, an exception

# Request i through the client's session: (outcome, detail); outcomes starting with "error"
# are not processed, the others are counted by name.
Send = Callable[[requests.Session, int], tuple[str, str]]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def add(self, outcome: str, took: float, detail: str = "") -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if outcome.startswith(ERROR):
                if len(self.first_errors) < 3:
                    self.first_errors.append(f"{outcome}: {detail[:300]}")
            else:
                self.latencies.append(took)

    def result(self, seconds: float, unit: str) -> dict[str, Any]:
        errors = {k: v for k, v in self.outcomes.items() if k.startswith(ERROR)}
        processed = sum(self.outcomes.values()) - sum(errors.values())
        return {
            "seconds": round(seconds, 3),
            "processed": processed,
            f"{unit}_per_s": round(processed / seconds, 1) if seconds > 0 else 0.0,
            "outcomes": {k: v for k, v in self.outcomes.items() if k not in errors},
            "errors": sum(errors.values()),
            "errors_by_kind": errors,
            "first_errors": self.first_errors,
            "response_time": summary_ms(self.latencies),
        }


def closed_loop(
    send: Send, *, concurrency: int, duration_s: float, max_requests: int, unit: str
) -> dict[str, Any]:
    """``concurrency`` threads send back to back until ``duration_s`` has passed or
    ``max_requests`` were attempted; the rate counts processed outcomes (``{unit}_per_s``)."""
    tally = Tally()
    attempts = itertools.count()  # next() is atomic under the GIL
    began = time.perf_counter()
    deadline = began + duration_s

    def client() -> float:
        with requests.Session() as session:
            while time.perf_counter() < deadline and (i := next(attempts)) < max_requests:
                sent = time.perf_counter()
                try:
                    outcome, detail = send(session, i)
                except requests.RequestException as exc:
                    outcome, detail = f"{ERROR} {type(exc).__name__}", str(exc)
                tally.add(outcome, time.perf_counter() - sent, detail)
        return time.perf_counter()

    with ThreadPoolExecutor(concurrency, thread_name_prefix="load") as pool:
        ended = max(pool.map(lambda _: client(), range(concurrency)))
    result = tally.result(ended - began, unit)
    result["concurrency"] = concurrency
    return result
