"""Pure SLA decisions: which plan applies, and when a ticket is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Plan:
    id: int
    grace_hours: float
    schedule_id: int | None = None
    transient: bool = False
    default: bool = False


def choose_plan(
    *, routed_plan_id: int | None, department_plan_id: int | None, plans: dict[int, Plan]
) -> Plan | None:
    """The routed (help topic / filter) plan, else the department's, else the default plan."""
    for plan_id in (routed_plan_id, department_plan_id):
        if plan_id is not None and plan_id in plans:
            return plans[plan_id]
    defaults = [p for p in plans.values() if p.default] or list(plans.values())
    return min(defaults, key=lambda p: p.id) if defaults else None


def due_at(start: datetime, plan: Plan) -> datetime:
    """Around the clock: start + grace. (Business-hours schedules: services/sla/domain/calendar, issue 4.)"""
    return start + timedelta(hours=plan.grace_hours)
