"""The one loop that drives every worker: embedded subscribers, Kafka subscribers, the relay.

Each worker runs in its own thread: `run_once()` returns how many items it processed; idle or
failing workers back off. A subscription that stopped itself (too many dead letters), or that
failed `stuck_after` attempts in a row on the same work (a dead letter that cannot be written, a
handler that always fails), is recorded in `failures`, which /readyz reports.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Protocol

from libs.events import metrics
from libs.events.clock import Clock, SystemClock
from libs.events.subscription import SubscriptionStopped, is_transient

log = logging.getLogger(__name__)


class Worker(Protocol):
    @property
    def name(self) -> str: ...

    def run_once(self) -> int: ...

    def close(self) -> None: ...


# A worker may also offer `wait_for_work(timeout)`: the runner then blocks there when idle
# (woken by an append) instead of polling every `poll_interval`.


class Runner:
    def __init__(
        self,
        workers: list[Worker],
        poll_interval: float,
        max_backoff: float = 5.0,
        idle_wait: float = 1.0,
        *,
        clock: Clock | None = None,
        stuck_after: int = 5,
    ) -> None:
        self.workers = workers
        self.idle_wait = idle_wait
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.clock = clock or SystemClock()
        self.stuck_after = stuck_after
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failures: dict[str, str] = {}
        self.last_errors: dict[str, str] = {}

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(
                target=self._loop, args=(worker,), name=f"worker-{worker.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self, worker: Worker) -> None:
        backoff = self.poll_interval
        stuck = _Stuck(worker, self)
        try:
            while not self._stop.is_set():
                try:
                    processed = worker.run_once()
                    backoff = self.poll_interval
                    self.last_errors.pop(worker.name, None)
                    stuck.flowing()
                except SubscriptionStopped as exc:
                    self.failures[worker.name] = str(exc)
                    log.error("worker %s stopped: %s", worker.name, exc)
                    return
                except Exception as exc:
                    self.last_errors[worker.name] = f"{type(exc).__name__}: {exc}"
                    if is_transient(exc):
                        log.warning("worker %s: transient error, retrying: %s", worker.name, exc)
                    else:
                        log.exception("worker %s: error, retrying", worker.name)
                    stuck.failed(self.last_errors[worker.name])
                    processed = 0
                    backoff = min(max(backoff, 0.1) * 2, self.max_backoff)
                if not processed:
                    waiter = getattr(worker, "wait_for_work", None)
                    if waiter is not None and backoff == self.poll_interval:
                        waiter(self.idle_wait)
                    else:
                        self._stop.wait(backoff)
        finally:
            worker.close()


class _Stuck:
    """A worker's run of failed attempts: the metrics always, /readyz for a subscription."""

    def __init__(self, worker: Worker, runner: Runner) -> None:
        self.name = worker.name
        self.runner = runner
        # Only subscriptions make /readyz fail: a mail poller whose server is away is not a
        # reason to stop sending traffic to the service.
        self.reported = hasattr(worker, "processor")
        self.attempts = 0
        self.since = datetime.min

    def failed(self, error: str) -> None:
        if self.attempts == 0:
            self.since = self.runner.clock.now()
        self.attempts += 1
        metrics.SUBSCRIPTION_ATTEMPTS.labels(self.name).set(self.attempts)
        if self.attempts >= self.runner.stuck_after:
            metrics.SUBSCRIPTION_STUCK_SINCE.labels(self.name).set(self.since.timestamp())
            if self.reported:
                self.runner.failures[self.name] = (
                    f"stuck since {self.since.isoformat()} after {self.attempts} attempts: {error}"
                )

    def flowing(self) -> None:
        if self.attempts:
            self.attempts = 0
            metrics.SUBSCRIPTION_ATTEMPTS.labels(self.name).set(0)
            metrics.SUBSCRIPTION_STUCK_SINCE.labels(self.name).set(0)
            self.runner.failures.pop(self.name, None)
