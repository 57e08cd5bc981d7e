"""The one loop that drives every worker: embedded subscribers, Kafka subscribers, the relay.

Each worker runs in its own thread: `run_once()` returns how many items it processed; idle or
failing workers back off. A subscription that stopped itself (too many dead letters) is
recorded in `failures`, which /readyz reports.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

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
    ) -> None:
        self.workers = workers
        self.idle_wait = idle_wait
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
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
        try:
            while not self._stop.is_set():
                try:
                    processed = worker.run_once()
                    backoff = self.poll_interval
                    self.last_errors.pop(worker.name, None)
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
