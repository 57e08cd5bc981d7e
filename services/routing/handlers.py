"""routing's subscription: config events -> its tables; TicketCreated -> TicketRouted."""

from __future__ import annotations

from sqlalchemy import select

from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.store import ANY_VERSION
from libs.events.subscription import Subscription, TransientError, UnitOfWork
from libs.platform.database import upsert
from services.routing.adapters.tables import routing_departments, routing_help_topics
from services.routing.domain.routes import Department, HelpTopic, NoDepartment, route_new_ticket

SYSTEM = {"kind": "system", "id": None, "name": "routing", "email": None}


def on_department(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    upsert(
        uow.conn,
        routing_departments,
        {"id": d["id"], "status": d.get("status", "active"), "is_default": d.get("default", False)},
        ["id"],
    )


def on_help_topic(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    assign = d.get("auto_assign") or {}
    upsert(
        uow.conn,
        routing_help_topics,
        {
            "id": d["id"],
            "department_id": d.get("department_id"),
            "priority": d.get("priority"),
            "sla_plan_id": d.get("sla_plan_id"),
            "status": d.get("status", "active"),
            "auto_assign_agent_id": assign.get("agent_id"),
            "auto_assign_team_id": assign.get("team_id"),
        },
        ["id"],
    )


def on_ticket_created(event: RecordedEvent, uow: UnitOfWork) -> None:
    departments = [
        Department(r.id, r.status, r.is_default)
        for r in uow.conn.execute(select(routing_departments))
    ]
    topic = None
    if event.data.get("help_topic_id") is not None:
        row = (
            uow.conn.execute(
                select(routing_help_topics).where(
                    routing_help_topics.c.id == event.data["help_topic_id"]
                )
            )
            .mappings()
            .first()
        )
        if row is not None:
            topic = HelpTopic(**dict(row))
    try:
        route = route_new_ticket(
            requested_priority=event.data.get("priority"), topic=topic, departments=departments
        )
    except NoDepartment as exc:
        # Config travels on its own topic and may arrive after the ticket: retry, don't drop.
        raise TransientError(str(exc)) from exc
    new_events = [
        NewEvent(
            "TicketRouted",
            {
                "department_id": route.department_id,
                "help_topic_id": route.help_topic_id,
                "priority": route.priority,
                "sla_plan_id": route.sla_plan_id,
                "filter_ids": [],
                "autorespond": event.data.get("autorespond", True),
                "reason": "new",
            },
        )
    ]
    if route.assign_agent_id or route.assign_team_id:
        new_events.append(
            NewEvent(
                "TicketAssigned",
                {
                    "agent_id": route.assign_agent_id,
                    "team_id": route.assign_team_id,
                    "reason": "help topic auto-assignment",
                    "by": SYSTEM,
                },
            )
        )
    # A system fact about what already happened: no expected version to race an agent's edit.
    uow.append(event.stream_id, new_events, ANY_VERSION)


def subscription() -> Subscription:
    return Subscription(
        "routing",
        {
            "DepartmentDefined": on_department,
            "HelpTopicDefined": on_help_topic,
            "TicketCreated": on_ticket_created,
        },
    )
