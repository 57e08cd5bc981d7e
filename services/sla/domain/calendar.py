"""Pure business-hours arithmetic: working schedules, and due dates counted in working time.

A schedule lists, per weekday, the working intervals in its own time zone's wall-clock time, plus
holidays (local dates) on which nothing is worked. Each interval bound is turned into a real
instant as *the first moment the local wall clock shows that time or later*:

- an ordinary wall time maps to its one instant;
- an ambiguous wall time (clocks going back) maps to its first occurrence (``fold=0``);
- a nonexistent wall time (clocks going forward) maps to the moment the clocks jump.

So working time is real elapsed time: a 09:00-17:00 day is 8 hours on a DST change day too, and a
night shift 00:00-06:00 is 5 hours when the clocks go forward and 7 when they go back.

An interval end of ``time(0)`` means 24:00, the end of that day ("24:00" in a definition).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WEEKS = 400  # a walk that finds no working time in this long gives up

_DAY = timedelta(days=1)
_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_END_OF_DAY = "24:00"

Interval = tuple[time, time]


class InvalidSchedule(ValueError):
    """A schedule definition that cannot be used; ``field`` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """Working hours per weekday (0 = Monday .. 6 = Sunday) in ``timezone``, minus ``holidays``."""

    timezone: str
    hours: Mapping[int, tuple[Interval, ...]] = field(hash=False)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        _zone(self.timezone)  # validates
        if not isinstance(self.hours, Mapping):
            raise InvalidSchedule("hours", "must map weekdays to intervals")
        unknown = [day for day in self.hours if day not in range(7)]
        if unknown:
            raise InvalidSchedule("hours", f"unknown weekday {unknown[0]!r} (0 = Monday .. 6)")
        normalised: dict[int, tuple[Interval, ...]] = {}
        for weekday in range(7):
            name = f"hours.{DAY_NAMES[weekday]}"
            intervals = tuple(self.hours.get(weekday, ()))
            for index, interval in enumerate(intervals):
                if len(interval) != 2 or not all(
                    isinstance(t, time) and t.tzinfo is None for t in interval
                ):
                    raise InvalidSchedule(
                        f"{name}[{index}]", "must be a (start, end) pair of times"
                    )
                start, end = interval
                if _offset(end, is_end=True) <= _offset(start, is_end=False):
                    raise InvalidSchedule(f"{name}[{index}]", "the end must be after the start")
            ordered = tuple(sorted(intervals, key=lambda i: _offset(i[0], is_end=False)))
            for before, after in pairwise(ordered):
                if _offset(after[0], is_end=False) < _offset(before[1], is_end=True):
                    raise InvalidSchedule(name, "intervals overlap")
            normalised[weekday] = ordered
        if not any(normalised.values()):
            raise InvalidSchedule("hours", "no working hours: an SLA on it could never come due")
        if not all(isinstance(d, date) and not isinstance(d, datetime) for d in self.holidays):
            raise InvalidSchedule("holidays", "must be dates")
        object.__setattr__(self, "hours", MappingProxyType(normalised))
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> Schedule:
        """From the API shape ``{timezone, hours: {mon: [["09:00", "17:00"]], ..}, holidays}``."""
        if not isinstance(data, Mapping):
            raise InvalidSchedule("schedule", "must be an object")
        timezone = data.get("timezone")
        if not isinstance(timezone, str) or not timezone:
            raise InvalidSchedule("timezone", "required: an IANA time zone name")
        raw_hours = data.get("hours")
        if not isinstance(raw_hours, Mapping):
            raise InvalidSchedule("hours", "required: an object with keys mon .. sun")
        hours: dict[int, tuple[Interval, ...]] = {}
        for day, raw_intervals in raw_hours.items():
            if day not in DAY_NAMES:
                raise InvalidSchedule(f"hours.{day}", "unknown day (use mon, tue, .. sun)")
            name = f"hours.{day}"
            if raw_intervals is None:
                raw_intervals = []
            if isinstance(raw_intervals, str | bytes) or not isinstance(
                raw_intervals, list | tuple
            ):
                raise InvalidSchedule(name, 'must be a list of ["HH:MM", "HH:MM"] pairs')
            intervals = []
            for index, pair in enumerate(raw_intervals):
                where = f"{name}[{index}]"
                if (
                    isinstance(pair, str | bytes)
                    or not isinstance(pair, list | tuple)
                    or len(pair) != 2
                ):
                    raise InvalidSchedule(where, 'must be a ["HH:MM", "HH:MM"] pair')
                intervals.append(
                    (
                        _parse_time(pair[0], where, is_end=False),
                        _parse_time(pair[1], where, is_end=True),
                    )
                )
            hours[DAY_NAMES.index(day)] = tuple(intervals)
        raw_holidays = data.get("holidays") or []
        if isinstance(raw_holidays, str | bytes) or not isinstance(raw_holidays, list | tuple):
            raise InvalidSchedule("holidays", 'must be a list of "YYYY-MM-DD" dates')
        holidays = set()
        for index, raw in enumerate(raw_holidays):
            try:
                if not isinstance(raw, str) or len(raw) != 10:
                    raise ValueError(raw)
                holidays.add(date.fromisoformat(raw))
            except ValueError:
                raise InvalidSchedule(f"holidays[{index}]", 'must be a "YYYY-MM-DD" date') from None
        return cls(timezone=timezone, hours=hours, holidays=frozenset(holidays))


