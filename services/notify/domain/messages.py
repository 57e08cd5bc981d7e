"""Outgoing messages, composed without I/O. Header values are stripped of CR/LF first, so no
ticket field can inject a header or a recipient."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from libs.platform.message_ids import signed_message_id

NAMESPACE = uuid.UUID("6d1c3a52-3f0e-4c55-9b1a-4f1a2d6c7e01")


@dataclass(frozen=True)
class TicketSummary:
    number: str
    subject: str
    requester_email: str
    requester_name: str | None


def message_id(
    cause_event_id: str,
    recipient: str,
    template: str,
    domain: str,
    *,
    ticket_id: uuid.UUID | None,
    secret: str,
) -> str:
    """Deterministic: a resend after a crash carries the same Message-ID (receivers dedupe).
    Signed with the ticket, so a reply threads back into it (libs.platform.message_ids)."""
    token = uuid.uuid5(NAMESPACE, f"{cause_event_id}|{recipient.lower()}|{template}")
    if ticket_id is None:
        return f"<{token}@{domain}>"
    return signed_message_id(ticket_id, token.hex, domain, secret)


def clean_header(value: str | None) -> str:
    return " ".join((value or "").replace("\r", " ").replace("\n", " ").split())


def _automatic_reply(
    sender: tuple[str | None, str],
    recipient: tuple[str | None, str],
    subject: str,
    msg_id: str,
    sent_at: datetime,
) -> EmailMessage:
    """The headers every automatic answer carries; names and addresses lose CR/LF first."""
    message = EmailMessage()
    message["From"] = Address(clean_header(sender[0]), addr_spec=clean_header(sender[1]))
    message["To"] = Address(clean_header(recipient[0]), addr_spec=clean_header(recipient[1]))
    message["Subject"] = subject
    message["Message-ID"] = msg_id
    message["Date"] = format_datetime(sent_at)
    # RFC 3834: an autoresponse must say so, so other robots never answer it (mail loops).
    message["Auto-Submitted"] = "auto-replied"
    return message


def new_ticket_autoresponse(
    ticket: TicketSummary,
    *,
    helpdesk_email: str,
    helpdesk_name: str,
    msg_id: str,
    sent_at: datetime,
) -> EmailMessage:
    message = _automatic_reply(
        (helpdesk_name, helpdesk_email),
        (ticket.requester_name, ticket.requester_email),
        f"[#{ticket.number}] {clean_header(ticket.subject)}",
        msg_id,
        sent_at,
    )
    message["X-Deskstream-Ticket"] = ticket.number
    name = clean_header(ticket.requester_name) or "there"
    message.set_content(
        f"Dear {name},\n\n"
        f"We received your request and opened ticket #{ticket.number}:\n\n"
        f"    {clean_header(ticket.subject)}\n\n"
        "An agent will get back to you as soon as possible. Reply to this email to add\n"
        "information to the ticket; keep the ticket number in the subject.\n\n"
        f"{clean_header(helpdesk_name)}\n"
    )
    return message


def over_limit_notice(
    recipient: str,
    name: str | None,
    subject: str,
    *,
    helpdesk_email: str,
    helpdesk_name: str,
    msg_id: str,
    sent_at: datetime,
) -> EmailMessage:
    message = _automatic_reply(
        (helpdesk_name, helpdesk_email),
        (name, recipient),
        f"Open ticket limit reached: {clean_header(subject)}",
        msg_id,
        sent_at,
    )
    message.set_content(
        f"Dear {clean_header(name) or 'there'},\n\n"
        "You have reached the maximum number of open tickets, so your message\n\n"
        f"    {clean_header(subject)}\n\n"
        "did not open a new one. Reply to one of your open tickets, or write again once an\n"
        "agent has closed one of them.\n\n"
        f"{clean_header(helpdesk_name)}\n"
    )
    return message
