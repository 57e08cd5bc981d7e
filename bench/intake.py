"""Intake throughput: tickets/s accepted (201) by the osTicket-compatible API under a closed
loop of N concurrent clients, and how long the pipeline then needs to give them all a due
date (the drain)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.stats import summary_ms
from tests.support.platform import Deployment

TIMEOUT_S = 10.0


def ticket_payload(tag: str, i: int) -> dict[str, str]:
    return {
        "name": "Bench Requester",
        "email": f"bench-{tag}-{i}@example.com",
        "subject": f"Benchmark ticket {tag}-{i}",
        "message": "The printer is on fire again. " * 8,
    }


def post_ticket(
    session: requests.Session, deployment: Deployment, payload: dict[str, str]
) -> requests.Response:
    return session.post(
        f"{deployment.intake_url}/api/tickets.json",
        json=payload,
        headers={"X-API-Key": deployment.api_key},
        timeout=TIMEOUT_S,
    )


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.first_errors) < 3:
                self.first_errors.append(f"{kind}: {detail[:300]}")


def intake_rate(
    deployment: Deployment, *, concurrency: int, duration_s: float, max_tickets: int, tag: str
) -> dict[str, Any]:
    """Closed loop: ``concurrency`` threads post tickets back to back until ``duration_s``
    has passed or ``max_tickets`` were attempted. Only 201 answers count as accepted."""
    tally = _Tally()
    attempts = itertools.count()  # next() is atomic under the GIL
    began = time.perf_counter()
    deadline = began + duration_s

    def client() -> float:
        with requests.Session() as session:
            while time.perf_counter() < deadline and (i := next(attempts)) < max_tickets:
                sent = time.perf_counter()
                try:
                    response = post_ticket(session, deployment, ticket_payload(tag, i))
                except requests.RequestException as exc:
                    tally.error(type(exc).__name__, str(exc))
                    continue
                took = time.perf_counter() - sent
                if response.status_code == 201:
                    with tally.lock:
                        tally.numbers.append(response.text.strip())
                        tally.latencies.append(took)
                else:
                    tally.error(f"HTTP {response.status_code}", response.text)
        return time.perf_counter()

    with ThreadPoolExecutor(concurrency, thread_name_prefix="intake") as pool:
        ended = max(pool.map(lambda _: client(), range(concurrency)))
    elapsed = ended - began
    accepted = len(tally.numbers)
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "accepted": accepted,
        "errors": sum(tally.errors.values()),
        "errors_by_kind": dict(tally.errors),
        "first_errors": tally.first_errors,
        "tickets_per_s": round(accepted / elapsed, 1) if elapsed > 0 else 0.0,
        "response_time": summary_ms(tally.latencies),
        "numbers": tally.numbers,
    }


def open_queue_page(
    session: requests.Session, deployment: Deployment, page: int = 1, per_page: int = 200
) -> dict[str, Any]:
    response = session.get(
        f"{deployment.query_url}/api/v1/queues/open/tickets",
        params={"per_page": str(per_page), "sort": "-created", "page": str(page)},
        headers=deployment.headers(),
        timeout=TIMEOUT_S,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def wait_until_due(
    deployment: Deployment, numbers: list[str], timeout_s: float, interval_s: float = 0.25
) -> dict[str, Any]:
    """Wait until every ticket in ``numbers`` is in the open queue with a due date, paging
    through the whole queue each round. Returns the drain time and what was still missing."""
    wanted = set(numbers)
    began = time.perf_counter()
    missing = len(wanted)
    with requests.Session() as session:
        while True:
            ready: set[str] = set()
            page = 1
            while True:
                body = open_queue_page(session, deployment, page)
                ready.update(t["number"] for t in body["tickets"] if t["sla"]["due_at"])
                if page * body["per_page"] >= body["total"]:
                    break
                page += 1
            missing = len(wanted - ready)
            elapsed = time.perf_counter() - began
            if missing == 0 or elapsed >= timeout_s:
                break
            time.sleep(interval_s)
    return {
        "tickets": len(wanted),
        "drain_s": round(elapsed, 2),
        "missing_after_timeout": missing,
    }
