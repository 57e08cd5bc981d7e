"""Agent commands on a ticket: check the role, load its stream, check access and references,
decide, append.

The append names the version the agent saw; a stale version appends nothing and answers 409
with the newest events the agent has not seen yet (at most CONFLICT_EVENTS, and how many there
are in all). Merge and link also append to the other tickets
named, at the versions read in the same transaction, so all of it commits or none.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from libs.events.envelope import NewEvent
from libs.events.errors import ConcurrencyError
from libs.events.store import Append, EventStore
from libs.platform.access import Agent
from libs.platform.configuration import definitions
from libs.platform.database import reading
from libs.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.intake.domain import tickets
from services.intake.domain.tickets import TicketState
from services.intake.handlers import find_ticket, load_ticket

Command = (
    tickets.Assign
    | tickets.Release
    | tickets.Transfer
    | tickets.ChangeStatus
    | tickets.ChangePriority
    | tickets.UpdateField
    | tickets.Reply
    | tickets.AddNote
    | tickets.ChangeCollaborators
    | tickets.Merge
    | tickets.ChangeLinks
)
# The role permission (libs.events.types.config.PERMISSIONS) a command needs, and what it allows.
PERMISSIONS: dict[type, tuple[str, str]] = {
    tickets.Assign: ("ticket.assign", "assign tickets"),
    tickets.Release: ("ticket.release", "release assignments"),
    tickets.Transfer: ("ticket.transfer", "transfer tickets"),
    tickets.Merge: ("ticket.merge", "merge tickets"),
    tickets.ChangeLinks: ("ticket.link", "link tickets"),
}


def handle(
    store: EventStore,
    *,
    number: str,
    agent: Agent,
    command: Command,
    expected_version: int,
    metadata: dict[str, Any],
) -> int:
    """Apply `command` to ticket `number` as `agent`; returns the stream's new version."""
    _check_role(agent, command)
    try:
        with store.transaction() as conn:
            if isinstance(command, tickets.Merge | tickets.ChangeLinks):
                # The other tickets' versions are read now and appended at: nothing in between.
                store.lock_appends(conn)
            stream_id, state = _load(conn, store, number, agent)
            if state.version != expected_version:
                raise ConcurrencyError(stream_id, expected_version, state.version)
            if isinstance(command, tickets.Merge | tickets.ChangeLinks):
                appends = _decide_many(conn, store, agent, (stream_id, state), command)
            else:
                new_events = _decide(conn, store, agent, state, command)
                appends = [Append(stream_id, new_events, expected_version)]
            appends = [
                replace(a, events=[replace(e, metadata=dict(metadata)) for e in a.events])
                for a in appends
            ]
            recorded = store.append_many(appends, conn=conn)
            return max(e.version for e in recorded if e.stream_id == stream_id)
    except ConcurrencyError as exc:
        raise _stale(store, exc) from None


def _check_role(agent: Agent, command: Command) -> None:
    needed = PERMISSIONS.get(type(command))
    if needed is not None and not agent.may(needed[0]):
        permission, allows = needed
        raise Forbidden(
            f"your role may not {allows}: it lacks the {permission} permission",
            permission=permission,
        )


Loaded = tuple[str, TicketState]  # (stream id, state)


def _load(
    conn: Connection, store: EventStore, number: str, agent: Agent, field: str | None = None
) -> Loaded:
    stream_id = find_ticket(conn, number)
    state = load_ticket(conn, store, stream_id) if stream_id is not None else TicketState()
    # Another department's ticket is reported as missing, as the query service does.
    if stream_id is None or not state.exists or not agent.can_see_department(state.department_id):
        raise NotFound(f"ticket {number} not found", **({"field": field} if field else {}))
    return stream_id, state


def _decide_many(
    conn: Connection,
    store: EventStore,
    agent: Agent,
    ticket: Loaded,
    command: tickets.Merge | tickets.ChangeLinks,
) -> list[Append]:
    """Merge or link: this ticket's events and the other named tickets', one append each."""
    by = tickets.Actor(agent.id, agent.name, agent.email)
    _, state = ticket
    named = (
        {"tickets": command.tickets}
        if isinstance(command, tickets.Merge)
        else {"link": command.link, "unlink": command.unlink}
    )
    others = _load_named(conn, store, agent, state, named)
    states = {number: other for number, (_, other) in others.items()}
    decided = (
        tickets.merge(state, command, tickets=states, by=by)
        if isinstance(command, tickets.Merge)
        else tickets.change_links(state, command, tickets=states, by=by)
    )
    loaded = {**others, str(state.number): ticket}
    return [
        Append(loaded[number][0], new_events, loaded[number][1].version)
        for number, new_events in decided.items()
        if new_events
    ]


