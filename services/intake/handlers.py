"""Command handlers: load state, decide, append — the store commit is the acknowledgement."""

from __future__ import annotations

import hashlib
import logging
import random
import uuid
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from libs.events.envelope import NewEvent
from libs.events.store import EventStore
from libs.platform.configuration import definitions
from libs.platform.database import insert_if_absent, reading
from services.intake.adapters.tables import (
    attachments,
    idempotency_keys,
    requester_tickets,
    ticket_numbers,
)
from services.intake.domain import admission, tickets
from services.intake.domain.numbers import candidate_number
from services.intake.domain.tickets import OpenTicket, TicketState
from services.routing.domain.filters import Filter

log = logging.getLogger(__name__)
_rng = random.SystemRandom()


def open_ticket(
    store: EventStore,
    command: OpenTicket,
    *,
    max_open_tickets: int,
    idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Open a ticket; returns its number once the TicketCreated event has committed. Raises
    admission.TicketRefused (nothing written) when the desk's rules refuse it.

    Everything that can happen before the append does (the append holds the store's global
    lock until commit). Unique keys, not locks, keep numbers and idempotency keys single.
    """
    try:
        with store.transaction() as conn:
            if idempotency_key:
                existing = claim_idempotency_key(conn, store, idempotency_key)
                if existing is not None:
                    return existing
            ticket_id = uuid.uuid4()
            number = allocate_number(conn, ticket_id)
            if idempotency_key:
                conn.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.key == idempotency_key)
                    .values(ticket_number=number)
                )
            create_ticket(
                conn,
                store,
                command,
                ticket_id=ticket_id,
                number=number,
                max_open_tickets=max_open_tickets,
                metadata=metadata,
            )
            return number
    except RetryWon as won:
        return won.number


def create_ticket(
    conn: Connection,
    store: EventStore,
    command: OpenTicket,
    *,
    ticket_id: uuid.UUID,
    number: str,
    max_open_tickets: int,
    metadata: dict[str, Any] | None = None,
    followed_by: list[NewEvent] | None = None,
) -> uuid.UUID:
    """Check the desk's rules, store the attachments and append TicketCreated (then
    `followed_by`) inside `conn`'s transaction; returns the first thread entry's id. Every
    channel opens tickets here, so every channel is held to the same rules: a refusal raises
    admission.TicketRefused before anything is written."""
    entry_id = uuid.uuid4()
    [created] = tickets.open_ticket(
        TicketState(), command, ticket_id=ticket_id, number=number, entry_id=entry_id
    )
    requester = command.requester.email
    try:
        admission.admit(
            admission_policy(conn, store, max_open_tickets),
            created.data,
            open_tickets=lambda: count_open_tickets(conn, store, requester),
        )
    except admission.TicketRefused as refused:
        log.warning(
            "ticket refused (%s) via %s: %s", refused.reason, command.channel, refused.detail
        )
        raise
    stored = [store_attachment(conn, ticket_id, a) for a in command.attachments]
    created = replace(created, data={**created.data, "attachments": stored})
    new_events = [
        replace(e, metadata=dict(metadata or {})) for e in (created, *(followed_by or []))
    ]
    store.append(tickets.stream_id(ticket_id), new_events, 0, conn=conn)
    conn.execute(
        insert(requester_tickets).values(email=requester.lower(), ticket_id=str(ticket_id))
    )
    return entry_id


def admission_policy(
    conn: Connection, store: EventStore, max_open_tickets: int
) -> admission.Policy:
    """The rules as configured now: the active ban list and the filters."""
    filters = tuple(_compiled(data) for _, data in definitions(conn, store, "filter"))
    return admission.Policy(ban_list(conn, store), filters, max_open_tickets)


def ban_list(conn: Connection, store: EventStore) -> tuple[str, ...]:
    banned = definitions(conn, store, "banned-email")
    return tuple(b["email"] for _, b in banned if b.get("active", True))


# Compiled filters by their definition: compiling every filter for every ticket is wasted work.
# Keyed by content, not id and version, which another database may give another definition.
_filters: dict[bytes, Filter] = {}


def _compiled(data: dict[str, Any]) -> Filter:
    key = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    found = _filters.get(key)
    if found is None:
        if len(_filters) > 1_000:  # old definitions are never asked for again
            _filters.clear()
        # Validated when defined (config_rules); one that no longer compiles is a bug, loudly.
        found = _filters[key] = Filter.from_definition(data)
    return found


def count_open_tickets(conn: Connection, store: EventStore, email: str) -> int:
    """How many of the requester's tickets are open (a rejected one is not)."""
    ticket_ids = conn.execute(
        select(requester_tickets.c.ticket_id).where(requester_tickets.c.email == email.lower())
    ).scalars()
    count = 0
    for ticket_id in ticket_ids:
        state = load_ticket(conn, store, f"ticket-{ticket_id}")
        count += state.exists and not state.rejected and state.state == tickets.OPEN
    return count


class RetryWon(Exception):
    """A concurrent request with the same Idempotency-Key committed first."""

    def __init__(self, number: str) -> None:
        self.number = number


def claim_idempotency_key(conn: Connection, store: EventStore, key: str) -> str | None:
    """The number of an earlier ticket with this key, or None once this request owns the key."""
    existing = conn.execute(
        select(idempotency_keys.c.ticket_number).where(idempotency_keys.c.key == key)
    ).scalar_one_or_none()
    if existing is not None:
        return str(existing)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(idempotency_keys).values(
                    key=key, ticket_number="", created_at=store.clock.now()
                )
            )
    except IntegrityError:
        # The other request held the key until it committed; its ticket is the answer.
        with reading(store.engine) as other:
            number = other.execute(
                select(idempotency_keys.c.ticket_number).where(idempotency_keys.c.key == key)
            ).scalar_one()
        raise RetryWon(str(number)) from None
    return None


def allocate_number(conn: Connection, ticket_id: uuid.UUID) -> str:
    for attempt in range(100):
        number = candidate_number(_rng, attempt)
        values = {"number": number, "ticket_id": str(ticket_id)}
        if insert_if_absent(conn, ticket_numbers, values, ["number"]):
            return number
    raise RuntimeError("no free ticket number after 100 attempts")


def store_attachment(
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
        "content_id": attachment.content_id,
        "inline": attachment.inline,
    }


# A merge chain longer than this is a data error; following stops there.
MAX_MERGE_HOPS = 10


def load_ticket(conn: Connection, store: EventStore, stream: str) -> TicketState:
    """A ticket's state from its stream (an empty state if the stream does not exist)."""
    state = TicketState()
    for event in store.read_stream(stream, conn=conn):
        state = tickets.evolve(state, event.type, event.data, event.version)
    return state


def follow_merges(conn: Connection, store: EventStore, stream: str) -> tuple[str, TicketState]:
    """The ticket's stream and state, or once merged, its parent's: mail and events sent to a
    merged ticket belong to the ticket it was merged into."""
    state = load_ticket(conn, store, stream)
    for _ in range(MAX_MERGE_HOPS):
        parent = find_ticket(conn, state.merged_into) if state.merged_into else None
        if parent is None:
            break
        stream, state = parent, load_ticket(conn, store, parent)
    return stream, state


def find_ticket(conn: Connection, number: str) -> str | None:
    """The ticket's stream id for a number, from intake's own table."""
    ticket_id = conn.execute(
        select(ticket_numbers.c.ticket_id).where(ticket_numbers.c.number == number)
    ).scalar_one_or_none()
    return f"ticket-{ticket_id}" if ticket_id else None
