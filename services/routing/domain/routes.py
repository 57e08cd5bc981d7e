"""Pure routing decisions."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PRIORITY = "normal"


@dataclass(frozen=True)
class Department:
    id: int
    status: str = "active"
    default: bool = False


@dataclass(frozen=True)
class HelpTopic:
    id: int
    department_id: int | None
    priority: str | None
    sla_plan_id: int | None
    status: str = "active"
    auto_assign_agent_id: int | None = None
    auto_assign_team_id: int | None = None


@dataclass(frozen=True)
class Route:
    department_id: int
    help_topic_id: int | None
    priority: str
    sla_plan_id: int | None
    assign_agent_id: int | None = None
    assign_team_id: int | None = None


class NoDepartment(Exception):
    """No department is defined yet (config may still be arriving)."""


def default_department(departments: list[Department]) -> Department:
    active = [d for d in departments if d.status == "active"]
    if not active:
        raise NoDepartment("no active department is defined")
    flagged = [d for d in active if d.default]
    return min(flagged or active, key=lambda d: d.id)


def route_new_ticket(
    *,
    requested_priority: str | None,
    topic: HelpTopic | None,
    departments: list[Department],
) -> Route:
    """Help topic defaults first (osTicket), then the default department; the request's own
    priority wins over the topic's."""
    by_id = {d.id: d for d in departments}
    if topic is not None and topic.status != "active":
        topic = None  # osTicket drops an inactive topic silently
    department = None
    if topic is not None and topic.department_id in by_id:
        department = by_id[topic.department_id]
        if department.status != "active":  # archived and disabled departments take no new tickets
            department = None
    department = department or default_department(departments)
    return Route(
        department_id=department.id,
        help_topic_id=topic.id if topic else None,
        priority=requested_priority or (topic.priority if topic else None) or DEFAULT_PRIORITY,
        sla_plan_id=topic.sla_plan_id if topic else None,
        assign_agent_id=topic.auto_assign_agent_id if topic else None,
        assign_team_id=topic.auto_assign_team_id if topic else None,
    )
