"""SLA plan choice, re-planning after a transfer or help topic change, and due dates.

Business-hours cases use a Monday-Friday 09:00-17:00 Europe/Berlin schedule; expected instants
are stated in Berlin local time (CET = UTC+1, CEST = UTC+2 from 2026-03-29).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.domain.calendar import Schedule
from services.sla.domain.due_dates import (
    FIRST_RESPONSE,
    RESOLUTION,
    Due,
    Plan,
    choose_plan,
    due_date,
    replan,
)

BERLIN = ZoneInfo("Europe/Berlin")
BERLIN_OFFICE = Schedule.from_definition(
    {
        "timezone": "Europe/Berlin",
        "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    }
)


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# --- which plan ----------------------------------------------------------------------------------

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


FIXED = 1
DEFAULT = 2
TRANSIENT = 3
TOPIC_PLAN = 4
DEPT_PLAN = 5
REPLAN_PLANS = {
    FIXED: Plan(FIXED, 24),
    DEFAULT: Plan(DEFAULT, 18, default=True),
    TRANSIENT: Plan(TRANSIENT, 4, transient=True),
    TOPIC_PLAN: Plan(TOPIC_PLAN, 2),
    DEPT_PLAN: Plan(DEPT_PLAN, 12),
}
UNKNOWN = 99


@pytest.mark.parametrize(
    ("reason", "current", "routed", "department", "expected"),
    [
        # a new ticket: routed (filter / help topic) > department > default
        pytest.param("new", None, TOPIC_PLAN, DEPT_PLAN, TOPIC_PLAN, id="new: routed"),
        pytest.param("new", None, None, DEPT_PLAN, DEPT_PLAN, id="new: department"),
        pytest.param("new", None, UNKNOWN, DEPT_PLAN, DEPT_PLAN, id="new: unknown routed"),
        pytest.param("new", None, None, None, DEFAULT, id="new: default"),
        pytest.param("new", FIXED, None, DEPT_PLAN, DEPT_PLAN, id="new: chosen afresh"),
        # a transfer: the new department's plan replaces only a transient one
        pytest.param("transfer", FIXED, TOPIC_PLAN, DEPT_PLAN, FIXED, id="transfer: fixed kept"),
        pytest.param(
            "transfer", TRANSIENT, TOPIC_PLAN, DEPT_PLAN, DEPT_PLAN, id="transfer: transient"
        ),
        pytest.param(
            "transfer", TRANSIENT, None, None, TRANSIENT, id="transfer: dept without plan"
        ),
        pytest.param(
            "transfer", TRANSIENT, None, UNKNOWN, TRANSIENT, id="transfer: dept's unknown plan"
        ),
        pytest.param("transfer", None, None, DEPT_PLAN, DEPT_PLAN, id="transfer: no plan yet"),
        pytest.param("transfer", UNKNOWN, None, DEPT_PLAN, DEPT_PLAN, id="transfer: plan gone"),
        # a help topic change: the topic's plan replaces only a transient or missing one
        pytest.param(
            "help_topic", FIXED, TOPIC_PLAN, DEPT_PLAN, FIXED, id="help topic: fixed kept"
        ),
        pytest.param(
            "help_topic", TRANSIENT, TOPIC_PLAN, DEPT_PLAN, TOPIC_PLAN, id="help topic: transient"
        ),
        pytest.param(
            "help_topic", TRANSIENT, None, DEPT_PLAN, DEPT_PLAN, id="help topic without plan"
        ),
        pytest.param(
            "help_topic", TRANSIENT, None, None, DEFAULT, id="help topic: nothing but default"
        ),
        pytest.param("help_topic", None, TOPIC_PLAN, DEPT_PLAN, TOPIC_PLAN, id="help topic: none"),
        # anything else keeps the plan
        pytest.param("reopen", TRANSIENT, TOPIC_PLAN, DEPT_PLAN, TRANSIENT, id="reopen"),
        pytest.param("priority", FIXED, TOPIC_PLAN, DEPT_PLAN, FIXED, id="priority"),
    ],
)
def test_replan(
    reason: str, current: int | None, routed: int | None, department: int | None, expected: int
) -> None:
    plan = replan(
        reason,
        current_plan_id=current,
        routed_plan_id=routed,
        department_plan_id=department,
        plans=REPLAN_PLANS,
    )
    assert plan == REPLAN_PLANS[expected]


def test_replan_without_any_plan_gives_none() -> None:
    assert (
        replan("new", current_plan_id=None, routed_plan_id=3, department_plan_id=4, plans={})
        is None
    )


# --- due dates around the clock ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (18, utc(3, 7, 12, 30)),  # Friday evening + 18 h: Saturday, weekends count
        (1.5, utc(3, 6, 20, 0)),
        (0, utc(3, 6, 18, 30)),
        (24 * 7, utc(3, 13, 18, 30)),
    ],
)
def test_due_date_around_the_clock(hours: float, expected: datetime) -> None:
    friday_evening = utc(3, 6, 18, 30)
    due = due_date(friday_evening, Plan(1, hours), None, responded=False)
    assert due == Due(expected, RESOLUTION, hours)


def test_due_date_around_the_clock_counts_elapsed_hours_over_a_dst_change() -> None:
    # Berlin clocks go forward at 02:00 on 2026-03-29: Saturday 12:00 CET (11:00Z) + 24 h is
    # Sunday 11:00Z, which Berlin shows as 13:00 CEST.
    due = due_date(utc(3, 28, 11), Plan(1, 24), None, responded=False)
    assert due.at == utc(3, 29, 11) == berlin(3, 29, 13)


def test_due_date_around_the_clock_from_a_local_start_over_a_dst_change() -> None:
    due = due_date(berlin(3, 28, 12), Plan(1, 24), None, responded=False)
    assert due.at == utc(3, 29, 11)


# --- due dates on business hours -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(berlin(1, 16, 16), 2, berlin(1, 19, 10), id="Friday 16:00 + 2 h"),
        pytest.param(berlin(3, 27, 16), 2, berlin(3, 30, 10), id="over the DST weekend"),
        pytest.param(berlin(1, 13, 9), 8, berlin(1, 13, 17), id="a full day ends at 17:00"),
        pytest.param(berlin(1, 13, 7), 1, berlin(1, 13, 10), id="before opening"),
        pytest.param(berlin(1, 13, 20), 1, berlin(1, 14, 10), id="after closing"),
        pytest.param(berlin(1, 17, 11), 1, berlin(1, 19, 10), id="Saturday"),
        pytest.param(berlin(1, 17, 11), 0, berlin(1, 19, 9), id="0 h: the next opening"),
        pytest.param(berlin(1, 14, 13), 18, berlin(1, 16, 15), id="18 h: two days and more"),
        pytest.param(berlin(1, 16, 16), 40, berlin(1, 23, 16), id="a working week"),
    ],
)
def test_due_date_on_business_hours(start: datetime, hours: float, expected: datetime) -> None:
    due = due_date(start, Plan(1, hours, schedule_id=1), BERLIN_OFFICE, responded=False)
    assert due == Due(expected, RESOLUTION, hours)
    assert due.at.astimezone(BERLIN).replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_the_start_time_zone_does_not_matter() -> None:
    plan = Plan(1, 2, schedule_id=1)
    in_berlin = due_date(berlin(1, 16, 16), plan, BERLIN_OFFICE, responded=False)
    in_utc = due_date(utc(1, 16, 15), plan, BERLIN_OFFICE, responded=False)
    assert in_berlin == in_utc
    assert in_utc.at == utc(1, 19, 9)


# --- first response and resolution targets -------------------------------------------------------


@pytest.mark.parametrize(
    ("first_response_hours", "responded", "schedule", "expected"),
    [
        pytest.param(2, False, None, Due(utc(1, 16, 17), FIRST_RESPONSE, 2), id="first response"),
        pytest.param(2, True, None, Due(utc(1, 17, 15), RESOLUTION, 24), id="then resolution"),
        pytest.param(None, False, None, Due(utc(1, 17, 15), RESOLUTION, 24), id="no target"),
        pytest.param(None, True, None, Due(utc(1, 17, 15), RESOLUTION, 24), id="no target, done"),
        pytest.param(0, False, None, Due(utc(1, 16, 15), FIRST_RESPONSE, 0), id="0 h target"),
        pytest.param(
            2,
            False,
            BERLIN_OFFICE,
            Due(berlin(1, 19, 10), FIRST_RESPONSE, 2),
            id="first response in business hours",
        ),
        pytest.param(
            2,
            True,
            BERLIN_OFFICE,
            Due(berlin(1, 21, 16), RESOLUTION, 24),
            id="resolution in business hours, from the same start",
        ),
    ],
)
def test_first_response_target_until_an_agent_responds(
    first_response_hours: float | None,
    responded: bool,
    schedule: Schedule | None,
    expected: Due,
) -> None:
    plan = Plan(1, 24, first_response_hours=first_response_hours)
    assert due_date(berlin(1, 16, 16), plan, schedule, responded=responded) == expected


# --- properties ----------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
graces = st.floats(min_value=0.001, max_value=24 * 365, allow_nan=False)


@settings(deadline=None)
@given(
    start=starts,
    grace=st.floats(min_value=0, max_value=500),
    extra=st.floats(min_value=0, max_value=500),
    schedule=st.sampled_from([None, BERLIN_OFFICE]),
    responded=st.booleans(),
)
def test_more_grace_never_gives_an_earlier_due_date(
    start: datetime, grace: float, extra: float, schedule: Schedule | None, responded: bool
) -> None:
    shorter = due_date(
        start, Plan(1, grace, first_response_hours=grace), schedule, responded=responded
    )
    longer = due_date(
        start,
        Plan(1, grace + extra, first_response_hours=grace + extra),
        schedule,
        responded=responded,
    )
    assert start <= shorter.at <= longer.at


@given(start=starts, grace=graces)
def test_around_the_clock_the_due_date_is_the_start_plus_the_grace(
    start: datetime, grace: float
) -> None:
    due = due_date(start, Plan(1, grace), None, responded=True)
    assert due.at > start
    assert abs((due.at - start) - timedelta(hours=grace)) < timedelta(milliseconds=1)
