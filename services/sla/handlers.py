"""sla's subscription: plans, schedules and ticket events -> each open ticket's due date.

Every due date is a function of the events before it (the routing, reopen or response event's
own time, and the config as it stands in the log), so a replay recomputes the same dates.
`SlaApplied` is appended only when the plan, target or due date actually changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.store import ANY_VERSION
from libs.events.subscription import Subscription, TransientError, UnitOfWork
from libs.events.types.fields import state_of
from libs.platform.database import as_utc, insert_if_absent, upsert
from services.sla.adapters.tables import sla_departments, sla_plans, sla_schedules, sla_tickets
from services.sla.domain.calendar import Schedule
from services.sla.domain.due_dates import Plan, due_date, replan

OPEN = "open"

# Parsed schedules by the id of their ScheduleDefined event: zone lookups once per definition.
_schedules: dict[str, Schedule] = {}


# -- configuration ------------------------------------------------------------------------------


def on_plan(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    row = {
        "id": d["id"],
        "grace_hours": d["grace_hours"],
        "schedule_id": d.get("schedule_id"),
        "transient": d.get("transient", False),
        "is_default": d.get("default", False),
        "first_response_hours": d.get("first_response_hours"),
        "alerts_enabled": d.get("alerts_enabled", True),
    }
    upsert(uow.conn, sla_plans, row, ["id"])


def on_schedule(event: RecordedEvent, uow: UnitOfWork) -> None:
    row = {"id": event.data["id"], "event_id": str(event.event_id), "definition": event.data}
    upsert(uow.conn, sla_schedules, row, ["id"])


def on_department(event: RecordedEvent, uow: UnitOfWork) -> None:
    row = {"id": event.data["id"], "sla_plan_id": event.data.get("sla_plan_id")}
    upsert(uow.conn, sla_departments, row, ["id"])


# -- tickets ------------------------------------------------------------------------------------


def on_created(event: RecordedEvent, uow: UnitOfWork) -> None:
    insert_if_absent(uow.conn, sla_tickets, _new_ticket(event), ["stream_id"])


def on_routed(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    ticket = _ticket(uow, event)
    department = uow.conn.execute(
        select(sla_departments.c.sla_plan_id).where(sla_departments.c.id == d["department_id"])
    ).first()
    # Config travels on its own topic and may arrive after the ticket: wait for it rather than
    # settle for a wrong (default) plan or none. Routing only names departments that exist.
    if department is None:
        raise TransientError("the ticket's department has not arrived yet")
    plans = _plans(uow)
    wanted = [d.get("sla_plan_id"), department.sla_plan_id]
    if any(plan_id is not None and plan_id not in plans for plan_id in wanted):
        raise TransientError("an SLA plan this ticket needs has not arrived yet")
    plan = replan(
        d.get("reason", "new"),
        current_plan_id=ticket["sla_plan_id"],
        routed_plan_id=d.get("sla_plan_id"),
        department_plan_id=department.sla_plan_id,
        plans=plans,
    )
    _apply(event, uow, ticket, plan, reason=d.get("reason", "new"))


def on_status(event: RecordedEvent, uow: UnitOfWork) -> None:
    """Only an open-state ticket is due: a custom open status ("awaiting customer") keeps the
    clock running (osTicket has no SLA pause); a closed or archived one stops it."""
    ticket = _ticket(uow, event)
    is_open = state_of(event.data["status"], event.data.get("state")) == OPEN
    if is_open and not ticket["is_open"]:
        # osTicket: a reopened ticket's clock restarts at the reopen, and overdue clears.
        ticket.update(is_open=True, clock_start=event.time, overdue=False)
        _apply(event, uow, ticket, _plans(uow).get(ticket["sla_plan_id"]), reason="reopen")
        return
    ticket.update(is_open=is_open, overdue=ticket["overdue"] and is_open)
    _save(uow, ticket)


def on_response(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    if d["kind"] != "response" or d["author"]["kind"] != "agent":
        return
    ticket = _ticket(uow, event)
    if ticket["responded"]:
        return
    ticket["responded"] = True
    if ticket["target"] == "first_response":
        # The first-response target is met: it stops counting (and any overdue mark for it
        # clears); the resolution target, from the same clock start, takes over.
        ticket["overdue"] = False
    _apply(event, uow, ticket, _plans(uow).get(ticket["sla_plan_id"]), reason="first_response")


def on_priority(event: RecordedEvent, uow: UnitOfWork) -> None:
    # No plan is chosen by priority (nor in osTicket): recomputing yields the same due date, so
    # nothing is appended unless something else changed.
    ticket = _ticket(uow, event)
    _apply(event, uow, ticket, _plans(uow).get(ticket["sla_plan_id"]), reason="priority")


def on_overdue(event: RecordedEvent, uow: UnitOfWork) -> None:
    """The timer's mark, read back: a replay restores it, so the timer never marks twice."""
    due = datetime.fromisoformat(event.data["due_at"])
    uow.conn.execute(
        update(sla_tickets)
        .where(sla_tickets.c.stream_id == event.stream_id, sla_tickets.c.due_at == due)
        .values(overdue=True)
    )


