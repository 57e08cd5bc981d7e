"""Pure routing decisions: where a new ticket goes, and what a transfer or help-topic change does.

osTicket's order: filters run on the submitted data first; then the help topic (the filter's,
else the requested one) supplies its defaults wherever a filter set nothing; the default
department catches the rest; an email's receiving address picks a department before the
topic does. Assignment: the filter's agent/team, else the topic's auto-assign
rule, else the department's, and only for a ticket that starts open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from services.routing.domain.assignment import AutoAssign
from services.routing.domain.filters import Outcome

DEFAULT_PRIORITY = "normal"
OPEN = "open"


@dataclass(frozen=True)
class Department:
    id: int
    status: str = "active"
    default: bool = False
    auto_assign: AutoAssign | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class HelpTopic:
    id: int
    department_id: int | None
    priority: str | None
    sla_plan_id: int | None
    status: str = "active"
    auto_assign: AutoAssign | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class Route:
    department_id: int
    help_topic_id: int | None
    priority: str
    sla_plan_id: int | None
    status: str = OPEN
    # The rule to apply (a strategy still needs the routing state to pick an agent).
    assign: AutoAssign | None = None
    assign_reason: str | None = None
    autorespond: bool = True
    filter_ids: tuple[int, ...] = ()
    collaborators: tuple[str, ...] = ()
    canned_response_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rejected:
    filter_id: int
    filter_ids: tuple[int, ...]


_T = TypeVar("_T", Department, HelpTopic)


class NoDepartment(Exception):
    """No department is defined yet (config may still be arriving)."""


def default_department(departments: Mapping[int, Department]) -> Department:
    active = [d for d in departments.values() if d.active]
    if not active:
        raise NoDepartment("no active department is defined")
    flagged = [d for d in active if d.default]
    return min(flagged or active, key=lambda d: d.id)


def route_new_ticket(
    *,
    requested_priority: str | None,
    requested_topic_id: int | None,
    topics: Mapping[int, HelpTopic],
    departments: Mapping[int, Department],
    outcome: Outcome | None = None,
    autorespond: bool = True,
    requested_department_id: int | None = None,
) -> Route | Rejected:
    """`requested_department_id` is the receiving email address's department: it comes after a
    filter's choice and before the help topic's (osTicket: email's dept -> topic's -> default)."""
    outcome = outcome or Outcome()
    if outcome.rejected_by is not None:
        return Rejected(outcome.rejected_by, outcome.matched_filter_ids)
    topic = _active(topics, outcome.help_topic_id) or _active(topics, requested_topic_id)
    department = (
        _active(departments, outcome.department_id)
        or _active(departments, requested_department_id)
        or _active(departments, topic.department_id if topic else None)
        or default_department(departments)
    )
    status = outcome.status or OPEN
    assign, reason = None, None
    if status == OPEN:  # osTicket assigns only a ticket that starts open
        assign, reason = _assignment_rule(outcome, topic, department)
    return Route(
        department_id=department.id,
        help_topic_id=topic.id if topic else None,
        priority=outcome.priority
        or requested_priority
        or (topic.priority if topic else None)
        or DEFAULT_PRIORITY,
        sla_plan_id=outcome.sla_plan_id or (topic.sla_plan_id if topic else None),
        status=status,
        assign=assign,
        assign_reason=reason,
        autorespond=autorespond and not outcome.suppress_autoresponse,
        filter_ids=outcome.matched_filter_ids,
        collaborators=outcome.collaborators,
        canned_response_ids=outcome.canned_response_ids,
    )


def reassignment_rule(
    *, topic: HelpTopic | None, department: Department
) -> tuple[AutoAssign | None, str | None]:
    """The rule for a ticket that is routed again (transfer, reopen) and has no manual owner."""
    return _assignment_rule(Outcome(), topic if topic and topic.active else None, department)


def _assignment_rule(
    outcome: Outcome, topic: HelpTopic | None, department: Department
) -> tuple[AutoAssign | None, str | None]:
    if outcome.assign_agent_id or outcome.assign_team_id:
        return AutoAssign(outcome.assign_agent_id, outcome.assign_team_id), "ticket filter"
    if topic is not None and topic.auto_assign is not None:
        return topic.auto_assign, "help topic auto-assignment"
    if department.auto_assign is not None:
        return department.auto_assign, "department auto-assignment"
    return None, None


def _active(things: Mapping[int, _T], thing_id: int | None) -> _T | None:
    thing = things.get(thing_id) if thing_id is not None else None
    return thing if thing is not None and thing.active else None
