"""CloudEvents from external systems (`POST /api/v1/events`, the `deskstream.inbound.v1` topic)
become a ticket or a message through the admin's event mappings.

One transaction per event: the idempotency record (keyed by source + id, in intake's
`idempotency_keys`), the correlation row and the appended events commit together, so a
redelivered event — or a retry after a crash — has one effect.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from libs.events.errors import ConcurrencyError
from libs.events.store import EventStore
from libs.platform.configuration import definitions
from libs.platform.database import reading
from services.intake.adapters.tables import event_correlations, idempotency_keys
from services.intake.domain import cloudevents
from services.intake.domain.cloudevents import CloudEvent, EventMapping, EventRefused, Rendered
from services.intake.domain.mail.rules import Placement
from services.intake.domain.tickets import stream_id
from services.intake.handlers import (
    RetryWon,
    allocate_number,
    claim_idempotency_key,
    create_ticket,
    find_ticket,
    follow_merges,
)

log = logging.getLogger(__name__)
ATTEMPTS = 3


@dataclass(frozen=True)
class Received:
    ticket: str  # the ticket's number
    action: str  # open_ticket | append_message: what the event did (the first time)
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "action": self.action, "duplicate": self.duplicate}


def idempotency_key(event: CloudEvent) -> str:
    """CloudEvents are unique by (source, id); the digest keeps the key short."""
    digest = hashlib.sha256(f"{event.source}\0{event.id}".encode()).hexdigest()
    return f"cloudevent:{digest}"


def receive_cloudevent(
    store: EventStore,
    event: CloudEvent,
    *,
    max_open_tickets: int,
    metadata: dict[str, Any] | None = None,
) -> Received:
    """Apply the event's mapping; the same (source, id) again answers the first ticket.

    Raises EventRefused (422) when no mapping matches or what it renders is unusable, and
    admission.TicketRefused when the ticket it would open is refused; then nothing is written,
    and the same event may be sent again once the cause is fixed.
    """
    metadata = {**(metadata or {}), "cloudevent_source": event.source, "cloudevent_id": event.id}
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _receive(store, event, metadata, max_open_tickets)
        except (ConcurrencyError, _CorrelationMoved):
            # The correlated ticket changed (or another event took the correlation) between
            # our read and our write; nothing was written, so read again and redo.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _receive(
    store: EventStore, event: CloudEvent, metadata: dict[str, Any], max_open_tickets: int
) -> Received:
    key = idempotency_key(event)
    try:
        with store.transaction() as conn:
            earlier = claim_idempotency_key(conn, store, key)
            if earlier is not None:
                return _duplicate(conn, store, event, earlier)
            mapping = cloudevents.choose_mapping(mappings(conn, store), event)
            rendered = cloudevents.render(mapping, event)
            received = _apply(conn, store, rendered, metadata, max_open_tickets)
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == key)
                .values(ticket_number=received.ticket)
            )
            return received
    except RetryWon as won:
        with reading(store.engine) as conn:
            return _duplicate(conn, store, event, won.number)


def mappings(conn: Connection, store: EventStore) -> list[EventMapping]:
    found = []
    for _, data in definitions(conn, store, "event-mapping"):
        try:
            found.append(EventMapping.from_definition(data))
        except cloudevents.InvalidMapping as exc:  # checked when defined; never silently used
            log.warning("event mapping %s is unusable and skipped: %s", data.get("id"), exc)
    return found


class _CorrelationMoved(Exception):
    """Another event pointed the correlation at a ticket meanwhile."""


def _apply(
    conn: Connection,
    store: EventStore,
    rendered: Rendered,
    metadata: dict[str, Any],
    max_open_tickets: int,
) -> Received:
    correlation = rendered.correlation
    pointed = _correlated_ticket(conn, correlation) if correlation is not None else None
    state = None
    if pointed is not None:
        # Read the ticket under the append lock the append takes anyway: events of one alert
        # arriving together then queue instead of failing on each other's stream version.
        store.lock_appends(conn)
        where, state = follow_merges(conn, store, stream_id(uuid.UUID(pointed)))
        place = cloudevents.placement(
            state,
            department_status=_status(conn, store, "department", state.department_id),
            help_topic_status=_status(conn, store, "help-topic", state.help_topic_id),
        )
        if place is not Placement.NEW_TICKET:
            new_events = cloudevents.append_message(
                state, rendered, entry_id=uuid.uuid4(), reopen=place is Placement.REOPEN
            )
            new_events = [replace(e, metadata=dict(metadata)) for e in new_events]
            store.append(where, new_events, state.version, conn=conn)
            assert state.number is not None
            return Received(state.number, "append_message")
    if rendered.ticket is None:  # an append_message mapping opens nothing
        mapping = rendered.mapping
        why = f"ticket {state.number} takes no more messages" if state else "no ticket has it yet"
        raise EventRefused(
            f"event mapping {mapping.id} ({mapping.name}) appends to the ticket correlated by "
            f"{correlation!r}, but {why}",
            mapping_id=mapping.id,
            field="correlation",
        )
    ticket_id = uuid.uuid4()
    if correlation is not None:  # before the number and the append, as keys go in open_ticket
        _point(conn, store, correlation, ticket_id, replacing=pointed)
    number = allocate_number(conn, ticket_id)
    create_ticket(
        conn,
        store,
        rendered.ticket,
        ticket_id=ticket_id,
        number=number,
        max_open_tickets=max_open_tickets,
        metadata=metadata,
    )
    return Received(number, "open_ticket")


def _correlated_ticket(conn: Connection, correlation: str) -> str | None:
    return conn.execute(
        select(event_correlations.c.ticket_id).where(
            event_correlations.c.digest == _digest(correlation)
        )
    ).scalar_one_or_none()


def _point(
    conn: Connection,
    store: EventStore,
    correlation: str,
    ticket_id: uuid.UUID,
    *,
    replacing: str | None,
) -> None:
    """Point the correlation at a new ticket. The row's key keeps it single: a concurrent event
    with the same new value waits here for the other's commit, then reads its ticket again."""
    values = {"ticket_id": str(ticket_id), "updated_at": store.clock.now()}
    digest = _digest(correlation)
    if replacing is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(event_correlations).values(
                        digest=digest, correlation=correlation, **values
                    )
                )
        except IntegrityError:
            raise _CorrelationMoved from None
        return
    moved = conn.execute(
        update(event_correlations)
        .where(event_correlations.c.digest == digest, event_correlations.c.ticket_id == replacing)
        .values(**values)
    )
    if moved.rowcount != 1:
        raise _CorrelationMoved


def _status(conn: Connection, store: EventStore, thing: str, thing_id: int | None) -> str | None:
    found = definitions(conn, store, thing, thing_id) if thing_id is not None else []
    return str(found[0][1].get("status", "active")) if found else None


def _duplicate(conn: Connection, store: EventStore, event: CloudEvent, number: str) -> Received:
    """The first delivery's answer: it opened the ticket if the ticket's first event says so."""
    where = find_ticket(conn, number)
    first = store.read_stream(where, 0, 1, conn=conn) if where else []
    opened = bool(first) and (
        first[0].metadata.get("cloudevent_source"),
        first[0].metadata.get("cloudevent_id"),
    ) == (event.source, event.id)
    return Received(number, "open_ticket" if opened else "append_message", duplicate=True)


def _digest(correlation: str) -> str:
    return hashlib.sha256(correlation.encode()).hexdigest()
