"""Command handlers: load state, decide, append — the store commit is the acknowledgement."""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

from sqlalchemy import Connection, insert, select

from libs.events.store import EventStore
from services.intake.adapters.tables import attachments, idempotency_keys, ticket_numbers
from services.intake.domain import tickets
from services.intake.domain.numbers import candidate_number
from services.intake.domain.tickets import OpenTicket, TicketState

_rng = random.SystemRandom()


def open_ticket(
    store: EventStore,
    command: OpenTicket,
    *,
    idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Open a ticket; returns its number once the TicketCreated event has committed."""
    with store.transaction() as conn:
        store.lock_appends(conn)  # taken first: number allocation and append serialise together
        if idempotency_key:
            existing = conn.execute(
                select(idempotency_keys.c.ticket_number).where(
                    idempotency_keys.c.key == idempotency_key
                )
            ).scalar_one_or_none()
            if existing is not None:
                return str(existing)
        ticket_id = uuid.uuid4()
        number = _allocate_number(conn, ticket_id)
        stored = [_store_attachment(conn, ticket_id, a) for a in command.attachments]
        new_events = tickets.open_ticket(
            TicketState(),
            command,
            ticket_id=ticket_id,
            number=number,
            entry_id=uuid.uuid4(),
            attachments=stored,
        )
        new_events = [
            e.__class__(e.type, e.data, e.event_id, dict(metadata or {})) for e in new_events
        ]
        store.append(tickets.stream_id(ticket_id), new_events, 0, conn=conn)
        if idempotency_key:
            conn.execute(
                insert(idempotency_keys).values(
                    key=idempotency_key, ticket_number=number, created_at=store.clock.now()
                )
            )
        return number


def _allocate_number(conn: Connection, ticket_id: uuid.UUID) -> str:
    attempt = 0
    while True:
        number = candidate_number(_rng, attempt)
        taken = conn.execute(
            select(ticket_numbers.c.number).where(ticket_numbers.c.number == number)
        ).first()
        if taken is None:
            conn.execute(insert(ticket_numbers).values(number=number, ticket_id=str(ticket_id)))
            return number
        attempt += 1


def _store_attachment(
    conn: Connection, ticket_id: uuid.UUID, attachment: tickets.Attachment
) -> dict[str, Any]:
    attachment_id = str(uuid.uuid4())
    digest = hashlib.sha256(attachment.data).hexdigest()
    conn.execute(
        insert(attachments).values(
            id=attachment_id,
            ticket_id=str(ticket_id),
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=len(attachment.data),
            sha256=digest,
            data=attachment.data,
        )
    )
    return {
        "id": attachment_id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": len(attachment.data),
        "sha256": digest,
    }


def find_ticket(conn: Connection, number: str) -> str | None:
    """The ticket's stream id for a number, from intake's own table."""
    ticket_id = conn.execute(
        select(ticket_numbers.c.ticket_id).where(ticket_numbers.c.number == number)
    ).scalar_one_or_none()
    return f"ticket-{ticket_id}" if ticket_id else None