def add_business_hours(start: datetime, hours: float, schedule: Schedule) -> datetime:
    """``start`` plus ``hours`` of working time on ``schedule``, as an aware UTC datetime.

    ``hours == 0`` gives the next working moment (``start`` itself during working hours). A due
    moment that falls exactly on the end of an interval stays there (Friday 09:00 + 8 h on a
    09:00-17:00 schedule is Friday 17:00).
    """
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
    remaining = timedelta(hours=hours)
    for begin, end in _working_intervals(_as_utc(start), schedule):
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable")  # pragma: no cover - _working_intervals raises


def is_working_time(moment: datetime, schedule: Schedule) -> bool:
    """Whether ``moment`` lies inside a working interval (start included, end excluded)."""
    moment = _as_utc(moment)
    begin, _ = next(_working_intervals(moment, schedule))
    return begin == moment


def _working_intervals(start: datetime, schedule: Schedule) -> Iterator[tuple[datetime, datetime]]:
    """The working intervals from ``start`` (UTC) on, in UTC, the first one clipped to ``start``."""
    zone = _zone(schedule.timezone)
    day = start.astimezone(zone).date() - _DAY  # the day before may run past midnight
    for _ in range(MAX_WEEKS * 7 + 2):
        if day not in schedule.holidays:
            midnight = datetime.combine(day, time(0))
            for open_at, close_at in schedule.hours[day.weekday()]:
                end = _instant(midnight + _offset(close_at, is_end=True), zone)
                if end <= start:
                    continue
                begin = max(_instant(midnight + _offset(open_at, is_end=False), zone), start)
                if begin < end:  # an interval inside a DST gap has no working time
                    yield begin, end
        day += _DAY
    raise InvalidSchedule("hours", f"no working time within {MAX_WEEKS} weeks")


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local wall clock shows ``wall`` (naive) or later."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # exists (an ambiguous time: its first occurrence)
    # Nonexistent: clocks jumped over it. fold=1 reads it with the offset after the jump, which
    # lands before the jump, fold=0 after it; the jump is the first instant in between whose wall
    # time is past ``wall``. Transitions fall on whole seconds.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:  # pragma: no cover - defensive
        low, high = high, low
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=1) // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _offset(moment: time, *, is_end: bool) -> timedelta:
    """Time since local midnight; an end of 00:00 means 24:00."""
    if is_end and moment == time(0):
        return _DAY
    return timedelta(
        hours=moment.hour,
        minutes=moment.minute,
        seconds=moment.second,
        microseconds=moment.microsecond,
    )


def _parse_time(raw: object, where: str, *, is_end: bool) -> time:
    if is_end and raw == _END_OF_DAY:
        return time(0)
    if not isinstance(raw, str) or not _TIME.match(raw):
        allowed = '"HH:MM" (00:00-23:59, or 24:00 as an end)' if is_end else '"HH:MM" (00:00-23:59)'
        raise InvalidSchedule(where, f"malformed time {raw!r}: expected {allowed}")
    return time.fromisoformat(raw)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a time zone aware datetime is required")
    return moment.astimezone(UTC)


def _zone(key: object) -> ZoneInfo:
    if not isinstance(key, str) or not key:
        raise InvalidSchedule("timezone", "required: an IANA time zone name")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule("timezone", f"unknown time zone {key!r}") from None
