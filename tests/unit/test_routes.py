"""Routing a new ticket: help topic defaults, priority, department fallbacks."""

from __future__ import annotations

import pytest

from services.routing.domain.routes import (
    DEFAULT_PRIORITY,
    Department,
    HelpTopic,
    NoDepartment,
    Route,
    default_department,
    route_new_ticket,
)

SUPPORT = Department(1)
SALES = Department(2)
BILLING = Department(3, default=True)


def topic(**overrides: object) -> HelpTopic:
    base: dict[str, object] = {
        "id": 10,
        "department_id": 2,
        "priority": "high",
        "sla_plan_id": 5,
    }
    base.update(overrides)
    return HelpTopic(**base)  # type: ignore[arg-type]


def test_help_topic_gives_its_department_priority_and_plan() -> None:
    route = route_new_ticket(
        requested_priority=None, topic=topic(), departments=[SUPPORT, SALES, BILLING]
    )
    assert route == Route(department_id=2, help_topic_id=10, priority="high", sla_plan_id=5)


def test_requested_priority_overrides_topic_priority() -> None:
    route = route_new_ticket(requested_priority="low", topic=topic(), departments=[SALES])
    assert route.priority == "low"


@pytest.mark.parametrize(
    ("requested", "topic_priority", "expected"),
    [
        (None, None, DEFAULT_PRIORITY),
        (None, "emergency", "emergency"),
        ("high", None, "high"),
        ("low", "emergency", "low"),
    ],
)
def test_priority_precedence(requested: str | None, topic_priority: str | None, expected: str):
    route = route_new_ticket(
        requested_priority=requested, topic=topic(priority=topic_priority), departments=[SALES]
    )
    assert route.priority == expected


def test_no_topic_goes_to_default_department_with_normal_priority() -> None:
    route = route_new_ticket(requested_priority=None, topic=None, departments=[SUPPORT, BILLING])
    assert route == Route(department_id=3, help_topic_id=None, priority="normal", sla_plan_id=None)


@pytest.mark.parametrize("status", ["disabled", "archived"])
def test_inactive_topic_is_ignored(status: str) -> None:
    route = route_new_ticket(
        requested_priority=None,
        topic=topic(status=status, auto_assign_agent_id=4),
        departments=[SUPPORT, SALES, BILLING],
    )
    assert route == Route(department_id=3, help_topic_id=None, priority="normal", sla_plan_id=None)


def test_topic_with_disabled_department_falls_back_to_default() -> None:
    route = route_new_ticket(
        requested_priority=None,
        topic=topic(department_id=2),
        departments=[SUPPORT, Department(2, status="disabled"), BILLING],
    )
    assert route.department_id == 3
    assert (route.help_topic_id, route.priority, route.sla_plan_id) == (10, "high", 5)


@pytest.mark.parametrize("department_id", [None, 99])
def test_topic_without_known_department_falls_back_to_default(department_id: int | None):
    route = route_new_ticket(
        requested_priority=None,
        topic=topic(department_id=department_id),
        departments=[SUPPORT, BILLING],
    )
    assert route.department_id == 3
    assert route.help_topic_id == 10


def test_auto_assignment_is_carried() -> None:
    route = route_new_ticket(
        requested_priority=None,
        topic=topic(auto_assign_agent_id=7, auto_assign_team_id=8),
        departments=[SALES],
    )
    assert (route.assign_agent_id, route.assign_team_id) == (7, 8)


@pytest.mark.parametrize(
    ("departments", "expected"),
    [
        ([Department(4), Department(2), Department(9)], 2),
        ([Department(4), Department(9, default=True), Department(2)], 9),
        ([Department(5, default=True), Department(3, default=True)], 3),
        ([Department(1, status="disabled"), Department(6)], 6),
        ([Department(1, status="archived", default=True), Department(6)], 6),
        ([Department(2, default=True, status="disabled"), Department(8), Department(5)], 5),
    ],
)
def test_default_department(departments: list[Department], expected: int) -> None:
    assert default_department(departments).id == expected


@pytest.mark.parametrize(
    "departments",
    [[], [Department(1, status="disabled"), Department(2, status="archived")]],
)
def test_no_active_department(departments: list[Department]) -> None:
    with pytest.raises(NoDepartment):
        default_department(departments)
    with pytest.raises(NoDepartment):
        route_new_ticket(requested_priority=None, topic=None, departments=departments)


def test_archived_department_of_a_topic_takes_no_new_tickets() -> None:
    topic = HelpTopic(10, department_id=2, priority=None, sla_plan_id=None)
    departments = [Department(1, default=True), Department(2, status="archived")]
    route = route_new_ticket(requested_priority=None, topic=topic, departments=departments)
    assert route.department_id == 1
