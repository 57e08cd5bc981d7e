"""Reads that turn projection rows into the v1 resource shapes (DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from libs.events.store import EventStore
from libs.platform.access import Agent
from libs.platform.database import as_utc
from libs.platform.errors import NotFound, ValidationFailed
from services.query.adapters.tables import query_names, thread_entries, tickets

SORTS = {
    "created": tickets.c.created_at,
    "updated": tickets.c.updated_at,
    "due": tickets.c.due_at,
    "number": tickets.c.number,
    "priority": tickets.c.priority,
}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat()


def _names(conn: Connection) -> dict[tuple[str, int], str]:
    return {(r.thing, r.id): r.name for r in conn.execute(select(query_names))}


def _ref(
    names: dict[tuple[str, int], str], thing: str, thing_id: int | None
) -> dict[str, Any] | None:
    return None if thing_id is None else {"id": thing_id, "name": names.get((thing, thing_id))}


def ticket_summary(row: Any, names: dict[tuple[str, int], str]) -> dict[str, Any]:
    return {
        "number": row.number,
        "id": row.ticket_id,
        "version": row.version,
        "subject": row.subject,
        "status": row.status,
        "state": row.state,
        "priority": row.priority,
        "channel": row.channel,
        "requester": {"email": row.requester_email, "name": row.requester_name},
        "collaborators": [
            {"email": c["email"], "name": c.get("name"), "active": c.get("active", True)}
            for c in row.collaborators or []
        ],
        "links": [{"number": link["number"]} for link in row.links or []],
        "merged_into": None if row.merged_into is None else {"number": row.merged_into},
        "department": _ref(names, "department", row.department_id),
        "help_topic": _ref(names, "help-topic", row.help_topic_id),
        "assignee": {
            "agent": _ref(names, "agent", row.agent_id),
            "team": _ref(names, "team", row.team_id),
        },
        "sla": {
            "plan": _ref(names, "sla-plan", row.sla_plan_id),
            "due_at": _iso(row.due_at),
            "overdue": row.overdue,
        },
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _visible(conn: Connection, number: str, agent: Agent) -> Any:
    row = conn.execute(select(tickets).where(tickets.c.number == number)).first()
    # Another department's ticket is reported as missing, not forbidden: no existence oracle.
    if row is None or not agent.can_see_department(row.department_id):
        raise NotFound(f"ticket {number} not found")
    if row.deleted:
        raise NotFound(f"ticket {number} was merged into ticket {row.merged_into} and deleted")
    return row


def get_ticket(conn: Connection, number: str, agent: Agent) -> dict[str, Any]:
    row = _visible(conn, number, agent)
    result = ticket_summary(row, _names(conn))
    result["thread"] = [
        {
            "id": e.entry_id,
            "ticket": {"number": e.number},
            "kind": e.kind,
            "author": {
                "kind": e.author_kind,
                "id": e.author_id,
                "name": e.author_name,
                "email": e.author_email,
            },
            "body": e.body,
            "body_html": e.body_html,
            "attachments": e.attachments or [],
            "created_at": _iso(e.created_at),
        }
        for e in _thread(conn, row)
    ]
    return result


def _thread(conn: Connection, row: Any) -> list[Any]:
    """The ticket's entries and its merged children's (with the number each was written on):
    a combined child's interleave with the parent's in time order; a separate child's follow
    as one block each, in the order the children were opened (osTicket's two merge views)."""
    children = conn.execute(
        select(tickets.c.ticket_id, tickets.c.merge_mode, tickets.c.created_at).where(
            tickets.c.merged_into == row.number
        )
    ).all()
    separate = sorted((c for c in children if c.merge_mode == "separate"), key=_opened)
    block = {c.ticket_id: index for index, c in enumerate(separate, start=1)}
    entries = conn.execute(
        select(thread_entries, tickets.c.number)
        .join(tickets, tickets.c.ticket_id == thread_entries.c.ticket_id)
        .where(thread_entries.c.ticket_id.in_([row.ticket_id, *(c.ticket_id for c in children)]))
    ).all()
    return sorted(
        entries, key=lambda e: (block.get(e.ticket_id, 0), as_utc(e.created_at), e.entry_id)
    )


def _opened(child: Any) -> tuple[datetime, str]:
    return as_utc(child.created_at), child.ticket_id


def ticket_events(
    conn: Connection, store: EventStore, number: str, agent: Agent
) -> list[dict[str, Any]]:
    row = _visible(conn, number, agent)
    return [e.history_entry() for e in store.read_stream(row.stream_id)]


def queue(
    conn: Connection, queue_name: str, agent: Agent, *, page: int, per_page: int, sort: str
) -> dict[str, Any]:
    if queue_name != "open":
        raise NotFound(f"queue {queue_name!r} not found")
    descending = sort.startswith("-")
    column = SORTS.get(sort.lstrip("-"))
    if column is None:
        raise ValidationFailed(
            f"sort must be one of {sorted(SORTS)} (prefix - for descending)", field="sort"
        )
    if not (1 <= per_page <= 200 and page >= 1):
        raise ValidationFailed("page >= 1 and 1 <= per_page <= 200", field="per_page")
    where = [
        tickets.c.state == "open",  # custom open-state statuses too
        tickets.c.rejected.is_(False),
        tickets.c.merged_into.is_(None),  # a merged child's thread lives in its parent
    ]
    if not agent.admin:
        where.append(tickets.c.department_id.in_(sorted(agent.department_ids)))
    total = conn.execute(select(func.count()).select_from(tickets).where(*where)).scalar_one()
    rows = conn.execute(
        select(tickets)
        .where(*where)
        .order_by(column.desc() if descending else column.asc(), tickets.c.number)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    names = _names(conn)
    return {
        "queue": queue_name,
        "total": total,
        "page": page,
        "per_page": per_page,
        "tickets": [ticket_summary(r, names) for r in rows],
    }
