"""A subscription that fails on the same work past the runner's limit is reported (issue 10):
/readyz (the runner's `failures`) names it and why, and the metrics say since when and how
many attempts; once it flows again, both clear."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY

from libs.events.clock import FakeClock
from libs.events.runner import Runner


class FailingSubscription:
    """Fails `failures` times, then succeeds once; stops the runner after `calls` calls."""

    processor = object()  # what marks a subscription worker (its state is not used here)

    def __init__(self, name: str, runner_box: list[Runner], failures: int, calls: int) -> None:
        self.name = name
        self.box = runner_box
        self.failures = failures
        self.calls = calls
        self.seen = 0
        self.reports: list[str | None] = []

    def run_once(self) -> int:
        runner = self.box[0]
        self.reports.append(runner.failures.get(self.name))
        self.seen += 1
        if self.seen >= self.calls:
            runner._stop.set()
        if self.seen <= self.failures:
            raise TypeError("Integer exceeds 64-bit range")
        return 1

    def close(self) -> None:
        pass


def gauge(name: str, subscription: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"subscription": subscription})


def run(worker: FailingSubscription, runner: Runner) -> None:
    runner._loop(worker)  # in this thread: no sleeping on timing, the worker stops the loop


def test_past_the_limit_the_subscription_is_reported_stuck_with_since_and_attempts() -> None:
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    box: list[Runner] = []
    worker = FailingSubscription("query-stuck", box, failures=10, calls=7)
    runner = Runner([worker], poll_interval=0, max_backoff=0, clock=clock, stuck_after=5)
    box.append(runner)
    run(worker, runner)
    reason = runner.failures["query-stuck"]
    assert reason.startswith("stuck since 2026-12-01T09:00:00+00:00 after 7 attempts")
    assert "Integer exceeds 64-bit range" in reason
    assert gauge("deskstream_subscription_attempts", "query-stuck") == 7
    assert gauge("deskstream_subscription_stuck_since", "query-stuck") == clock.now().timestamp()
    assert worker.reports[:5] == [None] * 5  # within the limit: retried, not yet reported


def test_once_it_flows_again_the_report_and_metrics_clear() -> None:
    box: list[Runner] = []
    worker = FailingSubscription("query-recovers", box, failures=6, calls=8)
    runner = Runner([worker], poll_interval=0, max_backoff=0, clock=FakeClock(), stuck_after=5)
    box.append(runner)
    run(worker, runner)
    assert worker.reports[6] is not None  # it was reported stuck before recovering
    assert "query-recovers" not in runner.failures
    assert gauge("deskstream_subscription_attempts", "query-recovers") == 0
    assert gauge("deskstream_subscription_stuck_since", "query-recovers") == 0
