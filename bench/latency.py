"""End-to-end latency: from the moment the intake API answered 201 to the moment the ticket is
visible in the open queue with its due date (TicketCreated -> routing -> SLA -> projection).

Tickets are sent on an open-loop schedule (fixed intervals, whatever the response times), and
a poller thread reads the first page of the open queue (newest first) every ~10 ms, recording
when each ticket number first shows up with ``sla.due_at`` set. The recorded time is when the
poll's response arrived, so the figures include up to one poll interval plus one poll round
trip of detection delay (reported as ``poll_rtt``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.intake import TIMEOUT_S, open_queue_page, post_ticket, ticket_payload
from bench.stats import summary_ms
from tests.support.platform import Deployment

PER_PAGE = 200
FALLBACK_AFTER_S = 1.0  # look a pending ticket up by number once it is this old ...
FALLBACK_PER_POLL = 5  # ... at most this many per poll, and only when the page is full
SENDERS = 64  # concurrent requests the open-loop client allows itself
MAX_SEND_LAG_S = 2.0  # a send that cannot start this late is skipped: keeps the run bounded


class QueuePoller(threading.Thread):
    """Polls the open queue and records the first time each number appears with a due date."""

    def __init__(self, deployment: Deployment, interval_s: float) -> None:
        super().__init__(name="queue-poller", daemon=True)
        self.deployment = deployment
        self.interval_s = interval_s
        self.first_due: dict[str, float] = {}
        self.watched: dict[str, float] = {}  # number -> when its 201 arrived (set by senders)
        self.poll_rtts: list[float] = []
        self.errors: Counter[str] = Counter()
        self.fallback_lookups = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(TIMEOUT_S + 5)

    def pending(self) -> list[str]:
        return [n for n in list(self.watched) if n not in self.first_due]

    def run(self) -> None:
        with requests.Session() as session:
            while not self._stop_event.is_set():
                began = time.perf_counter()
                try:
                    self._poll(session, began)
                except (requests.RequestException, ValueError, KeyError) as exc:
                    self.errors[type(exc).__name__] += 1
                pause = self.interval_s - (time.perf_counter() - began)
                if pause > 0:
                    self._stop_event.wait(pause)

    def _poll(self, session: requests.Session, began: float) -> None:
        body = open_queue_page(session, self.deployment, per_page=PER_PAGE)
        seen_at = time.perf_counter()
        self.poll_rtts.append(seen_at - began)
        on_page = set()
        for ticket in body["tickets"]:
            number = ticket["number"]
            on_page.add(number)
            if ticket["sla"]["due_at"] and number not in self.first_due:
                self.first_due[number] = seen_at
        if len(body["tickets"]) < PER_PAGE:
            return
        # A full page may have pushed an old pending ticket off page 1: look it up directly.
        stale = [
            n
            for n in self.pending()
            if n not in on_page and seen_at - self.watched[n] > FALLBACK_AFTER_S
        ]
        for number in stale[:FALLBACK_PER_POLL]:
            self.fallback_lookups += 1
            response = session.get(
                f"{self.deployment.query_url}/api/v1/tickets/{number}",
                headers=self.deployment.headers(),
                timeout=TIMEOUT_S,
            )
            if response.status_code == 200 and response.json()["sla"]["due_at"]:
                self.first_due.setdefault(number, time.perf_counter())


def e2e_latency(
    deployment: Deployment,
    *,
    rate_per_s: float,
    duration_s: float,
    settle_timeout_s: float,
    poll_interval_s: float,
    tag: str,
) -> dict[str, Any]:
    """Send ``rate_per_s`` tickets/s for ``duration_s`` (open loop), then wait up to
    ``settle_timeout_s`` for the stragglers; return the latency distribution and diagnostics."""
    poller = QueuePoller(deployment, poll_interval_s)
    local = threading.local()
    lock = threading.Lock()
    sent: list[tuple[str, float, float, float]] = []  # number, scheduled, sent, 201 arrived
    errors: Counter[str] = Counter()
    first_errors: list[str] = []

    def send(i: int, scheduled: float) -> None:
        started = time.perf_counter()
        if started - scheduled > MAX_SEND_LAG_S:
            with lock:
                errors["skipped: client behind schedule"] += 1
            return
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = post_ticket(session, deployment, ticket_payload(tag, i))
        except requests.RequestException as exc:
            with lock:
                errors[type(exc).__name__] += 1
                first_errors.append(repr(exc)[:300])
            return
        answered = time.perf_counter()
        if response.status_code != 201:
            with lock:
                errors[f"HTTP {response.status_code}"] += 1
                first_errors.append(response.text[:300])
            return
        number = response.text.strip()
        poller.watched[number] = answered
        with lock:
            sent.append((number, scheduled, started, answered))

    total = max(1, round(rate_per_s * duration_s))
    poller.start()
    try:
        time.sleep(0.2)  # let the poller take its first look (old tickets are recorded there)
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="open-loop") as pool:
            start = time.perf_counter() + 0.05
            for i in range(total):
                scheduled = start + i / rate_per_s
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, i, scheduled)
        send_window = max((answered for *_, answered in sent), default=start) - start
        deadline = time.perf_counter() + settle_timeout_s
        while poller.pending() and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    latencies = [
        poller.first_due[n] - answered for n, _, _, answered in sent if n in poller.first_due
    ]
    lags = [started - scheduled for _, scheduled, started, _ in sent]
    responses = [answered - started for _, _, started, answered in sent]
    return {
        "target_rate_per_s": rate_per_s,
        "scheduled": total,
        "accepted": len(sent),
        "achieved_rate_per_s": round(len(sent) / send_window, 1) if send_window > 0 else None,
        "errors": sum(n for kind, n in errors.items() if not kind.startswith("skipped")),
        "skipped_behind_schedule": errors["skipped: client behind schedule"],
        "errors_by_kind": dict(errors),
        "first_errors": first_errors[:3],
        "visible": len(latencies),
        "not_visible_in_time": len(sent) - len(latencies),
        "seen_before_201": sum(1 for v in latencies if v < 0),
        "e2e": summary_ms(latencies),
        "intake_response_time": summary_ms(responses),
        "max_send_lag_ms": round(max(lags) * 1000, 1) if lags else None,
        "polls": len(poller.poll_rtts),
        "poll_rtt": summary_ms(poller.poll_rtts),
        "poll_errors": dict(poller.errors),
        "fallback_lookups": poller.fallback_lookups,
    }
