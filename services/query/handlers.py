"""query's subscription: every ticket event folds into the tickets / thread_entries tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from libs.events.envelope import RecordedEvent
from libs.events.subscription import Subscription, UnitOfWork
from libs.events.types.fields import state_of
from libs.platform.database import upsert
from services.query.adapters.tables import query_names, thread_entries, tickets


def on_created(event: RecordedEvent, uow: UnitOfWork) -> None:
    d = event.data
    uow.conn.execute(
        insert(tickets).values(
            ticket_id=d["ticket_id"],
            number=d["number"],
            stream_id=event.stream_id,
            version=event.version,
            subject=d["subject"],
            status="open",
            state="open",
            priority=d.get("priority"),
            channel=d["channel"],
            requester_email=d["requester"]["email"],
            requester_name=d["requester"].get("name"),
            help_topic_id=d.get("help_topic_id"),
            overdue=False,
            rejected=False,
            collaborators=[],
            created_at=event.time,
            updated_at=event.time,
            deleted=False,
            links=[],
        )
    )
    _entry(
        uow,
        event,
        d["ticket_id"],
        {
            "entry_id": d["entry_id"],
            "kind": "message",
            "body": d["body"],
            "body_html": d.get("body_html"),
            "attachments": d.get("attachments", []),
            "author": {
                "kind": "user",
                "id": None,
                "name": d["requester"].get("name"),
                "email": d["requester"]["email"],
            },
        },
    )


def on_message(event: RecordedEvent, uow: UnitOfWork) -> None:
    ticket_id = event.stream_id.removeprefix("ticket-")
    _entry(uow, event, ticket_id, event.data)
    _touch(uow, event, {})


def _entry(uow: UnitOfWork, event: RecordedEvent, ticket_id: str, d: dict[str, Any]) -> None:
    author = d["author"]
    uow.conn.execute(
        insert(thread_entries).values(
            entry_id=d["entry_id"],
            ticket_id=ticket_id,
            kind=d["kind"],
            author_kind=author["kind"],
            author_id=author.get("id"),
            author_name=author.get("name"),
            author_email=author.get("email"),
            body=d["body"],
            body_html=d.get("body_html"),
            attachments=d.get("attachments", []),
            created_at=event.time,
        )
    )


def _touch(uow: UnitOfWork, event: RecordedEvent, values: dict[str, Any]) -> None:
    uow.conn.execute(
        update(tickets)
        .where(tickets.c.stream_id == event.stream_id)
        .values(version=event.version, updated_at=event.time, **values)
    )


def _setter(
    fields: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[RecordedEvent, UnitOfWork], None]:
    return lambda event, uow: _touch(uow, event, fields(event.data))


def _listed(
    column: str, change: Callable[[list[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]
) -> Callable[[RecordedEvent, UnitOfWork], None]:
    """A change to one of the ticket's JSON lists (collaborators, links): read, change, write."""

    def project(event: RecordedEvent, uow: UnitOfWork) -> None:
        current = uow.conn.execute(
            select(tickets.c[column]).where(tickets.c.stream_id == event.stream_id)
        ).scalar_one_or_none()
        _touch(uow, event, {column: change(list(current or []), event.data)})

    return project


def _collaborator(entries: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    """CollaboratorAdded is an upsert by email: added again, someone keeps their place."""
    entry = {"email": d["email"], "name": d.get("name"), "active": d.get("active", True)}
    key = d["email"].lower()
    if any(e["email"].lower() == key for e in entries):
        return [entry if e["email"].lower() == key else e for e in entries]
    return [*entries, entry]


def _without_collaborator(entries: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in entries if e["email"].lower() != d["email"].lower()]


def _link(entries: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    return [*_unlink(entries, d), {"number": d["number"]}]


def _unlink(entries: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in entries if e["number"] != d["number"]]


def _merged(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "merged_into": d["into_number"],
        "merge_mode": d.get("mode", "combine"),
        "deleted": d.get("deleted", False),
    }


def _due(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "sla_plan_id": d.get("sla_plan_id"),
        "due_at": datetime.fromisoformat(d["due_at"]),
        "overdue": False,
    }


def _name(thing: str) -> Callable[[RecordedEvent, UnitOfWork], None]:
    def project(event: RecordedEvent, uow: UnitOfWork) -> None:
        upsert(
            uow.conn,
            query_names,
            {"thing": thing, "id": event.data["id"], "name": event.data["name"]},
            ["thing", "id"],
        )

    return project


def subscription() -> Subscription:
    return Subscription(
        "query",
        {
            "TicketCreated": on_created,
            "MessageAppended": on_message,
            "TicketRouted": _setter(
                lambda d: {
                    "department_id": d["department_id"],
                    "help_topic_id": d.get("help_topic_id"),
                    "priority": d["priority"],
                }
            ),
            "TicketAssigned": _setter(
                lambda d: {"agent_id": d.get("agent_id"), "team_id": d.get("team_id")}
            ),
            "AssignmentReleased": _setter(
                lambda d: {
                    **({"agent_id": None} if d.get("agent", True) else {}),
                    **({"team_id": None} if d.get("team", True) else {}),
                }
            ),
            "TicketTransferred": _setter(lambda d: {"department_id": d["department_id"]}),
            "TicketStatusChanged": _setter(
                lambda d: {"status": d["status"], "state": state_of(d["status"], d.get("state"))}
            ),
            "TicketPriorityChanged": _setter(lambda d: {"priority": d["priority"]}),
            "SlaApplied": _setter(_due),
            "TicketOverdue": _setter(lambda d: {"overdue": True}),
            # Out of every queue: its state is closed, as the analysts' counts expect.
            "TicketRejected": _setter(
                lambda d: {"rejected": True, "status": "rejected", "state": "closed"}
            ),
            "TicketFieldUpdated": _setter(lambda d: {}),
            "CollaboratorAdded": _listed("collaborators", _collaborator),
            "CollaboratorRemoved": _listed("collaborators", _without_collaborator),
            # The child records the merge; the parent's thread reads its children's entries.
            "TicketMerged": _setter(_merged),
            "ChildTicketsMerged": _setter(lambda d: {}),
            "TicketLinked": _listed("links", _link),
            "TicketUnlinked": _listed("links", _unlink),
            "DepartmentDefined": _name("department"),
            "HelpTopicDefined": _name("help-topic"),
            "SlaPlanDefined": _name("sla-plan"),
            "AgentDefined": _name("agent"),
            "TeamDefined": _name("team"),
        },
    )
