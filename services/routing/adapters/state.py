"""Reading and writing routing's tables for one decision (inside the handler's transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from libs.platform.database import upsert
from services.routing.adapters.tables import (
    routing_agents,
    routing_departments,
    routing_filters,
    routing_help_topics,
    routing_rotations,
    routing_tickets,
)
from services.routing.domain.assignment import AutoAssign, choose_agent
from services.routing.domain.filters import Filter
from services.routing.domain.routes import OPEN, Department, HelpTopic

# Compiled filters by the id of their FilterDefined event: regexes compile once per definition.
_compiled: dict[str, Filter] = {}


def departments(conn: Connection) -> dict[int, Department]:
    return {
        r.id: Department(r.id, r.status, r.is_default, AutoAssign.from_definition(r.auto_assign))
        for r in conn.execute(select(routing_departments))
    }


def help_topics(conn: Connection) -> dict[int, HelpTopic]:
    return {
        r.id: HelpTopic(
            id=r.id,
            department_id=r.department_id,
            priority=r.priority,
            sla_plan_id=r.sla_plan_id,
            status=r.status,
            auto_assign=AutoAssign.from_definition(
                {
                    "agent_id": r.auto_assign_agent_id,
                    "team_id": r.auto_assign_team_id,
                    "strategy": r.auto_assign_strategy,
                }
            ),
        )
        for r in conn.execute(select(routing_help_topics))
    }


def filters(conn: Connection) -> list[Filter]:
    compiled = []
    for event_id, definition in conn.execute(
        select(routing_filters.c.event_id, routing_filters.c.definition)
    ):
        flt = _compiled.get(event_id)
        if flt is None:
            # Validated when defined (intake); a definition that no longer compiles is a bug.
            flt = _compiled[event_id] = Filter.from_definition(definition)
        compiled.append(flt)
    return compiled


def ticket(conn: Connection, stream_id: str) -> Any:
    return conn.execute(
        select(routing_tickets).where(routing_tickets.c.stream_id == stream_id)
    ).first()


def save_ticket(conn: Connection, stream_id: str, **values: Any) -> None:
    """Upsert the ticket's row. Its `status` holds the state (open, closed, archived, deleted;
    state_of) or `rejected`: what routing decides by, whatever the status is called."""
    row = ticket(conn, stream_id)
    base = (
        dict(row._mapping)
        if row is not None
        else {"status": "open", "assigned_manually": False, "stream_id": stream_id}
    )
    upsert(conn, routing_tickets, {**base, **values}, ["stream_id"])


def pick_agent(conn: Connection, rule: AutoAssign, department_id: int, scope: str) -> int | None:
    """Run a strategy over the department's available members; remember a round-robin pick."""
    assert rule.strategy is not None
    members = [
        r.id
        for r in conn.execute(
            select(routing_agents.c.id, routing_agents.c.department_ids).where(
                routing_agents.c.available.is_(True)
            )
        )
        if department_id in (r.department_ids or [])
    ]
    t = routing_tickets.c
    open_tickets = {
        agent_id: count
        for agent_id, count in conn.execute(
            select(t.agent_id, func.count())
            .where(t.agent_id.in_(members), t.status == OPEN)
            .group_by(t.agent_id)
        )
    }
    last = conn.execute(
        select(routing_rotations.c.last_agent_id).where(routing_rotations.c.scope == scope)
    ).scalar_one_or_none()
    chosen = choose_agent(rule.strategy, members, last_agent_id=last, open_tickets=open_tickets)
    if chosen is not None:
        upsert(conn, routing_rotations, {"scope": scope, "last_agent_id": chosen}, ["scope"])
    return chosen
