"""Ticket decisions: `decide(state, command) -> events`, `evolve(state, event) -> state`.

No I/O and no clock: ids, numbers and time arrive as arguments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from libs.events.envelope import NewEvent
from libs.platform.errors import Conflict, ValidationFailed


@dataclass(frozen=True)
class Requester:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OpenTicket:
    subject: str
    body: str
    requester: Requester
    channel: str
    body_html: str | None = None
    phone: str | None = None
    help_topic_id: int | None = None
    priority: str | None = None
    autorespond: bool = True
    alert: bool = True
    source_ip: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class TicketState:
    """What intake needs to know about a ticket to decide the next command."""

    version: int = 0
    ticket_id: uuid.UUID | None = None
    number: str | None = None
    status: str = "open"

    @property
    def exists(self) -> bool:
        return self.version > 0


def stream_id(ticket_id: uuid.UUID) -> str:
    return f"ticket-{ticket_id}"


def open_ticket(
    state: TicketState,
    command: OpenTicket,
    *,
    ticket_id: uuid.UUID,
    number: str,
    entry_id: uuid.UUID,
    attachments: list[dict[str, Any]] | None = None,
) -> list[NewEvent]:
    if state.exists:
        raise Conflict("ticket already exists", number=state.number)
    if not command.subject.strip():
        raise ValidationFailed("subject is required", field="subject")
    if not command.body.strip() and not command.body_html:
        raise ValidationFailed("message is required", field="message")
    data = {
        "ticket_id": str(ticket_id),
        "number": number,
        "subject": command.subject.strip()[:255],
        "channel": command.channel,
        "requester": {"email": command.requester.email, "name": command.requester.name},
        "phone": command.phone,
        "entry_id": str(entry_id),
        "body": command.body,
        "body_html": command.body_html,
        "attachments": attachments or [],
        "help_topic_id": command.help_topic_id,
        "priority": command.priority,
        "autorespond": command.autorespond,
        "alert": command.alert,
        "source_ip": command.source_ip,
        "fields": command.fields,
    }
    return [NewEvent("TicketCreated", data)]


def evolve(state: TicketState, event_type: str, data: dict[str, Any], version: int) -> TicketState:
    if event_type == "TicketCreated":
        return TicketState(version, uuid.UUID(data["ticket_id"]), data["number"], "open")
    if event_type == "TicketStatusChanged":
        return replace(state, version=version, status=data["status"])
    return replace(state, version=version)
