"""Business-hours due dates: schedules, holidays, several intervals a day, DST changes.

Expected results are worked out by hand and stated in UTC. DST changes in 2026:
Europe/Berlin 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST) and 2026-10-25 01:00Z (03:00 CEST ->
02:00 CET); America/New_York 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT) and 2026-11-01 06:00Z
(02:00 EDT -> 01:00 EST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.domain.calendar import (
    InvalidSchedule,
    Schedule,
    add_business_hours,
    is_working_time,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


Hours = dict[str, list[list[str]]]


def schedule(hours: Hours, timezone_name: str = "UTC", holidays: tuple[str, ...] = ()) -> Schedule:
    return Schedule.from_definition(
        {"name": "test", "timezone": timezone_name, "hours": hours, "holidays": list(holidays)}
    )


def every(days: tuple[str, ...], *intervals: tuple[str, str]) -> Hours:
    return {day: [list(interval) for interval in intervals] for day in days}


def office(timezone_name: str = "UTC", holidays: tuple[str, ...] = ()) -> Schedule:
    return schedule(every(WEEKDAYS, ("09:00", "17:00")), timezone_name, holidays)


OFFICE = office()
EASTER = office(holidays=("2026-04-03", "2026-04-06"))  # Good Friday, Easter Monday
LUNCH = schedule(every(WEEKDAYS, ("09:00", "12:00"), ("13:00", "17:00")))
WEEKDAYS_ROUND_THE_CLOCK = schedule(every(WEEKDAYS, ("00:00", "24:00")))
BERLIN_OFFICE = office("Europe/Berlin")
BERLIN_NIGHTS = schedule(
    {"sat": [["22:00", "24:00"]], "sun": [["00:00", "06:00"]]}, "Europe/Berlin"
)
BERLIN_GAP = schedule({"sun": [["02:30", "04:00"]]}, "Europe/Berlin")  # 02:30 missing on 03-29
BERLIN_IN_GAP = schedule({"sun": [["02:15", "02:45"]]}, "Europe/Berlin")  # all missing on 03-29
BERLIN_REPEATED = schedule({"sun": [["02:00", "03:00"]]}, "Europe/Berlin")  # twice on 10-25
NY_OFFICE = office("America/New_York", holidays=("2026-07-03",))
NY_ALWAYS = schedule(every((*WEEKDAYS, "sat", "sun"), ("00:00", "24:00")), "America/New_York")
NY_NIGHTS = schedule({"sun": [["00:00", "06:00"]]}, "America/New_York")


@pytest.mark.parametrize(
    ("start", "hours", "plan", "expected"),
    [
        # Mon-Fri 09-17 UTC
        (z(2026, 3, 6, 16), 2, OFFICE, z(2026, 3, 9, 10)),  # Friday 16:00 + 2 h -> Monday 10:00
        (z(2026, 3, 2, 9), 8, OFFICE, z(2026, 3, 2, 17)),  # used up at the end of the day: stays
        (z(2026, 3, 2, 10), 8, OFFICE, z(2026, 3, 3, 10)),
        (z(2026, 3, 2, 16, 45), 0.5, OFFICE, z(2026, 3, 3, 9, 15)),
        (z(2026, 3, 2, 9), 40, OFFICE, z(2026, 3, 6, 17)),  # a whole week
        (z(2026, 3, 2, 9), 40.25, OFFICE, z(2026, 3, 9, 9, 15)),
        (z(2026, 3, 3, 22, 30), 1.5, OFFICE, z(2026, 3, 4, 10, 30)),  # start at night
        (z(2026, 3, 4, 6), 0.5, OFFICE, z(2026, 3, 4, 9, 30)),  # start before opening
        (z(2026, 3, 4, 17), 1, OFFICE, z(2026, 3, 5, 10)),  # start at closing
        (z(2026, 3, 7, 12), 4, OFFICE, z(2026, 3, 9, 13)),  # start on Saturday
        (z(2026, 3, 8, 23, 59), 18, OFFICE, z(2026, 3, 11, 11)),  # Sunday night, 18 h
        # a start in another offset: 17:00+02:00 is 15:00Z, 2 h left on Friday
        (
            datetime(2026, 3, 6, 17, tzinfo=timezone(timedelta(hours=2))),
            3,
            OFFICE,
            z(2026, 3, 9, 10),
        ),
        # holidays (Good Friday 04-03, Easter Monday 04-06) are skipped
        (z(2026, 4, 2, 16), 2, EASTER, z(2026, 4, 7, 10)),
        (z(2026, 4, 3, 10), 1, EASTER, z(2026, 4, 7, 10)),  # start on a holiday
        (z(2026, 4, 1, 9), 16, EASTER, z(2026, 4, 2, 17)),
        (z(2026, 4, 1, 9), 17, EASTER, z(2026, 4, 7, 10)),
        # two intervals a day: 09-12, 13-17
        (z(2026, 3, 2, 11), 2, LUNCH, z(2026, 3, 2, 14)),
        (z(2026, 3, 2, 12, 30), 1, LUNCH, z(2026, 3, 2, 14)),  # start at lunch
        (z(2026, 3, 2, 9), 3, LUNCH, z(2026, 3, 2, 12)),  # ends with the morning
        (z(2026, 3, 2, 9), 7, LUNCH, z(2026, 3, 2, 17)),
        (z(2026, 3, 2, 16), 4, LUNCH, z(2026, 3, 3, 12)),
        (z(2026, 3, 2, 16), 4.5, LUNCH, z(2026, 3, 3, 13, 30)),
        (z(2026, 3, 6, 11, 30), 5, LUNCH, z(2026, 3, 9, 9, 30)),
        # 24:00 ends: Mon-Fri round the clock
        (z(2026, 3, 6, 20), 10, WEEKDAYS_ROUND_THE_CLOCK, z(2026, 3, 9, 6)),
        (z(2026, 3, 3, 20), 10, WEEKDAYS_ROUND_THE_CLOCK, z(2026, 3, 4, 6)),  # over midnight
        # Berlin office across the DST changes: still 8 h a day
        (
            z(2026, 3, 27, 15),
            2,
            BERLIN_OFFICE,
            z(2026, 3, 30, 8),
        ),  # Fri 16:00 CET -> Mon 10:00 CEST
        (z(2026, 3, 27, 8), 16, BERLIN_OFFICE, z(2026, 3, 30, 15)),  # Fri 09 CET -> Mon 17 CEST
        (z(2026, 10, 23, 14), 2, BERLIN_OFFICE, z(2026, 10, 26, 9)),  # Fri 16 CEST -> Mon 10 CET
        (z(2026, 10, 23, 7), 16, BERLIN_OFFICE, z(2026, 10, 26, 16)),  # Fri 09 CEST -> Mon 17 CET
        # Berlin night shift Sat 22-24 + Sun 00-06: 2 + 5 h in March, 2 + 7 h in October
        (z(2026, 3, 28, 21), 7, BERLIN_NIGHTS, z(2026, 3, 29, 4)),  # Sun 06:00 CEST
        (z(2026, 3, 28, 21), 6.5, BERLIN_NIGHTS, z(2026, 3, 29, 3, 30)),  # Sun 05:30 CEST
        (z(2026, 3, 28, 21), 7.5, BERLIN_NIGHTS, z(2026, 4, 4, 20, 30)),  # next Sat 22:30 CEST
        (z(2026, 3, 28, 21), 3, BERLIN_NIGHTS, z(2026, 3, 29, 0)),  # Sun 01:00 CET
        (z(2026, 3, 28, 21), 4, BERLIN_NIGHTS, z(2026, 3, 29, 1)),  # the jump: 03:00 CEST
        (z(2026, 10, 24, 20), 9, BERLIN_NIGHTS, z(2026, 10, 25, 5)),  # Sun 06:00 CET
        (z(2026, 10, 24, 20), 5, BERLIN_NIGHTS, z(2026, 10, 25, 1)),  # the change: 02:00 CET
        (z(2026, 10, 24, 20), 6, BERLIN_NIGHTS, z(2026, 10, 25, 2)),  # 03:00 CET
        (z(2026, 10, 24, 20), 9.25, BERLIN_NIGHTS, z(2026, 10, 31, 21, 15)),  # next Sat 22:15 CET
        # an interval starting in the skipped hour starts when the clocks jump (01:00Z)
        (z(2026, 3, 28, 12), 0, BERLIN_GAP, z(2026, 3, 29, 1)),
        (z(2026, 3, 28, 12), 1, BERLIN_GAP, z(2026, 3, 29, 2)),  # 04:00 CEST
        (z(2026, 3, 28, 12), 1.25, BERLIN_GAP, z(2026, 4, 5, 0, 45)),  # next Sun 02:45 CEST
        (z(2026, 3, 21, 12), 1.5, BERLIN_GAP, z(2026, 3, 22, 3)),  # a CET Sunday: 1.5 h
        (z(2026, 3, 28, 12), 0.25, BERLIN_IN_GAP, z(2026, 4, 5, 0, 30)),  # 03-29 has none of it
        # a repeated hour counts twice: 02:00 CEST (00:00Z) to 03:00 CET (02:00Z)
        (z(2026, 10, 24, 12), 2, BERLIN_REPEATED, z(2026, 10, 25, 2)),
        (z(2026, 10, 24, 12), 1.5, BERLIN_REPEATED, z(2026, 10, 25, 1, 30)),
        # New York office across the DST changes, and a local-date holiday (Fri 07-03)
        (z(2026, 3, 6, 21), 2, NY_OFFICE, z(2026, 3, 9, 14)),  # Fri 16 EST -> Mon 10 EDT
        (z(2026, 10, 30, 20), 2, NY_OFFICE, z(2026, 11, 2, 15)),  # Fri 16 EDT -> Mon 10 EST
        (z(2026, 7, 2, 20), 2, NY_OFFICE, z(2026, 7, 6, 14)),  # Thu 16 EDT -> Mon 10 EDT
        (z(2026, 7, 3, 1), 1, NY_OFFICE, z(2026, 7, 6, 14)),  # Thu 21 EDT (Fri in UTC)
        # New York round the clock: working time is elapsed time, 23 h / 25 h Sundays
        (z(2026, 3, 7, 17), 24, NY_ALWAYS, z(2026, 3, 8, 17)),
        (z(2026, 10, 31, 16), 24, NY_ALWAYS, z(2026, 11, 1, 16)),
        # New York Sunday 00-06: 5 h on 03-08, 7 h on 11-01
        (z(2026, 3, 7, 12), 5, NY_NIGHTS, z(2026, 3, 8, 10)),
        (z(2026, 3, 7, 12), 5.5, NY_NIGHTS, z(2026, 3, 15, 4, 30)),  # next Sun 00:30 EDT
        (z(2026, 10, 31, 12), 7, NY_NIGHTS, z(2026, 11, 1, 11)),
        (z(2026, 10, 31, 12), 2, NY_NIGHTS, z(2026, 11, 1, 6)),  # 01:00 EST, the second one
    ],
)
def test_add_business_hours(
    start: datetime, hours: float, plan: Schedule, expected: datetime
) -> None:
    result = add_business_hours(start, hours, plan)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "plan", "expected"),
    [
        (z(2026, 3, 2, 10), OFFICE, z(2026, 3, 2, 10)),  # working: unchanged
        (z(2026, 3, 2, 9), OFFICE, z(2026, 3, 2, 9)),
        (z(2026, 3, 2, 17), OFFICE, z(2026, 3, 3, 9)),  # closing time is not working time
        (z(2026, 3, 6, 18), OFFICE, z(2026, 3, 9, 9)),
        (z(2026, 3, 7, 12), OFFICE, z(2026, 3, 9, 9)),
        (z(2026, 3, 2, 12, 15), LUNCH, z(2026, 3, 2, 13)),
        (z(2026, 4, 3, 10), EASTER, z(2026, 4, 7, 9)),
        (z(2026, 3, 28, 12), BERLIN_OFFICE, z(2026, 3, 30, 7)),
        (z(2026, 10, 31, 12), NY_OFFICE, z(2026, 11, 2, 14)),
    ],
)
def test_a_grace_of_zero_gives_the_next_working_moment(
    start: datetime, plan: Schedule, expected: datetime
) -> None:
    assert add_business_hours(start, 0, plan) == expected


@pytest.mark.parametrize(
    ("moment", "plan", "expected"),
    [
        (z(2026, 3, 2, 9), OFFICE, True),
        (z(2026, 3, 2, 16, 59), OFFICE, True),
        (z(2026, 3, 2, 17) - timedelta(microseconds=1), OFFICE, True),
        (z(2026, 3, 2, 17), OFFICE, False),
        (z(2026, 3, 2, 8, 59), OFFICE, False),
        (z(2026, 3, 7, 12), OFFICE, False),
        (z(2026, 4, 3, 12), EASTER, False),
        (z(2026, 4, 7, 12), EASTER, True),
        (z(2026, 3, 2, 12, 30), LUNCH, False),
        (z(2026, 3, 2, 13), LUNCH, True),
        (z(2026, 3, 30, 7), BERLIN_OFFICE, True),  # 09:00 CEST
        (z(2026, 3, 30, 15), BERLIN_OFFICE, False),  # 17:00 CEST
        (datetime(2026, 3, 30, 16, 30, tzinfo=BERLIN), BERLIN_OFFICE, True),
        (z(2026, 3, 29, 0, 59), BERLIN_GAP, False),
        (z(2026, 3, 29, 1), BERLIN_GAP, True),
        (z(2026, 11, 1, 10, 59), NY_NIGHTS, True),  # 05:59 EST
        (datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK), NY_NIGHTS, True),
    ],
)
def test_is_working_time(moment: datetime, plan: Schedule, expected: bool) -> None:
    assert is_working_time(moment, plan) is expected


def test_from_definition() -> None:
    plan = Schedule.from_definition(
        {
            "name": "Support",
            "timezone": "Europe/Berlin",
            "hours": {
                "mon": [["13:00", "17:00"], ["09:00", "12:00"]],
                "fri": [["20:00", "24:00"]],
                "sun": [],
            },
            "holidays": ["2026-12-25", "2026-12-26"],
        }
    )
    assert plan.timezone == "Europe/Berlin"
    assert plan.hours[0] == ((time(9), time(12)), (time(13), time(17)))  # sorted
    assert plan.hours[4] == ((time(20), time(0)),)  # 24:00 is held as an end of 00:00
    assert all(plan.hours[day] == () for day in (1, 2, 3, 5, 6))
    assert plan.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})
    assert plan == Schedule("Europe/Berlin", plan.hours, plan.holidays)
    assert hash(plan) == hash(Schedule("Europe/Berlin", dict(plan.hours), plan.holidays))


def definition(**changes: Any) -> dict[str, Any]:
    return {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": []} | changes


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (definition(timezone="Mars/Olympus"), "timezone"),
        (definition(timezone="europe/berlin"), "timezone"),
        (definition(timezone="../etc/passwd"), "timezone"),
        (definition(timezone=""), "timezone"),
        (definition(timezone=1), "timezone"),
        ({"hours": {"mon": [["09:00", "17:00"]]}}, "timezone"),
        (definition(hours={"mon": [["9:00", "17:00"]]}), "hours.mon[0]"),
        (
            definition(hours={"mon": [["09:00", "17:00"]], "tue": [["25:00", "26:00"]]}),
            "hours.tue[0]",
        ),
        (definition(hours={"mon": [["09:00", "17:60"]]}), "hours.mon[0]"),
        (definition(hours={"mon": [["09:00", "nine"]]}), "hours.mon[0]"),
        (definition(hours={"mon": [["24:00", "24:00"]]}), "hours.mon[0]"),  # 24:00 only as an end
        (definition(hours={"mon": [["09:00"]]}), "hours.mon[0]"),
        (definition(hours={"mon": [["09:00", "12:00"], "13:00-17:00"]}), "hours.mon[1]"),
        (definition(hours={"mon": "09:00-17:00"}), "hours.mon"),
        (definition(hours={"mon": [[9, 17]]}), "hours.mon[0]"),
        (definition(hours={"mon": [["17:00", "09:00"]]}), "hours.mon[0]"),  # end before start
        (definition(hours={"mon": [["09:00", "09:00"]]}), "hours.mon[0]"),  # empty interval
        (definition(hours={"wed": [["09:00", "12:00"], ["11:00", "17:00"]]}), "hours.wed"),
        (definition(hours={"wed": [["13:00", "24:00"], ["09:00", "14:00"]]}), "hours.wed"),
        (definition(hours={"monday": [["09:00", "17:00"]]}), "hours.monday"),
        (definition(hours={}), "hours"),  # never open: no due date would ever come
        (definition(hours={day: [] for day in WEEKDAYS}), "hours"),
        (definition(hours=None), "hours"),
        (definition(hours=[["09:00", "17:00"]]), "hours"),
        (definition(holidays=["2026-13-01"]), "holidays[0]"),
        (definition(holidays=["2026-12-25", "25.12.2026"]), "holidays[1]"),
        (definition(holidays=["20261225"]), "holidays[0]"),
        (definition(holidays="2026-12-25"), "holidays"),
    ],
)
def test_invalid_definitions_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        Schedule.from_definition(data)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidSchedule, match=r"^hours\.tue: intervals overlap"):
        Schedule("UTC", {1: ((time(9), time(12)), (time(11), time(0)))})
    with pytest.raises(InvalidSchedule, match=r"^hours: unknown weekday 7"):
        Schedule("UTC", {7: ((time(9), time(12)),)})
    with pytest.raises(InvalidSchedule, match=r"^timezone: "):
        Schedule("Nowhere/Special", {0: ((time(9), time(12)),)})


def test_a_schedule_with_no_working_time_in_reach_is_refused() -> None:
    mondays = frozenset(date(2026, 3, 2) + timedelta(weeks=n) for n in range(-1, 402))
    plan = Schedule("UTC", {0: ((time(9), time(17)),)}, mondays)
    with pytest.raises(InvalidSchedule, match=r"^hours: no working time within 400 weeks"):
        add_business_hours(z(2026, 3, 2, 9), 1, plan)


@pytest.mark.parametrize("hours", [-1, float("nan"), float("inf")])
def test_hours_must_be_finite_and_not_negative(hours: float) -> None:
    with pytest.raises(ValueError, match="hours must be"):
        add_business_hours(z(2026, 3, 2, 9), hours, OFFICE)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        add_business_hours(datetime(2026, 3, 2, 9), 1, OFFICE)
    with pytest.raises(ValueError, match="aware"):
        is_working_time(datetime(2026, 3, 2, 9), OFFICE)


# --- properties ----------------------------------------------------------------------------------

# Time zones with DST at 02:00 (Berlin, New York), at midnight (Havana), of 30 min (Lord Howe)
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Havana",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """Random schedules on a quarter-hour grid: up to three intervals a day, some holidays."""
    days = draw(st.lists(st.sets(st.integers(0, 96), max_size=6), min_size=7, max_size=7))
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    for weekday, day in enumerate(days):
        points = sorted(day)
        pairs = zip(points[::2], points[1::2], strict=False)
        hours[weekday] = tuple((quarter(a), quarter(b)) for a, b in pairs)
    if not any(hours.values()):
        hours[0] = ((time(9), time(17)),)
    offsets = draw(st.sets(st.integers(0, 364), max_size=20))
    holidays = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in offsets)
    return Schedule(draw(st.sampled_from(ZONES)), hours, holidays)


def quarter(index: int) -> time:
    return time(index // 4 % 24, index % 4 * 15)  # 96 quarters = 24:00, held as 00:00


fixed_or_random_schedules = st.one_of(
    st.sampled_from(
        [OFFICE, EASTER, LUNCH, BERLIN_OFFICE, BERLIN_NIGHTS, BERLIN_GAP, NY_OFFICE, NY_NIGHTS]
    ),
    schedules(),
)
starts = st.datetimes(
    min_value=datetime(2025, 12, 1),
    max_value=datetime(2027, 1, 31),
    timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
)
quarters = st.integers(0, 4 * 24).map(lambda n: n / 4)


@settings(max_examples=200, deadline=None)
@given(start=starts, hours=st.floats(0, 24), plan=fixed_or_random_schedules)
def test_the_due_moment_is_inside_or_at_the_end_of_working_time(
    start: datetime, hours: float, plan: Schedule
) -> None:
    due = add_business_hours(start, hours, plan)
    assert due >= start
    assert is_working_time(due, plan) or is_working_time(due - timedelta(microseconds=1), plan)
    if hours == 0:
        assert is_working_time(due, plan)


@settings(max_examples=200, deadline=None)
@given(start=starts, a=quarters, b=quarters, plan=fixed_or_random_schedules)
def test_more_grace_never_gives_an_earlier_due_date(
    start: datetime, a: float, b: float, plan: Schedule
) -> None:
    shorter, longer = sorted((a, b))
    assert add_business_hours(start, shorter, plan) <= add_business_hours(start, longer, plan)


@settings(max_examples=200, deadline=None)
@given(
    start=starts,
    a=quarters,
    b=st.integers(1, 4 * 24).map(lambda n: n / 4),
    plan=fixed_or_random_schedules,
)
def test_adding_in_two_steps_is_adding_once(
    start: datetime, a: float, b: float, plan: Schedule
) -> None:
    # b > 0: a grace of 0 moves a due moment at closing time on to the next opening, by design
    once = add_business_hours(start, a + b, plan)
    twice = add_business_hours(add_business_hours(start, a, plan), b, plan)
    assert abs(twice - once) <= timedelta(seconds=1)
