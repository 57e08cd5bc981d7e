"""Routing a new ticket: help topic defaults, filter overrides, fallbacks, assignment rules."""

from __future__ import annotations

from typing import Any

import pytest

from services.routing.domain.assignment import FEWEST_OPEN, ROUND_ROBIN, AutoAssign
from services.routing.domain.filters import Outcome
from services.routing.domain.routes import (
    DEFAULT_PRIORITY,
    Department,
    HelpTopic,
    NoDepartment,
    Rejected,
    Route,
    default_department,
    reassignment_rule,
    route_new_ticket,
)

ROUND_ROBIN_RULE = AutoAssign(strategy=ROUND_ROBIN)
FEWEST_OPEN_RULE = AutoAssign(strategy=FEWEST_OPEN)
TOPIC_AGENT_RULE = AutoAssign(agent_id=7)

SUPPORT = Department(1)
SALES = Department(2, auto_assign=ROUND_ROBIN_RULE)
BILLING = Department(3, default=True)  # the default department
ARCHIVED_DEPT = Department(4, status="archived")
DISABLED_DEPT = Department(5, status="disabled")
DEPARTMENTS = {d.id: d for d in (SUPPORT, SALES, BILLING, ARCHIVED_DEPT, DISABLED_DEPT)}

SALES_TOPIC = HelpTopic(10, department_id=2, priority="high", sla_plan_id=5)
SUPPORT_TOPIC = HelpTopic(
    11, department_id=1, priority="low", sla_plan_id=6, auto_assign=TOPIC_AGENT_RULE
)
ARCHIVED_TOPIC = HelpTopic(
    12, department_id=1, priority="emergency", sla_plan_id=7, status="archived"
)
DISABLED_TOPIC = HelpTopic(
    13, department_id=1, priority="emergency", sla_plan_id=7, status="disabled"
)
TOPIC_OF_ARCHIVED_DEPT = HelpTopic(14, department_id=4, priority="high", sla_plan_id=8)
TOPIC_WITHOUT_DEPT = HelpTopic(15, department_id=None, priority=None, sla_plan_id=None)
TOPIC_OF_UNKNOWN_DEPT = HelpTopic(16, department_id=99, priority=None, sla_plan_id=None)
TOPICS = {
    t.id: t
    for t in (
        SALES_TOPIC,
        SUPPORT_TOPIC,
        ARCHIVED_TOPIC,
        DISABLED_TOPIC,
        TOPIC_OF_ARCHIVED_DEPT,
        TOPIC_WITHOUT_DEPT,
        TOPIC_OF_UNKNOWN_DEPT,
    )
}


def route(
    *,
    requested_topic: int | None = None,
    requested_priority: str | None = None,
    topics: dict[int, HelpTopic] | None = None,
    departments: dict[int, Department] | None = None,
    autorespond: bool = True,
    requested_department: int | None = None,
    **outcome: Any,
) -> Route:
    result = route_new_ticket(
        requested_priority=requested_priority,
        requested_topic_id=requested_topic,
        requested_department_id=requested_department,
        topics=TOPICS if topics is None else topics,
        departments=DEPARTMENTS if departments is None else departments,
        outcome=Outcome(**outcome) if outcome else None,
        autorespond=autorespond,
    )
    assert isinstance(result, Route)
    return result


# --- help topic defaults ------------------------------------------------------------------------


def test_help_topic_gives_its_department_priority_and_plan() -> None:
    assert route(requested_topic=10) == Route(
        department_id=2,
        help_topic_id=10,
        priority="high",
        sla_plan_id=5,
        assign=ROUND_ROBIN_RULE,
        assign_reason="department auto-assignment",
    )


def test_the_receiving_address_department_comes_after_a_filter_and_before_the_topic() -> None:
    # Mail to sales@ with the Support topic: the address decides, the topic still gives its plan.
    emailed = route(requested_topic=11, requested_department=2)
    assert (emailed.department_id, emailed.help_topic_id, emailed.sla_plan_id) == (2, 11, 6)
    assert route(requested_topic=11, requested_department=2, department_id=3).department_id == 3
    # An archived or disabled receiving department is passed over, as a filter's would be.
    assert route(requested_topic=11, requested_department=4).department_id == 1
    assert route(requested_department=5).department_id == 3


