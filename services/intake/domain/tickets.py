"""Ticket decisions: `decide(state, command) -> events`, `evolve(state, event) -> state`.

No I/O and no clock: ids, numbers and time arrive as arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from libs.events.envelope import NewEvent
from libs.events.types.fields import PRIORITIES, state_of
from libs.events.types.tickets import MERGE_MODES
from libs.platform.errors import Conflict, NotFound, ValidationFailed


@dataclass(frozen=True)
class Requester:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    # An email's inline image keeps its Content-ID (no angle brackets), so the body's
    # `<img src="cid:...">` can be matched to it when the thread is shown.
    content_id: str | None = None
    inline: bool = False


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
    email: EmailFacts | None = None


@dataclass(frozen=True)
class EmailFacts:
    """What a ticket opened by email carries besides its message (filters read these)."""

    message_id: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    department_id: int | None = None  # the receiving address's department
    previous_ticket: str | None = None  # a reply to a ticket that could not reopen


@dataclass(frozen=True)
class Collaborator:
    """Someone on the ticket's thread besides the requester; a disabled one is sent no mail."""

    email: str
    name: str | None = None
    active: bool = True


@dataclass(frozen=True)
class TicketState:
    """What intake needs to know about a ticket to decide the next command."""

    version: int = 0
    ticket_id: uuid.UUID | None = None
    number: str | None = None
    status: str = "open"
    # The status's state (open, closed, archived, deleted), and whether the ticket can reopen
    # (a closed state whose status allows it): what the reopen rules read, never the name.
    # Left out, both are the built-in status's (see __post_init__).
    state: str | None = None
    reopenable: bool | None = None
    # Routing's choices (TicketRouted), then the agents' changes.
    department_id: int | None = None
    help_topic_id: int | None = None
    priority: str | None = None
    agent_id: int | None = None
    team_id: int | None = None
    rejected: bool = False
    # Who the ticket's mail goes to: the requester and the active collaborators (lower-case).
    requester_email: str | None = None
    collaborators: frozenset[str] = frozenset()
    merged_into: str | None = None  # the parent ticket's number, once merged
    # Every collaborator, disabled ones too, in the order added (emails lower-case).
    all_collaborators: tuple[Collaborator, ...] = ()
    links: frozenset[str] = frozenset()  # the linked tickets' numbers
    children: frozenset[str] = frozenset()  # the numbers of the tickets merged into this one

    def __post_init__(self) -> None:
        state = state_of(self.status, self.state)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "reopenable", can_reopen(state, self.reopenable))

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def assigned(self) -> bool:
        return self.agent_id is not None or self.team_id is not None


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
    data: dict[str, Any] = {
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
    if command.email is not None:
        facts = command.email
        data |= {
            "message_id": facts.message_id,
            "to": list(facts.to),
            "cc": list(facts.cc),
            "reply_to": facts.reply_to,
            "headers": facts.headers,
            "department_id": facts.department_id,
            "previous_ticket": facts.previous_ticket,
        }
    return [NewEvent("TicketCreated", data)]


# -- agent commands ----------------------------------------------------------------------------

OPEN, CLOSED = "open", "closed"
AGENT_STATUSES = ("open", "resolved", "closed", "archived")  # built in; admins define more
CLOSED_STATUSES = ("resolved", "closed")  # the built-in closed ones a merge closes children with
EDITABLE_FIELDS = ("help_topic", "subject")
REPLY_TO = ("requester", "all", "none")


def can_reopen(state: str, reopenable: bool | None = None) -> bool:
    """Whether a ticket in a status of `state` reopens on a reply, an assignment or a transfer:
    only a closed one, and only if its status allows it (osTicket's "allow reopen"; a status
    change that does not say, from before custom statuses, did). Archived ones never do."""
    return state == CLOSED and reopenable is not False


@dataclass(frozen=True)
class TicketStatus:
    """A status agents may set: built in, or an admin's (TicketStatusDefined)."""

    name: str
    state: str
    reopenable: bool = True  # for a closed state: whether the ticket may reopen
    active: bool = True

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> TicketStatus:
        return cls(
            data["name"], data["state"], data.get("reopenable", True), data.get("active", True)
        )


BUILT_IN_STATUSES = {name: TicketStatus(name, state_of(name)) for name in AGENT_STATUSES}


@dataclass(frozen=True)
class Actor:
    """Who gives a command: an agent (the `by` / `author` of the events)."""

    id: int
    name: str | None = None
    email: str | None = None

    def as_author(self) -> dict[str, Any]:
        return {"kind": "agent", "id": self.id, "name": self.name, "email": self.email}


@dataclass(frozen=True)
class Assign:
    agent_id: int | None = None
    team_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Release:
    """None for both means "whatever is assigned"."""

    agent: bool | None = None
    team: bool | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Transfer:
    department_id: int
    reason: str | None = None


@dataclass(frozen=True)
class ChangeStatus:
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class ChangePriority:
    priority: str


@dataclass(frozen=True)
class UpdateField:
    field: str
    value: Any
    reason: str | None = None


@dataclass(frozen=True)
class Reply:
    body: str
    body_html: str | None = None
    reply_to: str = "all"


@dataclass(frozen=True)
class AddNote:
    body: str
    body_html: str | None = None


@dataclass(frozen=True)
class ChangeCollaborators:
    """Add people to the thread, remove them, or disable (enable) their mail while they stay."""

    add: tuple[Collaborator, ...] = ()
    remove: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Merge:
    """Merge `tickets` (the children) into this ticket (the parent)."""

    tickets: tuple[str, ...]
    mode: str = "combine"
    child_status: str = "closed"
    delete_children: bool = False
    move_collaborators: bool = True


@dataclass(frozen=True)
class ChangeLinks:
    link: tuple[str, ...] = ()
    unlink: tuple[str, ...] = ()


def assign(state: TicketState, command: Assign, *, by: Actor) -> list[NewEvent]:
    """Assign an agent and/or a team; the one not named stays as it is.

    osTicket: a closed ticket is reopened by an assignment.
    """
    _require_workable(state, "assigned")
    if command.agent_id is None and command.team_id is None:
        raise ValidationFailed("name an agent_id or a team_id to assign", field="agent_id")
    agent_id = command.agent_id if command.agent_id is not None else state.agent_id
    team_id = command.team_id if command.team_id is not None else state.team_id
    if (agent_id, team_id) == (state.agent_id, state.team_id):
        field_name = "agent_id" if command.agent_id is not None else "team_id"
        raise ValidationFailed(
            f"the ticket is already assigned to that {field_name[:-3]}", field=field_name
        )
    assigned = NewEvent(
        "TicketAssigned",
        {
            "agent_id": agent_id,
            "team_id": team_id,
            "reason": _reason(command.reason),
            "by": by.as_author(),
        },
    )
    return [assigned, *_reopen(state, by, "reopened on assignment")]


def release(state: TicketState, command: Release, *, by: Actor) -> list[NewEvent]:
    _require_live(state)
    everything = command.agent is None and command.team is None
    want_agent = everything or bool(command.agent)
    want_team = everything or bool(command.team)
    if not (want_agent or want_team):
        raise ValidationFailed("release the agent, the team or both", field="agent")
    agent = want_agent and state.agent_id is not None
    team = want_team and state.team_id is not None
    if not (agent or team):
        missing = [name for name, wanted in (("agent", want_agent), ("team", want_team)) if wanted]
        raise Conflict(f"the ticket has no assigned {' or '.join(missing)} to release")
    data = {"agent": agent, "team": team, "reason": _reason(command.reason), "by": by.as_author()}
    return [NewEvent("AssignmentReleased", data)]


def transfer(state: TicketState, command: Transfer, *, by: Actor) -> list[NewEvent]:
    """Move the ticket to another department; osTicket reopens a closed ticket on transfer."""
    _require_workable(state, "transferred")
    if command.department_id == state.department_id:
        raise ValidationFailed(
            f"the ticket is already in department {command.department_id}", field="department_id"
        )
    transferred = NewEvent(
        "TicketTransferred",
        {
            "department_id": command.department_id,
            "previous_department_id": state.department_id,
            "reason": _reason(command.reason),
            "by": by.as_author(),
        },
    )
    return [transferred, *_reopen(state, by, "reopened on transfer")]


def change_status(
    state: TicketState,
    command: ChangeStatus,
    *,
    by: Actor,
    custom: Mapping[str, TicketStatus] | None = None,
) -> list[NewEvent]:
    """Set a built-in status or one of the `custom` statuses (by name); the event records the
    status's state and, for a closed one, whether the ticket may reopen."""
    _require_live(state)
    status = BUILT_IN_STATUSES.get(command.status) or (custom or {}).get(command.status)
    if status is None:
        raise ValidationFailed(
            f"status must be one of {', '.join(AGENT_STATUSES)} or a ticket status an admin "
            f"defined, not {command.status!r}",
            field="status",
        )
    if not status.active:
        raise ValidationFailed(f"ticket status {status.name} is not active", field="status")
    if status.name == state.status:
        raise ValidationFailed(f"the ticket is already {state.status}", field="status")
    return [_status_changed(state, status, _reason(command.reason), by.as_author())]


def change_priority(state: TicketState, command: ChangePriority, *, by: Actor) -> list[NewEvent]:
    _require_live(state)
    if command.priority not in PRIORITIES:
        raise ValidationFailed(f"priority must be one of {', '.join(PRIORITIES)}", field="priority")
    if command.priority == state.priority:
        raise ValidationFailed(f"the priority is already {state.priority}", field="priority")
    data = {"priority": command.priority, "previous": state.priority, "by": by.as_author()}
    return [NewEvent("TicketPriorityChanged", data)]


def update_field(state: TicketState, command: UpdateField, *, by: Actor) -> list[NewEvent]:
    """Edit `help_topic` (a help topic id) or `subject`. The subject's old value stays in the
    log (TicketCreated / earlier edits); only the help topic's is carried as `previous`."""
    _require_live(state)
    previous: Any = None
    if command.field == "help_topic":
        value = command.value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationFailed("help_topic must be a help topic id", field="value")
        if value == state.help_topic_id:
            raise ValidationFailed(f"the help topic is already {value}", field="value")
        previous = state.help_topic_id
    elif command.field == "subject":
        if not isinstance(command.value, str) or not command.value.strip():
            raise ValidationFailed("subject must be a non-empty string", field="value")
        value = command.value.strip()
        if len(value) > 255:
            raise ValidationFailed("subject is at most 255 characters", field="value")
    else:
        raise ValidationFailed(f"field must be one of {', '.join(EDITABLE_FIELDS)}", field="field")
    data = {
        "field": command.field,
        "value": value,
        "previous": previous,
        "reason": _reason(command.reason),
        "by": by.as_author(),
    }
    return [NewEvent("TicketFieldUpdated", data)]


def reply(state: TicketState, command: Reply, *, by: Actor, entry_id: uuid.UUID) -> list[NewEvent]:
    """An agent's response to the requester (and collaborators, per `reply_to`)."""
    _require_live(state)
    if command.reply_to not in REPLY_TO:
        raise ValidationFailed(f"reply_to must be one of {', '.join(REPLY_TO)}", field="reply_to")
    return [_entry("response", command.body, command.body_html, by, entry_id, command.reply_to)]


def add_note(
    state: TicketState, command: AddNote, *, by: Actor, entry_id: uuid.UUID
) -> list[NewEvent]:
    """An internal note: agents only, never mailed to the requester."""
    _require_live(state)
    return [_entry("note", command.body, command.body_html, by, entry_id, None)]


def change_collaborators(
    state: TicketState, command: ChangeCollaborators, *, by: Actor
) -> list[NewEvent]:
    """One event per person named; each person at most once per command. The requester is
    never a collaborator; disabling keeps someone on the ticket without mailing them."""
    _require_live(state)
    if not (command.add or command.remove or command.disable or command.enable):
        raise ValidationFailed("name collaborators to add, remove, disable or enable", field="add")
    known = {c.email: c for c in state.all_collaborators}
    named: set[str] = set()

    def once(email: str, where: str) -> str:
        key = email.strip().lower()
        if key in named:
            raise ValidationFailed(f"{email} is named twice", field=where)
        named.add(key)
        return key

    def existing(email: str, where: str) -> Collaborator:
        found = known.get(once(email, where))
        if found is None:
            raise ValidationFailed(f"{email} is not a collaborator on this ticket", field=where)
        return found

    events = []
    for index, person in enumerate(command.add):
        where = f"add[{index}].email"
        key = once(person.email, where)
        if key == state.requester_email:
            raise ValidationFailed(f"{person.email} is the ticket's requester", field=where)
        if key in known:
            raise ValidationFailed(f"{person.email} is already a collaborator", field=where)
        name = (person.name or "").strip() or None
        events.append(_collaborator_event(person.email.strip(), name, True, by))
    for index, email in enumerate(command.remove):
        gone = existing(email, f"remove[{index}]")
        data = {"email": gone.email, "name": gone.name, "by": by.as_author()}
        events.append(NewEvent("CollaboratorRemoved", data))
    for verb, emails, active in (
        ("disable", command.disable, False),
        ("enable", command.enable, True),
    ):
        for index, email in enumerate(emails):
            where = f"{verb}[{index}]"
            person = existing(email, where)
            if person.active == active:
                raise ValidationFailed(f"{person.email} is already {verb}d", field=where)
            events.append(_collaborator_event(person.email, person.name, active, by))
    return events


def merge(
    parent: TicketState,
    command: Merge,
    *,
    tickets: Mapping[str, TicketState],
    by: Actor,
) -> dict[str, list[NewEvent]]:
    """Merge the children (`tickets` holds the state of each number the command names) into
    `parent`; returns each ticket's events by number, the parent's first.

    As osTicket's merge: each child records the merge and closes with `child_status`; the parent
    records its children and takes on their requesters (and collaborators, unless told not to)
    as collaborators. osTicket can also move a child's tasks: Deskstream has no tasks. Children
    are one level deep: a merged ticket is no parent, and a parent is no child.
    """
    if parent.merged_into is not None:
        raise ValidationFailed(
            f"ticket {parent.number} was itself merged into ticket {parent.merged_into}: "
            "merge into that one"
        )
    _require_live(parent)
    if not command.tickets:
        raise ValidationFailed("name the tickets to merge into this one", field="tickets")
    if command.mode not in MERGE_MODES:
        raise ValidationFailed(f"mode must be one of {', '.join(MERGE_MODES)}", field="mode")
    if command.child_status not in CLOSED_STATUSES:
        raise ValidationFailed(
            f"child_status must be one of {', '.join(CLOSED_STATUSES)}", field="child_status"
        )
    children = _others(parent, command.tickets, tickets, "tickets", "merged into")
    for index, child in enumerate(children):
        where = f"tickets[{index}]"
        if child.merged_into is not None:
            raise ValidationFailed(
                f"ticket {child.number} is already merged into ticket {child.merged_into}",
                field=where,
            )
        if child.children:
            raise ValidationFailed(
                f"ticket {child.number} has tickets merged into it and cannot be merged itself",
                field=where,
            )
        if child.rejected:
            raise ValidationFailed(f"ticket {child.number} was rejected by a filter", field=where)
    assert parent.number is not None and parent.ticket_id is not None  # it exists
    author = by.as_author()
    merged = [{"ticket_id": str(c.ticket_id), "number": c.number} for c in children]
    on_parent = [
        NewEvent("ChildTicketsMerged", {"tickets": merged, "mode": command.mode, "by": author})
    ]
    decided = {parent.number: on_parent}
    present = {parent.requester_email, *(c.email for c in parent.all_collaborators)}
    for child in children:
        assert child.number is not None and child.requester_email is not None
        into = {
            "into_ticket_id": str(parent.ticket_id),
            "into_number": parent.number,
            "mode": command.mode,
            "deleted": command.delete_children,
            "by": author,
        }
        decided[child.number] = [NewEvent("TicketMerged", into)]
        if child.status != command.child_status:
            reason = f"merged into ticket {parent.number}"
            closed = BUILT_IN_STATUSES[command.child_status]
            decided[child.number].append(_status_changed(child, closed, reason, author))
        movers = [Collaborator(child.requester_email)]
        movers += child.all_collaborators if command.move_collaborators else ()
        for person in movers:
            if person.email not in present:
                present.add(person.email)
                on_parent.append(_collaborator_event(person.email, person.name, person.active, by))
    return decided


def change_links(
    state: TicketState,
    command: ChangeLinks,
    *,
    tickets: Mapping[str, TicketState],
    by: Actor,
) -> dict[str, list[NewEvent]]:
    """Link (unlink) this ticket and each named one: both record it, each naming the other.
    Returns each ticket's events by number, this ticket's first."""
    _require_live(state)
    if not (command.link or command.unlink):
        raise ValidationFailed("name tickets to link or unlink", field="link")
    if set(command.link) & set(command.unlink):
        both = sorted(set(command.link) & set(command.unlink))[0]
        raise ValidationFailed(f"ticket {both} is both linked and unlinked", field="unlink")
    linking = _others(state, command.link, tickets, "link", "linked to")
    unlinking = _others(state, command.unlink, tickets, "unlink", "unlinked from")
    for index, other in enumerate(linking):
        where = f"link[{index}]"
        if other.number in state.links:
            raise ValidationFailed(f"ticket {other.number} is already linked", field=where)
        if other.merged_into is not None:
            raise ValidationFailed(
                f"ticket {other.number} was merged into ticket {other.merged_into}", field=where
            )
        if other.rejected:
            raise ValidationFailed(f"ticket {other.number} was rejected by a filter", field=where)
    for index, other in enumerate(unlinking):
        if other.number not in state.links:
            raise ValidationFailed(
                f"ticket {other.number} is not linked to this ticket", field=f"unlink[{index}]"
            )
    assert state.number is not None
    decided: dict[str, list[NewEvent]] = {state.number: []}
    for event_type, others in (("TicketLinked", linking), ("TicketUnlinked", unlinking)):
        for other in others:
            assert other.number is not None
            decided[state.number].append(_link_event(event_type, other, by))
            decided[other.number] = [_link_event(event_type, state, by)]
    return decided


def _others(
    state: TicketState,
    numbers: tuple[str, ...],
    tickets: Mapping[str, TicketState],
    field_name: str,
    done: str,
) -> list[TicketState]:
    """The named tickets' states: each other ticket named once."""
    others, seen = [], set()
    for index, number in enumerate(numbers):
        where = f"{field_name}[{index}]"
        if number == state.number:
            raise ValidationFailed(f"a ticket cannot be {done} itself", field=where)
        if number in seen:
            raise ValidationFailed(f"ticket {number} is named twice", field=where)
        seen.add(number)
        others.append(tickets[number])
    return others


def _collaborator_event(email: str, name: str | None, active: bool, by: Actor) -> NewEvent:
    data = {"email": email, "name": name, "active": active, "by": by.as_author()}
    return NewEvent("CollaboratorAdded", data)


def _link_event(event_type: str, other: TicketState, by: Actor) -> NewEvent:
    data = {"ticket_id": str(other.ticket_id), "number": other.number, "by": by.as_author()}
    return NewEvent(event_type, data)


def _require_live(state: TicketState) -> None:
    if not state.exists:
        raise NotFound("no such ticket")
    if state.rejected:
        raise Conflict("the ticket was rejected by a filter and takes no commands")
    if state.merged_into is not None:
        raise Conflict(
            f"ticket {state.number} was merged into ticket {state.merged_into}: work on that one"
        )


def _require_workable(state: TicketState, done: str) -> None:
    """Assignment and transfer reopen a closed ticket; one that cannot reopen (archived, or a
    status that does not allow it) is neither assigned nor transferred."""
    _require_live(state)
    if state.state != OPEN and not state.reopenable:
        raise Conflict(
            f"ticket {state.number} is {state.status}, which does not reopen: it cannot be "
            f"{done}; change its status first"
        )


def _reopen(state: TicketState, by: Actor, reason: str) -> list[NewEvent]:
    return [reopened(state, reason, by.as_author())] if state.reopenable else []


def reopened(state: TicketState, reason: str, author: dict[str, Any]) -> NewEvent:
    """The status change reopening a closed ticket: to open, osTicket's default reopen status."""
    return _status_changed(state, BUILT_IN_STATUSES[OPEN], reason, author)


def _status_changed(
    state: TicketState, status: TicketStatus, reason: str | None, author: dict[str, Any]
) -> NewEvent:
    data: dict[str, Any] = {"status": status.name, "state": status.state}
    if status.state == CLOSED:
        data["reopenable"] = status.reopenable
    data |= {"previous": state.status, "reason": reason, "by": author}
    return NewEvent("TicketStatusChanged", data)


def _entry(
    kind: str,
    body: str,
    body_html: str | None,
    by: Actor,
    entry_id: uuid.UUID,
    reply_to: str | None,
) -> NewEvent:
    if not body.strip() and not (body_html and body_html.strip()):
        raise ValidationFailed("body is required", field="body")
    data: dict[str, Any] = {
        "entry_id": str(entry_id),
        "kind": kind,
        "author": by.as_author(),
        "body": body,
        "body_html": body_html or None,
        "attachments": [],
        "reply_to": reply_to,
    }
    return NewEvent("MessageAppended", data)


def _reason(reason: str | None) -> str | None:
    return (reason or "").strip() or None


def evolve(state: TicketState, event_type: str, data: dict[str, Any], version: int) -> TicketState:
    if event_type == "TicketCreated":
        return TicketState(
            version,
            uuid.UUID(data["ticket_id"]),
            data["number"],
            "open",
            help_topic_id=data.get("help_topic_id"),
            requester_email=data["requester"]["email"].lower(),
        )
    changes = _CHANGES.get(event_type)
    return replace(state, version=version, **(changes(state, data) if changes else {}))


def _status(state: TicketState, data: dict[str, Any]) -> dict[str, Any]:
    now = state_of(data["status"], data.get("state"))
    return {
        "status": data["status"],
        "state": now,
        "reopenable": can_reopen(now, data.get("reopenable")),
    }


def _released(state: TicketState, data: dict[str, Any]) -> dict[str, Any]:
    return {
        **({"agent_id": None} if data.get("agent", True) else {}),
        **({"team_id": None} if data.get("team", True) else {}),
    }


def _field_updated(state: TicketState, data: dict[str, Any]) -> dict[str, Any]:
    return {"help_topic_id": data["value"]} if data["field"] == "help_topic" else {}


def _collaborator_added(state: TicketState, data: dict[str, Any]) -> dict[str, Any]:
    """An upsert: added again, a collaborator keeps their place with the new name and flag."""
    entry = Collaborator(data["email"].lower(), data.get("name"), data.get("active", True))
    entries = [entry if c.email == entry.email else c for c in state.all_collaborators]
    if entry not in entries:
        entries.append(entry)
    return _collaborators(entries)


def _collaborator_removed(state: TicketState, data: dict[str, Any]) -> dict[str, Any]:
    email = data["email"].lower()
    return _collaborators([c for c in state.all_collaborators if c.email != email])


def _collaborators(entries: list[Collaborator]) -> dict[str, Any]:
    return {
        "all_collaborators": tuple(entries),
        "collaborators": frozenset(c.email for c in entries if c.active),
    }


# event type -> the state fields it sets (events not listed only move the version)
_CHANGES: dict[str, Callable[[TicketState, dict[str, Any]], dict[str, Any]]] = {
    "TicketRouted": lambda s, d: {
        "department_id": d["department_id"],
        "help_topic_id": d.get("help_topic_id"),
        "priority": d["priority"],
    },
    "TicketTransferred": lambda s, d: {"department_id": d["department_id"]},
    "TicketStatusChanged": _status,
    "TicketPriorityChanged": lambda s, d: {"priority": d["priority"]},
    # An assignment names the whole new assignee (as the query projection reads it).
    "TicketAssigned": lambda s, d: {"agent_id": d.get("agent_id"), "team_id": d.get("team_id")},
    "AssignmentReleased": _released,
    "TicketFieldUpdated": _field_updated,
    "TicketRejected": lambda s, d: {"rejected": True},
    "CollaboratorAdded": _collaborator_added,
    "CollaboratorRemoved": _collaborator_removed,
    "TicketMerged": lambda s, d: {"merged_into": d["into_number"]},
    "ChildTicketsMerged": lambda s, d: {
        "children": s.children | {t["number"] for t in d["tickets"]}
    },
    "TicketLinked": lambda s, d: {"links": s.links | {d["number"]}},
    "TicketUnlinked": lambda s, d: {"links": s.links - {d["number"]}},
}
