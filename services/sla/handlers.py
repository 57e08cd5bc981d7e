"""sla's subscription (plans and due dates) and its overdue timer."""

from __future__ import annotations

import threading

from sqlalchemy import and_, select, update

from libs.events.clock import Clock
from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.store import ANY_VERSION, EventStore
from libs.events.subscription import Subscription, TransientError, UnitOfWork
from libs.platform.database import as_utc, reading, upsert
from services.sla.adapters.tables import sla_departments, sla_plans, sla_tickets
from services.sla.domain.due_dates import Plan, choose_plan, due_at

OPEN_STATUSES = frozenset({"open"})


def on_plan(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    upsert(
        uow.conn,
        sla_plans,
        {
            "id": d["id"],
            "grace_hours": d["grace_hours"],
            "schedule_id": d.get("schedule_id"),
            "transient": d.get("transient", False),
            "is_default": d.get("default", False),
        },
        ["id"],
    )


def on_department(event: RecordedEvent, uow: UnitOfWork) -> None:
    upsert(
        uow.conn,
        sla_departments,
        {"id": event.data["id"], "sla_plan_id": event.data.get("sla_plan_id")},
        ["id"],
    )


def on_routed(event: RecordedEvent, uow: UnitOfWork) -> None:
    plans = {
        r.id: Plan(r.id, r.grace_hours, r.schedule_id, r.transient, r.is_default)
        for r in uow.conn.execute(select(sla_plans))
    }
    department = uow.conn.execute(
        select(sla_departments.c.sla_plan_id).where(
            sla_departments.c.id == event.data["department_id"]
        )
    ).first()
    # Config travels on its own topic and may arrive after the ticket: wait for it rather than
    # settle for a wrong (default) plan or none. Routing only names departments that exist.
    if department is None:
        raise TransientError("the ticket's department has not arrived yet")
    department_plan = department.sla_plan_id
    wanted = event.data.get("sla_plan_id")
    if (wanted is not None and wanted not in plans) or (
        department_plan is not None and department_plan not in plans
    ):
        raise TransientError("an SLA plan this ticket needs has not arrived yet")
    plan = choose_plan(routed_plan_id=wanted, department_plan_id=department_plan, plans=plans)
    if plan is None:
        return  # no plan names this ticket and none is the default: it has no due date
    # Measured from the routing event's own time: a replay computes the same due date.
    due = due_at(event.time, plan)
    uow.append(
        event.stream_id,
        [
            NewEvent(
                "SlaApplied",
                {
                    "sla_plan_id": plan.id,
                    "grace_hours": plan.grace_hours,
                    "due_at": due.isoformat(),
                },
            )
        ],
        ANY_VERSION,
    )
    upsert(
        uow.conn,
        sla_tickets,
        {
            "stream_id": event.stream_id,
            "sla_plan_id": plan.id,
            "due_at": due,
            "is_open": True,
            "overdue": False,
        },
        ["stream_id"],
    )


def on_status(event: RecordedEvent, uow: UnitOfWork) -> None:
    uow.conn.execute(
        update(sla_tickets)
        .where(sla_tickets.c.stream_id == event.stream_id)
        .values(is_open=event.data["status"] in OPEN_STATUSES)
    )


def subscription() -> Subscription:
    return Subscription(
        "sla",
        {
            "SlaPlanDefined": on_plan,
            "DepartmentDefined": on_department,
            "TicketRouted": on_routed,
            "TicketStatusChanged": on_status,
        },
    )


class OverdueTimer:
    """Appends TicketOverdue once per due date, for open tickets whose due time has passed.

    Exactly once: the conditional UPDATE (overdue false -> true for this due date) and the
    append commit together, so a second timer replica or a restart finds nothing to do.
    """

    name = "sla-timer"

    def __init__(
        self, store: EventStore, clock: Clock, batch_size: int = 500, interval_s: float = 0.25
    ) -> None:
        self.interval_s = interval_s
        self.store = store
        self.clock = clock
        self.batch_size = batch_size

    def run_once(self) -> int:
        now = self.clock.now()
        t = sla_tickets.c
        with reading(self.store.engine) as conn:
            due = conn.execute(
                select(t.stream_id, t.due_at)
                .where(t.is_open.is_(True), t.overdue.is_(False), t.due_at <= now)
                .order_by(t.due_at)
                .limit(self.batch_size)
            ).all()
        marked = 0
        for stream_id, due_time in due:
            with self.store.transaction() as conn:
                changed = conn.execute(
                    update(sla_tickets)
                    .where(
                        and_(t.stream_id == stream_id, t.overdue.is_(False), t.due_at == due_time)
                    )
                    .values(overdue=True)
                ).rowcount
                if changed == 1:
                    when = as_utc(due_time)
                    self.store.append(
                        stream_id,
                        [
                            NewEvent(
                                "TicketOverdue",
                                {"due_at": when.isoformat()},
                                metadata={"actor": "sla"},
                            )
                        ],
                        ANY_VERSION,
                        conn=conn,
                    )
                    marked += 1
        return marked

    def wait_for_work(self, timeout: float) -> None:
        # Due dates are hours away when set: a quarter-second look keeps overdue marks well
        # inside a second of the due time without querying fifty times a second.
        threading.Event().wait(min(timeout, self.interval_s))

    def close(self) -> None:
        """Nothing held between runs."""