def on_closed_for_good(event: RecordedEvent, uow: UnitOfWork) -> None:
    """A rejected or merged-away ticket is never due."""
    uow.conn.execute(
        update(sla_tickets)
        .where(sla_tickets.c.stream_id == event.stream_id)
        .values(is_open=False, overdue=False)
    )


def _apply(
    event: RecordedEvent,
    uow: UnitOfWork,
    ticket: dict[str, Any],
    plan: Plan | None,
    *,
    reason: str,
) -> None:
    previous_due = as_utc(ticket["due_at"]) if ticket["due_at"] else None
    before = (ticket["sla_plan_id"], previous_due, ticket["target"])
    if plan is None:
        ticket.update(sla_plan_id=None, due_at=None, target=None, overdue=False)
        _save(uow, ticket)
        return  # no plan names this ticket and none is the default: it has no due date
    start = as_utc(ticket["clock_start"]) if ticket["clock_start"] else event.time
    due = due_date(start, plan, _schedule(uow, plan.schedule_id), responded=ticket["responded"])
    if due.at != previous_due:
        ticket["overdue"] = False  # a new due date gets its own overdue mark
    ticket.update(sla_plan_id=plan.id, due_at=due.at, target=due.target)
    _save(uow, ticket)
    if (plan.id, due.at, due.target) == before:
        return
    applied = {
        "sla_plan_id": plan.id,
        "grace_hours": due.hours,
        "due_at": due.at.isoformat(),
        "target": due.target,
        "schedule_id": plan.schedule_id,
        "reason": reason,
    }
    uow.append(event.stream_id, [NewEvent("SlaApplied", applied)], ANY_VERSION)


def _ticket(uow: UnitOfWork, event: RecordedEvent) -> dict[str, Any]:
    row = uow.conn.execute(
        select(sla_tickets).where(sla_tickets.c.stream_id == event.stream_id)
    ).first()
    # None: created before this service kept the clock start, so it counts from this event.
    return dict(row._mapping) if row is not None else _new_ticket(event)


def _new_ticket(event: RecordedEvent) -> dict[str, Any]:
    return {
        "stream_id": event.stream_id,
        "sla_plan_id": None,
        "due_at": None,
        "is_open": True,
        "overdue": False,
        "clock_start": event.time,
        "responded": False,
        "target": None,
    }


def _save(uow: UnitOfWork, ticket: dict[str, Any]) -> None:
    upsert(uow.conn, sla_tickets, ticket, ["stream_id"])


def _plans(uow: UnitOfWork) -> dict[int, Plan]:
    return {
        r.id: Plan(
            r.id,
            r.grace_hours,
            r.schedule_id,
            r.transient,
            r.is_default,
            r.first_response_hours,
            r.alerts_enabled,
        )
        for r in uow.conn.execute(select(sla_plans))
    }


def _schedule(uow: UnitOfWork, schedule_id: int | None) -> Schedule | None:
    if schedule_id is None:
        return None  # around the clock
    row = uow.conn.execute(
        select(sla_schedules.c.event_id, sla_schedules.c.definition).where(
            sla_schedules.c.id == schedule_id
        )
    ).first()
    if row is None:
        raise TransientError(f"schedule {schedule_id} has not arrived yet")
    if row.event_id not in _schedules:
        _schedules[row.event_id] = Schedule.from_definition(row.definition)
    return _schedules[row.event_id]


def subscription() -> Subscription:
    return Subscription(
        "sla",
        {
            "SlaPlanDefined": on_plan,
            "ScheduleDefined": on_schedule,
            "DepartmentDefined": on_department,
            "TicketCreated": on_created,
            "TicketRouted": on_routed,
            "TicketStatusChanged": on_status,
            "MessageAppended": on_response,
            "TicketPriorityChanged": on_priority,
            "TicketOverdue": on_overdue,
            "TicketRejected": on_closed_for_good,
            "TicketMerged": on_closed_for_good,
        },
    )
