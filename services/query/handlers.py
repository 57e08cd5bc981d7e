"""query's subscription: every ticket event folds into the tickets / thread_entries tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, update

from libs.events.envelope import RecordedEvent
from libs.events.subscription import Subscription, UnitOfWork
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
            "TicketStatusChanged": _setter(lambda d: {"status": d["status"]}),
            "TicketPriorityChanged": _setter(lambda d: {"priority": d["priority"]}),
            "SlaApplied": _setter(_due),
            "TicketOverdue": _setter(lambda d: {"overdue": True}),
            "TicketRejected": _setter(lambda d: {"rejected": True, "status": "rejected"}),
            "TicketFieldUpdated": _setter(lambda d: {}),
            "CollaboratorAdded": _setter(lambda d: {}),
            "CollaboratorRemoved": _setter(lambda d: {}),
            "TicketMerged": _setter(lambda d: {}),
            "TicketLinked": _setter(lambda d: {}),
            "DepartmentDefined": _name("department"),
            "HelpTopicDefined": _name("help-topic"),
            "SlaPlanDefined": _name("sla-plan"),
            "AgentDefined": _name("agent"),
            "TeamDefined": _name("team"),
        },
    )
