"""Pure SLA decisions: which plan applies to a ticket, and when it is due.

Plan selection follows osTicket: at creation the routed plan (filter or help topic), else the
department's, else the default. A transfer or help-topic change replaces the plan only when the
ticket has none or its plan is transient. The due date counts the plan's hours on the plan's
schedule (around the clock without one) from the ticket's creation or last reopen; with a
first-response target, the ticket is due by that until an agent responds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.sla.domain.calendar import Schedule, add_business_hours

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"


@dataclass(frozen=True)
class Plan:
    id: int
    grace_hours: float
    schedule_id: int | None = None
    transient: bool = False
    default: bool = False
    first_response_hours: float | None = None
    alerts_enabled: bool = True


@dataclass(frozen=True)
class Due:
    at: datetime
    target: str
    hours: float


def choose_plan(
    *, routed_plan_id: int | None, department_plan_id: int | None, plans: Mapping[int, Plan]
) -> Plan | None:
    """The routed (help topic / filter) plan, else the department's, else the default plan."""
    for plan_id in (routed_plan_id, department_plan_id):
        if plan_id is not None and plan_id in plans:
            return plans[plan_id]
    defaults = [p for p in plans.values() if p.default] or list(plans.values())
    return min(defaults, key=lambda p: p.id) if defaults else None


def replan(
    reason: str,
    *,
    current_plan_id: int | None,
    routed_plan_id: int | None,
    department_plan_id: int | None,
    plans: Mapping[int, Plan],
) -> Plan | None:
    """The plan after a routing decision (`TicketRouted.reason`)."""
    current = plans.get(current_plan_id) if current_plan_id is not None else None
    if reason == "new" or current is None:
        return choose_plan(
            routed_plan_id=routed_plan_id, department_plan_id=department_plan_id, plans=plans
        )
    if not current.transient:
        return current  # a fixed plan stays with the ticket
    if reason == "transfer":
        if department_plan_id is not None and department_plan_id in plans:
            return plans[department_plan_id]
        return current
    if reason == "help_topic":
        return choose_plan(
            routed_plan_id=routed_plan_id, department_plan_id=department_plan_id, plans=plans
        )
    return current


def due_date(start: datetime, plan: Plan, schedule: Schedule | None, *, responded: bool) -> Due:
    if plan.first_response_hours is not None and not responded:
        target, hours = FIRST_RESPONSE, plan.first_response_hours
    else:
        target, hours = RESOLUTION, plan.grace_hours
    if schedule is None:  # elapsed hours: counted in UTC, so a DST change costs no hour
        return Due(start.astimezone(UTC) + timedelta(hours=hours), target, hours)
    return Due(add_business_hours(start, hours, schedule), target, hours)