def test_no_topic_and_no_filter_goes_to_the_default_department_at_normal_priority() -> None:
    assert route() == Route(
        department_id=3, help_topic_id=None, priority="normal", sla_plan_id=None
    )


# --- department and help topic: topic, filter, fallbacks ----------------------------------------


@pytest.mark.parametrize(
    ("requested_topic", "outcome", "expected_department", "expected_topic"),
    [
        pytest.param(None, {}, 3, None, id="nothing: default department"),
        pytest.param(10, {}, 2, 10, id="topic's department"),
        pytest.param(99, {}, 3, None, id="unknown topic dropped"),
        pytest.param(12, {}, 3, None, id="archived topic dropped"),
        pytest.param(13, {}, 3, None, id="disabled topic dropped"),
        pytest.param(14, {}, 3, 14, id="topic's archived department: default, topic kept"),
        pytest.param(15, {}, 3, 15, id="topic without department: default"),
        pytest.param(16, {}, 3, 16, id="topic's unknown department: default"),
        pytest.param(10, {"department_id": 1}, 1, 10, id="filter department beats topic's"),
        pytest.param(None, {"department_id": 1}, 1, None, id="filter department, no topic"),
        pytest.param(10, {"help_topic_id": 11}, 1, 11, id="filter topic brings its department"),
        pytest.param(
            10, {"help_topic_id": 11, "department_id": 2}, 2, 11, id="filter topic and department"
        ),
        pytest.param(None, {"help_topic_id": 10}, 2, 10, id="filter topic, none requested"),
        pytest.param(10, {"help_topic_id": 12}, 2, 10, id="filter's archived topic ignored"),
        pytest.param(None, {"help_topic_id": 13}, 3, None, id="filter's disabled topic ignored"),
        pytest.param(10, {"help_topic_id": 99}, 2, 10, id="filter's unknown topic ignored"),
        pytest.param(
            10, {"department_id": 4}, 2, 10, id="filter's archived department: topic's instead"
        ),
        pytest.param(None, {"department_id": 5}, 3, None, id="filter's disabled department"),
        pytest.param(None, {"department_id": 99}, 3, None, id="filter's unknown department"),
        pytest.param(
            None, {"help_topic_id": 14, "department_id": 5}, 3, 14, id="all inactive: default"
        ),
    ],
)
def test_department_and_help_topic(
    requested_topic: int | None,
    outcome: dict[str, Any],
    expected_department: int,
    expected_topic: int | None,
) -> None:
    result = route(requested_topic=requested_topic, **outcome)
    assert (result.department_id, result.help_topic_id) == (expected_department, expected_topic)


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
def test_default_department_is_the_flagged_one_else_the_lowest_active_id(
    departments: list[Department], expected: int
) -> None:
    by_id = {d.id: d for d in departments}
    assert default_department(by_id).id == expected
    assert route(departments=by_id).department_id == expected


@pytest.mark.parametrize(
    "departments",
    [{}, {1: Department(1, status="disabled"), 2: Department(2, status="archived")}],
    ids=["none defined", "none active"],
)
def test_no_active_department(departments: dict[int, Department]) -> None:
    with pytest.raises(NoDepartment):
        default_department(departments)
    with pytest.raises(NoDepartment):
        route(requested_topic=10, departments=departments)


def test_an_active_department_of_the_topic_is_enough_without_a_default() -> None:
    # NoDepartment is raised only when the fallback is needed.
    assert route(requested_topic=10, departments={2: SALES}).department_id == 2


# --- priority and SLA plan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested_topic", "requested_priority", "outcome", "expected"),
    [
        pytest.param(None, None, {}, DEFAULT_PRIORITY, id="default"),
        pytest.param(10, None, {}, "high", id="topic's"),
        pytest.param(15, None, {}, DEFAULT_PRIORITY, id="topic without priority"),
        pytest.param(10, "low", {}, "low", id="requested beats topic's"),
        pytest.param(None, "emergency", {}, "emergency", id="requested, no topic"),
        pytest.param(10, "low", {"priority": "emergency"}, "emergency", id="filter beats all"),
        pytest.param(10, None, {"help_topic_id": 11}, "low", id="filter topic's"),
        pytest.param(10, "high", {"help_topic_id": 11}, "high", id="requested beats filter topic"),
        pytest.param(12, None, {}, DEFAULT_PRIORITY, id="archived topic's ignored"),
    ],
)
def test_priority(
    requested_topic: int | None,
    requested_priority: str | None,
    outcome: dict[str, Any],
    expected: str,
) -> None:
    assert (
        route(
            requested_topic=requested_topic, requested_priority=requested_priority, **outcome
        ).priority
        == expected
    )


