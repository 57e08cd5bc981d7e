"""routing's subscription: config and ticket events -> its tables; new, transferred, reopened and
re-topicked tickets -> TicketRouted / TicketRejected / TicketAssigned (and a filter's actions)."""

from __future__ import annotations

import uuid
from typing import Any

from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.store import ANY_VERSION
from libs.events.subscription import Subscription, TransientError, UnitOfWork
from libs.events.types.fields import state_of
from libs.platform.database import upsert
from services.routing.adapters import state
from services.routing.adapters.tables import (
    routing_agents,
    routing_departments,
    routing_filters,
    routing_help_topics,
    routing_templates,
)
from services.routing.domain.assignment import AutoAssign
from services.routing.domain.filters import evaluate, ticket_facts
from services.routing.domain.routes import (
    OPEN,
    NoDepartment,
    Rejected,
    reassignment_rule,
    route_new_ticket,
)

SYSTEM = {"kind": "system", "id": None, "name": "routing", "email": None}
FILTER = {"kind": "system", "id": None, "name": "Ticket Filter", "email": None}


# -- configuration ------------------------------------------------------------------------------


def on_department(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    row = {
        "id": d["id"],
        "status": d.get("status", "active"),
        "is_default": d.get("default", False),
        "auto_assign": d.get("auto_assign"),
    }
    upsert(uow.conn, routing_departments, row, ["id"])


def on_help_topic(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    assign = d.get("auto_assign") or {}
    row = {
        "id": d["id"],
        "department_id": d.get("department_id"),
        "priority": d.get("priority"),
        "sla_plan_id": d.get("sla_plan_id"),
        "status": d.get("status", "active"),
        "auto_assign_agent_id": assign.get("agent_id"),
        "auto_assign_team_id": assign.get("team_id"),
        "auto_assign_strategy": assign.get("strategy"),
    }
    upsert(uow.conn, routing_help_topics, row, ["id"])


def on_filter(event: RecordedEvent, uow: UnitOfWork) -> None:
    row = {"id": event.data["id"], "event_id": str(event.event_id), "definition": event.data}
    upsert(uow.conn, routing_filters, row, ["id"])


def on_agent(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    departments = [d["department_id"]] if d.get("department_id") else []
    departments += [x["department_id"] for x in d.get("extended_access", [])]
    row = {
        "id": d["id"],
        "department_ids": sorted(set(departments)),
        "available": d.get("active", True) and not d.get("on_vacation", False),
    }
    upsert(uow.conn, routing_agents, row, ["id"])


def on_template(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    row = {"id": d["id"], "subject": d["subject"], "body": d["body"]}
    upsert(uow.conn, routing_templates, row, ["id"])


# -- new tickets --------------------------------------------------------------------------------


def on_ticket_created(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    departments = state.departments(uow.conn)
    try:
        route = route_new_ticket(
            requested_priority=d.get("priority"),
            requested_topic_id=d.get("help_topic_id"),
            requested_department_id=d.get("department_id"),
            topics=state.help_topics(uow.conn),
            departments=departments,
            outcome=evaluate(state.filters(uow.conn), ticket_facts(d)),
            autorespond=d.get("autorespond", True),
        )
    except NoDepartment as exc:
        # Config travels on its own topic and may arrive after the ticket: retry, don't drop.
        raise TransientError(str(exc)) from exc
    if isinstance(route, Rejected):
        state.save_ticket(uow.conn, event.stream_id, status="rejected")
        rejected = {"reason": f"rejected by filter {route.filter_id}", "filter_id": route.filter_id}
        uow.append(event.stream_id, [NewEvent("TicketRejected", rejected)], ANY_VERSION)
        return
    state.save_ticket(
        uow.conn,
        event.stream_id,
        department_id=route.department_id,
        help_topic_id=route.help_topic_id,
        priority=route.priority,
        sla_plan_id=route.sla_plan_id,
        status=state_of(route.status),
    )
    new_events = [
        NewEvent(
            "TicketRouted",
            {
                "department_id": route.department_id,
                "help_topic_id": route.help_topic_id,
                "priority": route.priority,
                "sla_plan_id": route.sla_plan_id,
                "filter_ids": list(route.filter_ids),
                "autorespond": route.autorespond,
                "reason": "new",
            },
        )
    ]
    if route.status != OPEN:
        status = {
            "status": route.status,
            "state": state_of(route.status),
            "previous": OPEN,
            "reason": "ticket filter",
            "by": FILTER,
        }
        new_events.append(NewEvent("TicketStatusChanged", status))
    for email in route.collaborators:
        collaborator = {"email": email, "name": None, "by": FILTER}
        new_events.append(NewEvent("CollaboratorAdded", collaborator))
    new_events += _assign(
        uow,
        event.stream_id,
        route.assign,
        route.assign_reason,
        department_id=route.department_id,
        help_topic_id=route.help_topic_id,
    )
    new_events += _canned_responses(uow, event, route.canned_response_ids)
    # A system fact about what already happened: no expected version to race an agent's edit.
    uow.append(event.stream_id, new_events, ANY_VERSION)


def _assign(
    uow: UnitOfWork,
    stream_id: str,
    rule: AutoAssign | None,
    reason: str | None,
    *,
    department_id: int,
    help_topic_id: int | None,
) -> list[NewEvent]:
    if rule is None:
        return []
    agent_id, team_id = rule.agent_id, rule.team_id
    if rule.strategy:
        scope = (
            f"help-topic-{help_topic_id}"
            if reason == "help topic auto-assignment"
            else f"department-{department_id}"
        )
        agent_id = state.pick_agent(uow.conn, rule, department_id, scope)
        if agent_id is None:
            return []  # nobody available: the ticket waits unassigned in the department queue
        reason = f"{reason} ({rule.strategy.replace('_', ' ')})"
    # Recorded now, not when the event comes back: the next ticket in this batch must see it.
    state.save_ticket(
        uow.conn, stream_id, agent_id=agent_id, team_id=team_id, assigned_manually=False
    )
    assigned = {"agent_id": agent_id, "team_id": team_id, "reason": reason, "by": SYSTEM}
    return [NewEvent("TicketAssigned", assigned)]


def _canned_responses(
    uow: UnitOfWork, event: RecordedEvent, template_ids: tuple[int, ...]
) -> list[NewEvent]:
    responses = []
    for template_id in template_ids:
        template = uow.conn.execute(
            routing_templates.select().where(routing_templates.c.id == template_id)
        ).first()
        if template is None:
            raise TransientError(f"canned response template {template_id} has not arrived yet")
        # Derived from the cause, so a replayed decision names the same thread entry.
        entry_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{event.event_id}/canned/{template_id}")
        responses.append(
            NewEvent(
                "MessageAppended",
                {
                    "entry_id": str(entry_id),
                    "kind": "response",
                    "author": FILTER,
                    "body": template.body,
                    "reply_to": "requester",
                },
            )
        )
    return responses


# -- later changes ------------------------------------------------------------------------------


def on_routed(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    state.save_ticket(
        uow.conn,
        event.stream_id,
        department_id=d["department_id"],
        help_topic_id=d.get("help_topic_id"),
        priority=d["priority"],
        sla_plan_id=d.get("sla_plan_id"),
    )


def on_assigned(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    manual = d["by"]["kind"] == "agent"
    state.save_ticket(
        uow.conn,
        event.stream_id,
        agent_id=d.get("agent_id"),
        team_id=d.get("team_id"),
        assigned_manually=manual,
    )


def on_released(event: RecordedEvent, uow: UnitOfWork) -> None:
    row = state.ticket(uow.conn, event.stream_id)
    if row is None:
        return
    agent_id = None if event.data.get("agent", True) else row.agent_id
    team_id = None if event.data.get("team", True) else row.team_id
    # A released ticket is fair game for auto-assignment again (on transfer or reopen).
    state.save_ticket(
        uow.conn,
        event.stream_id,
        agent_id=agent_id,
        team_id=team_id,
        assigned_manually=row.assigned_manually and bool(agent_id or team_id),
    )


def on_status(event: RecordedEvent, uow: UnitOfWork) -> None:
    """Routing keeps the state: a custom open-state status is open work, closed-state is not."""
    row = state.ticket(uow.conn, event.stream_id)
    now = state_of(event.data["status"], event.data.get("state"))
    state.save_ticket(uow.conn, event.stream_id, status=now)
    reopened = row is not None and row.status != OPEN and now == OPEN
    if reopened and row.department_id is not None:
        _reassign(event, uow, row.department_id, row.help_topic_id)


def on_transferred(event: RecordedEvent, uow: UnitOfWork) -> None:
    row = state.ticket(uow.conn, event.stream_id)
    if row is None or row.status == "rejected":
        return
    department_id = event.data["department_id"]
    state.save_ticket(uow.conn, event.stream_id, department_id=department_id)
    _reroute(event, uow, row, "transfer", department_id=department_id)
    if row.status == OPEN:
        _reassign(event, uow, department_id, None)


def on_field_updated(event: RecordedEvent, uow: UnitOfWork) -> None:
    if event.data["field"] != "help_topic":
        return
    row = state.ticket(uow.conn, event.stream_id)
    if row is None or row.status == "rejected" or row.department_id is None:
        return
    topic = state.help_topics(uow.conn).get(event.data.get("value") or 0)
    # osTicket keeps the department on a topic change; the topic's plan goes to sla, which
    # applies it only over no plan or a transient one.
    help_topic_id, sla_plan_id = (topic.id, topic.sla_plan_id) if topic else (None, None)
    state.save_ticket(uow.conn, event.stream_id, help_topic_id=help_topic_id)
    _reroute(event, uow, row, "help_topic", help_topic_id=help_topic_id, sla_plan_id=sla_plan_id)


def _reroute(event: RecordedEvent, uow: UnitOfWork, row: Any, reason: str, **changes: Any) -> None:
    """`TicketRouted` for a ticket routed before: as it stands, with `changes`."""
    routed = {
        "department_id": row.department_id,
        "help_topic_id": row.help_topic_id,
        "priority": row.priority or "normal",
        "sla_plan_id": row.sla_plan_id,
        **changes,
        "autorespond": False,
        "reason": reason,
    }
    uow.append(event.stream_id, [NewEvent("TicketRouted", routed)], ANY_VERSION)


def on_priority(event: RecordedEvent, uow: UnitOfWork) -> None:
    state.save_ticket(uow.conn, event.stream_id, priority=event.data["priority"])


def on_rejected(event: RecordedEvent, uow: UnitOfWork) -> None:
    state.save_ticket(uow.conn, event.stream_id, status="rejected")


def _reassign(
    event: RecordedEvent, uow: UnitOfWork, department_id: int, topic_id: int | None
) -> None:
    """Auto-assign again after a transfer or reopen, unless an agent chose the owner."""
    row = state.ticket(uow.conn, event.stream_id)
    if row is None or row.assigned_manually:
        return
    department = state.departments(uow.conn).get(department_id)
    if department is None:
        return
    topic = state.help_topics(uow.conn).get(topic_id) if topic_id else None
    rule, reason = reassignment_rule(topic=topic, department=department)
    if rule is None:
        return
    if row.agent_id and not _left_department(uow, row.agent_id, department_id):
        return  # the system's earlier pick still works here: keep the owner
    new_events = _assign(
        uow, event.stream_id, rule, reason, department_id=department_id, help_topic_id=topic_id
    )
    if new_events:
        uow.append(event.stream_id, new_events, ANY_VERSION)


def _left_department(uow: UnitOfWork, agent_id: int, department_id: int) -> bool:
    agent = uow.conn.execute(routing_agents.select().where(routing_agents.c.id == agent_id)).first()
    return agent is None or department_id not in (agent.department_ids or [])


def subscription() -> Subscription:
    return Subscription(
        "routing",
        {
            "DepartmentDefined": on_department,
            "HelpTopicDefined": on_help_topic,
            "FilterDefined": on_filter,
            "AgentDefined": on_agent,
            "TemplateDefined": on_template,
            "TicketCreated": on_ticket_created,
            "TicketRouted": on_routed,
            "TicketAssigned": on_assigned,
            "AssignmentReleased": on_released,
            "TicketStatusChanged": on_status,
            "TicketTransferred": on_transferred,
            "TicketFieldUpdated": on_field_updated,
            "TicketPriorityChanged": on_priority,
            "TicketRejected": on_rejected,
        },
    )
