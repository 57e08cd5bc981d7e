"""The chaos load: bench/load.py's closed loop in a background thread, each request a ticket
with a unique id sent as its Idempotency-Key and retried with that same key until intake
answers (a client that heard nothing must not make a second ticket). Records every answer and
which requester got which ticket number (the acknowledgement)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import requests

from bench.intake import post_ticket, ticket_payload
from bench.load import ERROR, closed_loop
from tests.support.platform import Deployment

RETRY_FOR_S = 120.0  # a request is retried (same key) this long: longer than any fault lasts
RETRY_PAUSE_S = 0.2


class Load:
    """Tickets at a modest paced rate for ``duration_s``; ``acks`` maps each acknowledged
    requester email to its ticket number, ``statuses`` counts every answer (503s, 500s,
    connection errors) so nemeses can judge what clients saw."""

    def __init__(
        self, deployment: Deployment, tag: str, *, concurrency: int = 3, pace_s: float = 0.1
    ) -> None:
        self.deployment = deployment
        self.tag = tag
        self.concurrency = concurrency
        self.pace_s = pace_s
        self.acks: dict[str, str] = {}
        self.statuses: Counter[str] = Counter()
        self.in_flight = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.result: dict[str, Any] = {}

    def start(self, duration_s: float) -> None:
        def run() -> None:
            self.result = closed_loop(
                self._send,
                concurrency=self.concurrency,
                duration_s=duration_s,
                max_requests=100_000,
                unit="tickets",
            )

        self._thread = threading.Thread(target=run, name=f"load-{self.tag}")
        self._thread.start()

    def join(self) -> None:
        """Wait for the loop and every retry still going on."""
        if self._thread is not None:
            self._thread.join()

    def _count(self, what: str, delta: int = 0) -> None:
        with self._lock:
            self.statuses[what] += 1
            self.in_flight += delta

    def _send(self, session: requests.Session, i: int) -> tuple[str, str]:
        payload = ticket_payload(self.tag, i)
        key = f"{self.tag}-{i}"
        deadline = time.monotonic() + RETRY_FOR_S
        detail = ""
        while time.monotonic() < deadline:
            with self._lock:
                self.in_flight += 1
            try:
                response = post_ticket(session, self.deployment, payload, idempotency_key=key)
            except requests.RequestException as exc:
                self._count(type(exc).__name__, -1)
                detail = str(exc)
            else:
                self._count(str(response.status_code), -1)
                if response.status_code == 201:
                    with self._lock:
                        self.acks[payload["email"]] = response.text.strip()
                    time.sleep(self.pace_s)
                    return "created", ""
                detail = response.text
                if response.status_code < 500:  # refused for good: not acknowledged
                    return f"{ERROR} HTTP {response.status_code}", detail
            time.sleep(RETRY_PAUSE_S)
        return f"{ERROR} gave up", detail
