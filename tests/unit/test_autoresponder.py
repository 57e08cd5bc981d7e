"""The mail-loop guard's decision: one autoresponse per recipient per window (RELIABILITY.md S4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.platform.settings import Settings
from services.notify.domain.autoresponder import held_back_because, may_autorespond

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def test_a_first_autoresponse_is_always_allowed() -> None:
    assert may_autorespond(None, NOW, WINDOW)


@pytest.mark.parametrize(
    ("ago", "allowed"),
    [
        (timedelta(0), False),
        (timedelta(seconds=20), False),
        (timedelta(minutes=9, seconds=59), False),
        (timedelta(minutes=10), True),  # the window is closed at its end
        (timedelta(hours=3), True),
    ],
)
def test_one_autoresponse_per_window(ago: timedelta, allowed: bool) -> None:
    assert may_autorespond(NOW - ago, NOW, WINDOW) is allowed


def test_a_last_send_in_the_future_holds_back() -> None:
    # Two notify replicas whose clocks disagree: when in doubt, do not feed a loop.
    assert not may_autorespond(NOW + timedelta(seconds=5), NOW, WINDOW)


def test_a_zero_window_never_holds_back() -> None:
    assert may_autorespond(NOW, NOW, timedelta(0))


def test_the_reason_names_the_wait_and_the_setting() -> None:
    reason = held_back_because(NOW - timedelta(seconds=42), NOW, WINDOW)
    assert "42 s ago" in reason and "600 s" in reason
    assert "DESKSTREAM_AUTORESPONSE_WINDOW_S" in reason


def test_the_window_is_ten_minutes_unless_configured() -> None:
    assert Settings.from_env({}).autoresponse_window_s == 600
    configured = {"DESKSTREAM_AUTORESPONSE_WINDOW_S": "3600"}
    assert Settings.from_env(configured).autoresponse_window_s == 3600
    assert Settings.from_env({"DESKSTREAM_AUTORESPONSE_WINDOW_S": "0"}).autoresponse_window_s == 0