@pytest.mark.parametrize(
    ("requested_topic", "outcome", "expected"),
    [
        pytest.param(None, {}, None, id="no topic: left to the SLA service"),
        pytest.param(10, {}, 5, id="topic's"),
        pytest.param(15, {}, None, id="topic without plan"),
        pytest.param(10, {"sla_plan_id": 9}, 9, id="filter beats topic's"),
        pytest.param(10, {"help_topic_id": 11}, 6, id="filter topic's"),
        pytest.param(10, {"help_topic_id": 11, "sla_plan_id": 9}, 9, id="filter plan and topic"),
        pytest.param(13, {}, None, id="disabled topic's ignored"),
    ],
)
def test_sla_plan(requested_topic: int | None, outcome: dict[str, Any], expected: int | None):
    assert route(requested_topic=requested_topic, **outcome).sla_plan_id == expected


# --- rejection and status ------------------------------------------------------------------------


def test_a_rejecting_filter_gives_rejected_with_the_matched_filters() -> None:
    result = route_new_ticket(
        requested_priority="high",
        requested_topic_id=10,
        topics=TOPICS,
        departments=DEPARTMENTS,
        outcome=Outcome(matched_filter_ids=(3, 8), rejected_by=8),
    )
    assert result == Rejected(filter_id=8, filter_ids=(3, 8))


def test_rejection_needs_no_department() -> None:
    result = route_new_ticket(
        requested_priority=None,
        requested_topic_id=None,
        topics={},
        departments={},
        outcome=Outcome(matched_filter_ids=(1,), rejected_by=1),
    )
    assert result == Rejected(filter_id=1, filter_ids=(1,))


def test_filter_details_are_carried_on_the_route() -> None:
    result = route(
        requested_topic=10,
        matched_filter_ids=(2, 5),
        collaborators=("a@example.com", "b@example.com"),
    )
    assert result.filter_ids == (2, 5)
    assert result.collaborators == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("outcome", "expected_status", "expected_assign"),
    [
        pytest.param({}, "open", ROUND_ROBIN_RULE, id="open by default"),
        pytest.param({"status": "open"}, "open", ROUND_ROBIN_RULE, id="filter: open"),
        pytest.param({"status": "closed"}, "closed", None, id="filter: closed, not assigned"),
        pytest.param({"status": "resolved"}, "resolved", None, id="filter: resolved"),
        pytest.param(
            {"status": "closed", "assign_agent_id": 4}, "closed", None, id="closed beats agent"
        ),
    ],
)
def test_only_a_ticket_that_starts_open_is_assigned(
    outcome: dict[str, Any], expected_status: str, expected_assign: AutoAssign | None
) -> None:
    result = route(requested_topic=10, **outcome)  # the Sales department round-robins
    assert result.status == expected_status
    assert result.assign == expected_assign
    assert (result.assign_reason is None) == (expected_assign is None)


# --- assignment precedence -----------------------------------------------------------------------

ROUND_ROBIN_DEPT = Department(1, auto_assign=ROUND_ROBIN_RULE)
PLAIN_DEPT = Department(2)
TOPIC_WITH_RULE = HelpTopic(20, 1, None, None, auto_assign=FEWEST_OPEN_RULE)
TOPIC_WITHOUT_RULE = HelpTopic(21, 1, None, None)
TOPIC_IN_PLAIN_DEPT = HelpTopic(22, 2, None, None)
ARCHIVED_TOPIC_WITH_RULE = HelpTopic(
    23, 1, None, None, status="archived", auto_assign=AutoAssign(9)
)