def _load_named(
    conn: Connection,
    store: EventStore,
    agent: Agent,
    state: TicketState,
    named: dict[str, tuple[str, ...]],
) -> dict[str, Loaded]:
    """Every other ticket named under each field; one the agent may not see is not found."""
    loaded: dict[str, Loaded] = {}
    for field, numbers in named.items():
        for index, number in enumerate(numbers):
            if number != state.number and number not in loaded:  # the domain refuses those
                loaded[number] = _load(conn, store, number, agent, f"{field}[{index}]")
    return loaded


def _decide(
    conn: Connection, store: EventStore, agent: Agent, state: TicketState, command: Command
) -> list[NewEvent]:
    by = tickets.Actor(agent.id, agent.name, agent.email)
    match command:
        case tickets.Assign():
            if command.agent_id is not None:
                _require(conn, store, "agent", command.agent_id, "agent_id")
            if command.team_id is not None:
                _require(conn, store, "team", command.team_id, "team_id")
            return tickets.assign(state, command, by=by)
        case tickets.Release():
            return tickets.release(state, command, by=by)
        case tickets.Transfer():
            _require(conn, store, "department", command.department_id, "department_id")
            if not agent.can_see_department(command.department_id):
                raise Forbidden(
                    f"you have no access to department {command.department_id}",
                    field="department_id",
                )
            return tickets.transfer(state, command, by=by)
        case tickets.ChangeStatus():
            custom = {} if command.status in tickets.BUILT_IN_STATUSES else _statuses(conn, store)
            return tickets.change_status(state, command, by=by, custom=custom)
        case tickets.ChangePriority():
            return tickets.change_priority(state, command, by=by)
        case tickets.UpdateField():
            if command.field == "help_topic" and _is_id(command.value):
                _require(conn, store, "help-topic", command.value, "value")
            return tickets.update_field(state, command, by=by)
        case tickets.Reply():
            return tickets.reply(state, command, by=by, entry_id=uuid.uuid4())
        case tickets.AddNote():
            return tickets.add_note(state, command, by=by, entry_id=uuid.uuid4())
        case tickets.ChangeCollaborators():
            return tickets.change_collaborators(state, command, by=by)
    raise TypeError(f"unknown ticket command {command!r}")


def _require(conn: Connection, store: EventStore, thing: str, thing_id: int, field: str) -> None:
    """The thing's latest definition must exist and be in use (active, not archived)."""
    found = definitions(conn, store, thing, thing_id)
    label = thing.replace("-", " ")
    if not found:
        raise ValidationFailed(f"unknown {label} {thing_id}", field=field)
    _, data = found[0]
    if data.get("status", "active") != "active" or not data.get("active", True):
        raise ValidationFailed(f"{label} {thing_id} is not active", field=field)


def _statuses(conn: Connection, store: EventStore) -> dict[str, tickets.TicketStatus]:
    """The admins' ticket statuses by name, inactive ones too (the decision says which)."""
    return {
        data["name"]: tickets.TicketStatus.from_definition(data)
        for _, data in definitions(conn, store, "ticket-status")
    }


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# The 409 lists at most this many of the events since: a ticket with thousands of events
# must not make every stale command read and send all of them.
CONFLICT_EVENTS = 50


def _stale(store: EventStore, exc: ConcurrencyError) -> Conflict:
    """409: the current version, how many events came after the one the caller expected, and
    the newest of them (a stream's versions are consecutive, so counting reads nothing)."""
    with reading(store.engine) as conn:
        current = store.stream_version(exc.stream_id, conn=conn)
        since = max(exc.expected, 0)
        newest = max(since, current - CONFLICT_EVENTS)
        missed = store.read_stream(exc.stream_id, newest, current, conn=conn)
    return Conflict(
        f"the ticket is at version {current}, not {exc.expected}: "
        "review the events since and retry with the current version",
        current_version=current,
        expected_version=exc.expected,
        events=[e.history_entry() for e in missed],
        events_total=max(current - since, 0),
    )
