"""Outgoing messages, composed without I/O. Every header built from data goes through
domain/headers.py (plain text, encoded on output, never re-parsed) and the SMTP envelope is the
validated addresses themselves, never read back from the headers (RELIABILITY.md S5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from libs.platform.message_ids import signed_message_id
from services.notify.domain.headers import (
    header_text,
    identifier,
    mailbox,
    safe_address,
    unstructured,
)

NAMESPACE = uuid.UUID("6d1c3a52-3f0e-4c55-9b1a-4f1a2d6c7e01")


@dataclass(frozen=True)
class TicketSummary:
    number: str
    subject: str
    requester_email: str
    requester_name: str | None


@dataclass(frozen=True)
class Outgoing:
    """A message and its envelope: MAIL FROM `sender`, RCPT TO exactly `recipients`."""

    message: EmailMessage
    sender: str
    recipients: tuple[str, ...]


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


def _automatic_reply(
    sender: tuple[str | None, str],
    recipient: tuple[str | None, str],
    subject: str,
    msg_id: str,
    sent_at: datetime,
) -> Outgoing:
    """The headers every automatic answer carries, each from headers.py; an address that is
    not one plain addr-spec raises UnsafeAddress before anything is built."""
    from_address, to_address = safe_address(sender[1]), safe_address(recipient[1])
    message = EmailMessage()
    message["From"] = mailbox("From", sender[0], from_address)
    message["To"] = mailbox("To", recipient[0], to_address)
    message["Subject"] = unstructured("Subject", subject)
    message["Message-ID"] = identifier("Message-ID", msg_id)
    message["Date"] = format_datetime(sent_at)
    # RFC 3834: an autoresponse must say so, so other robots never answer it (mail loops).
    message["Auto-Submitted"] = "auto-replied"
    return Outgoing(message, from_address, (to_address,))


def new_ticket_autoresponse(
    ticket: TicketSummary,
    *,
    helpdesk_email: str,
    helpdesk_name: str,
    msg_id: str,
    sent_at: datetime,
) -> Outgoing:
    outgoing = _automatic_reply(
        (helpdesk_name, helpdesk_email),
        (ticket.requester_name, ticket.requester_email),
        f"[#{ticket.number}] {header_text(ticket.subject)}",
        msg_id,
        sent_at,
    )
    outgoing.message["X-Deskstream-Ticket"] = unstructured("X-Deskstream-Ticket", ticket.number)
    name = header_text(ticket.requester_name) or "there"
    outgoing.message.set_content(
        f"Dear {name},\n\n"
        f"We received your request and opened ticket #{header_text(ticket.number)}:\n\n"
        f"    {header_text(ticket.subject)}\n\n"
        "An agent will get back to you as soon as possible. Reply to this email to add\n"
        "information to the ticket; keep the ticket number in the subject.\n\n"
        f"{header_text(helpdesk_name)}\n"
    )
    return outgoing


def over_limit_notice(
    recipient: str,
    name: str | None,
    subject: str,
    *,
    helpdesk_email: str,
    helpdesk_name: str,
    msg_id: str,
    sent_at: datetime,
) -> Outgoing:
    outgoing = _automatic_reply(
        (helpdesk_name, helpdesk_email),
        (name, recipient),
        f"Open ticket limit reached: {header_text(subject)}",
        msg_id,
        sent_at,
    )
    outgoing.message.set_content(
        f"Dear {header_text(name) or 'there'},\n\n"
        "You have reached the maximum number of open tickets, so your message\n\n"
        f"    {header_text(subject)}\n\n"
        "did not open a new one. Reply to one of your open tickets, or write again once an\n"
        "agent has closed one of them.\n\n"
        f"{header_text(helpdesk_name)}\n"
    )
    return outgoing
