"""Credential guessing is throttled per client address (RELIABILITY.md S12): the pure decision
and the bounded per-process ledger, with time advanced by hand."""

from __future__ import annotations

from datetime import timedelta

from libs.events.clock import FakeClock
from libs.platform.throttle import (
    FailureLedger,
    Policy,
    Record,
    after_failure,
    client_key,
    forgotten,
    retry_after,
)

POLICY = Policy(limit=3, window_s=60, lockout_s=30, max_lockout_s=100)


def fail_at(times: list[float], policy: Policy = POLICY, record: Record | None = None) -> Record:
    for now in times:
        record = after_failure(record, now, policy)
    assert record is not None
    return record


def test_below_the_limit_an_address_may_keep_trying() -> None:
    record = fail_at([0, 1])
    assert retry_after(record, 2) is None
    assert retry_after(None, 2) is None


def test_the_limit_th_failure_in_the_window_locks_for_the_lockout() -> None:
    record = fail_at([0, 1, 2])
    assert retry_after(record, 2) == 30
    assert retry_after(record, 31.5) == 1  # whole seconds, rounded up: never "retry in 0"
    assert retry_after(record, 32) is None


def test_failures_older_than_the_window_do_not_count() -> None:
    record = fail_at([0, 1, 61, 62])  # 0 and 1 aged out before the 3rd recent one
    assert retry_after(record, 62) is None
    assert retry_after(fail_at([63], record=record), 63) == 30


def test_each_further_lockout_doubles_up_to_the_maximum() -> None:
    first = fail_at([0, 1, 2])
    second = fail_at([40, 41, 42], record=first)  # after the first lockout ended at 32
    third = fail_at([110, 111, 112], record=second)
    fourth = fail_at([300, 301, 302], record=third)
    assert [retry_after(r, t) for r, t in ((second, 42), (third, 112), (fourth, 302))] == [
        60,
        100,  # 120 capped
        100,
    ]


def test_a_limit_of_zero_never_locks() -> None:
    policy = Policy(limit=0, window_s=60, lockout_s=30, max_lockout_s=100)
    assert retry_after(fail_at(list(range(50)), policy), 50) is None


def test_a_record_is_forgotten_only_when_nothing_in_it_matters() -> None:
    locked = fail_at([0, 1, 2])  # locked until 32; backoff remembered until 132
    assert not forgotten(locked, 100, POLICY)
    assert forgotten(locked, 132, POLICY)
    assert not forgotten(fail_at([0]), 59, POLICY)
    assert forgotten(fail_at([0]), 100, POLICY)  # no lockout ever: the window is all


def test_addresses_are_counted_as_ipv4_or_the_ipv6_subscriber_prefix() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("not\nan address") == "unknown"  # never echoed into a log line
    assert client_key(None) == "unknown"


def test_the_ledger_locks_one_address_and_not_another() -> None:
    clock = FakeClock()
    ledger = FailureLedger(POLICY, clock)
    assert [ledger.failed("192.0.2.7") for _ in range(3)] == [None, None, 30]
    assert ledger.retry_after("192.0.2.7") == 30
    assert ledger.retry_after("198.51.100.1") is None
    clock.advance(timedelta(seconds=30))
    assert ledger.retry_after("192.0.2.7") is None


def test_the_ledger_is_bounded_and_evicts_the_least_recently_failing() -> None:
    ledger = FailureLedger(POLICY, FakeClock(), capacity=2)
    for _ in range(3):
        ledger.failed("192.0.2.1")  # locked
    ledger.failed("192.0.2.2")
    ledger.failed("192.0.2.3")
    assert len(ledger) == 2
    assert ledger.retry_after("192.0.2.1") is None  # the oldest went first


def test_the_ledger_drops_records_that_no_longer_matter() -> None:
    clock = FakeClock()
    ledger = FailureLedger(POLICY, clock)
    ledger.failed("192.0.2.1")
    clock.advance(timedelta(seconds=200))
    ledger.failed("192.0.2.2")
    assert len(ledger) == 1