@pytest.mark.parametrize(
    ("requested_topic", "outcome", "expected_rule", "expected_reason"),
    [
        pytest.param(
            20, {"assign_agent_id": 4}, AutoAssign(agent_id=4), "ticket filter", id="filter agent"
        ),
        pytest.param(
            20, {"assign_team_id": 6}, AutoAssign(team_id=6), "ticket filter", id="filter team"
        ),
        pytest.param(
            20,
            {"assign_agent_id": 4, "assign_team_id": 6},
            AutoAssign(agent_id=4, team_id=6),
            "ticket filter",
            id="filter agent and team",
        ),
        pytest.param(
            20, {}, FEWEST_OPEN_RULE, "help topic auto-assignment", id="topic beats department"
        ),
        pytest.param(
            None,
            {"help_topic_id": 20},
            FEWEST_OPEN_RULE,
            "help topic auto-assignment",
            id="filter's topic",
        ),
        pytest.param(
            21, {}, ROUND_ROBIN_RULE, "department auto-assignment", id="topic without rule"
        ),
        pytest.param(
            23, {}, ROUND_ROBIN_RULE, "department auto-assignment", id="archived topic's rule"
        ),
        pytest.param(
            20,
            {"department_id": 2},
            FEWEST_OPEN_RULE,
            "help topic auto-assignment",
            id="topic's rule in the filter's department",
        ),
        pytest.param(22, {}, None, None, id="no rule anywhere"),
        pytest.param(
            22,
            {"department_id": 1},
            ROUND_ROBIN_RULE,
            "department auto-assignment",
            id="the routed department's rule",
        ),
    ],
)
def test_assignment_precedence(
    requested_topic: int | None,
    outcome: dict[str, Any],
    expected_rule: AutoAssign | None,
    expected_reason: str | None,
) -> None:
    result = route(
        requested_topic=requested_topic,
        topics={
            t.id: t
            for t in (
                TOPIC_WITH_RULE,
                TOPIC_WITHOUT_RULE,
                TOPIC_IN_PLAIN_DEPT,
                ARCHIVED_TOPIC_WITH_RULE,
            )
        },
        departments={1: ROUND_ROBIN_DEPT, 2: PLAIN_DEPT},
        **outcome,
    )
    assert (result.assign, result.assign_reason) == (expected_rule, expected_reason)


# --- auto-response -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "outcome", "expected"),
    [
        pytest.param(True, {}, True, id="on"),
        pytest.param(False, {}, False, id="off by the submitter"),
        pytest.param(True, {"disable_autoresponse": True}, False, id="filter: no auto-response"),
        pytest.param(True, {"canned_response_ids": (4,)}, False, id="filter: canned reply"),
        pytest.param(True, {"matched_filter_ids": (1,)}, True, id="a filter that changes nothing"),
    ],
)
def test_autorespond(requested: bool, outcome: dict[str, Any], expected: bool) -> None:
    result = route(requested_topic=10, autorespond=requested, **outcome)
    assert result.autorespond is expected


def test_canned_responses_are_carried() -> None:
    assert route(canned_response_ids=(4, 2)).canned_response_ids == (4, 2)


# --- reassignment (transfer, reopen) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "department", "expected"),
    [
        pytest.param(
            None,
            ROUND_ROBIN_DEPT,
            (ROUND_ROBIN_RULE, "department auto-assignment"),
            id="the department's rule",
        ),
        pytest.param(
            TOPIC_WITHOUT_RULE,
            ROUND_ROBIN_DEPT,
            (ROUND_ROBIN_RULE, "department auto-assignment"),
            id="topic without rule",
        ),
        pytest.param(
            TOPIC_WITH_RULE,
            ROUND_ROBIN_DEPT,
            (FEWEST_OPEN_RULE, "help topic auto-assignment"),
            id="topic's rule first",
        ),
        pytest.param(None, PLAIN_DEPT, (None, None), id="no rule"),
    ],
)
def test_reassignment_rule(
    topic: HelpTopic | None,
    department: Department,
    expected: tuple[AutoAssign | None, str | None],
) -> None:
    assert reassignment_rule(topic=topic, department=department) == expected


def test_reassignment_ignores_an_archived_topics_rule() -> None:
    archived = HelpTopic(9, 2, None, None, status="archived", auto_assign=AutoAssign(agent_id=7))
    department = Department(2, auto_assign=AutoAssign(strategy="round_robin"))
    rule, reason = reassignment_rule(topic=archived, department=department)
    assert rule == AutoAssign(strategy="round_robin") and reason == "department auto-assignment"
