"""SLA plan choice and due dates (around the clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.sla.domain.due_dates import Plan, choose_plan, due_at

PLANS = {
    1: Plan(1, 24),
    2: Plan(2, 8, default=True),
    3: Plan(3, 4),
    4: Plan(4, 2, default=True),
}


@pytest.mark.parametrize(
    ("routed", "department", "plans", "expected"),
    [
        (3, 1, PLANS, 3),  # the routed plan wins
        (None, 1, PLANS, 1),  # then the department's
        (99, 1, PLANS, 1),  # an unknown routed plan is skipped
        (None, None, PLANS, 2),  # then the lowest default-flagged plan
        (99, 98, PLANS, 2),
        (None, None, {7: Plan(7, 1), 5: Plan(5, 1)}, 5),  # no default: the lowest id
        (None, None, {}, None),
        (1, 2, {}, None),
    ],
)
def test_choose_plan(
    routed: int | None, department: int | None, plans: dict[int, Plan], expected: int | None
) -> None:
    plan = choose_plan(routed_plan_id=routed, department_plan_id=department, plans=plans)
    assert (plan.id if plan else None) == expected


def test_due_at_adds_grace_around_the_clock() -> None:
    friday_evening = datetime(2024, 3, 1, 18, 30, tzinfo=UTC)
    assert due_at(friday_evening, Plan(1, 18)) == datetime(2024, 3, 2, 12, 30, tzinfo=UTC)
    assert due_at(friday_evening, Plan(1, 1.5)) == datetime(2024, 3, 1, 20, 0, tzinfo=UTC)


def test_due_at_keeps_the_time_zone() -> None:
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    assert due_at(start, Plan(1, 4)).tzinfo is UTC


starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
graces = st.floats(min_value=0.001, max_value=24 * 365, allow_nan=False)


@given(start=starts, grace=graces, extra=st.floats(min_value=0, max_value=24 * 365))
def test_more_grace_never_gives_an_earlier_due_date(
    start: datetime, grace: float, extra: float
) -> None:
    assert due_at(start, Plan(1, grace + extra)) >= due_at(start, Plan(1, grace))


@given(start=starts, grace=graces)
def test_due_date_is_after_the_start_by_the_grace(start: datetime, grace: float) -> None:
    due = due_at(start, Plan(1, grace))
    assert due > start
    assert abs((due - start) - timedelta(hours=grace)) < timedelta(milliseconds=1)
