"""Agent ticket commands: given these events, when this command, then these events (or a refusal)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from libs.events.envelope import NewEvent
from libs.events.types import CATALOG
from libs.platform.errors import Conflict, NotFound, ValidationFailed
from services.intake.domain import tickets
from services.intake.domain.tickets import (
    Actor,
    AddNote,
    Assign,
    ChangePriority,
    ChangeStatus,
    Release,
    Reply,
    TicketState,
    Transfer,
    UpdateField,
    evolve,
)

TICKET_ID = "11111111-1111-4111-8111-111111111111"
ENTRY_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
BY = Actor(7, "Grace", "grace@example.com")
AUTHOR = {"kind": "agent", "id": 7, "name": "Grace", "email": "grace@example.com"}

Event = tuple[str, dict[str, Any]]

CREATED: Event = (
    "TicketCreated",
    {
        "ticket_id": TICKET_ID,
        "number": "123456",
        "subject": "VPN down",
        "help_topic_id": None,
        "requester": {"email": "Ada@Example.com", "name": "Ada"},
    },
)
ROUTED: Event = ("TicketRouted", {"department_id": 1, "help_topic_id": 1, "priority": "normal"})


def given(*history: Event) -> TicketState:
    state = TicketState()
    for version, (event_type, data) in enumerate((CREATED, ROUTED, *history), start=1):
        state = evolve(state, event_type, data, version)
    return state


def then(events: list[NewEvent]) -> list[Event]:
    """The events as (type, data), each checked against the catalog as the store would."""
    for event in events:
        CATALOG.validate(event.type, event.data)
    return [(e.type, e.data) for e in events]


def status(to: str, previous: str) -> Event:
    return ("TicketStatusChanged", {"status": to, "previous": previous, "by": AUTHOR})


# -- evolve -------------------------------------------------------------------------------------


def test_state_follows_routing_assignment_transfer_and_edits() -> None:
    state = given(
        ("TicketAssigned", {"agent_id": 3, "team_id": 4, "by": AUTHOR}),
        ("TicketTransferred", {"department_id": 2, "by": AUTHOR}),
        ("TicketPriorityChanged", {"priority": "high", "by": AUTHOR}),
        ("TicketFieldUpdated", {"field": "help_topic", "value": 9, "by": AUTHOR}),
        ("TicketFieldUpdated", {"field": "subject", "value": "VPN up", "by": AUTHOR}),
        ("AssignmentReleased", {"agent": True, "team": False, "by": AUTHOR}),
        ("MessageAppended", {"kind": "note"}),
    )
    assert state.version == 9
    assert (state.department_id, state.help_topic_id, state.priority) == (2, 9, "high")
    assert (state.agent_id, state.team_id) == (None, 4)
    assert not state.rejected


def test_released_without_flags_clears_both() -> None:
    state = given(
        ("TicketAssigned", {"agent_id": 3, "team_id": 4, "by": AUTHOR}),
        ("AssignmentReleased", {"by": AUTHOR}),
    )
    assert not state.assigned


def test_rejected_is_remembered() -> None:
    assert given(("TicketRejected", {"reason": "spam"})).rejected


# -- assign -------------------------------------------------------------------------------------


def test_assign_an_agent() -> None:
    events = tickets.assign(given(), Assign(agent_id=3, reason=" on call "), by=BY)
    assert then(events) == [
        ("TicketAssigned", {"agent_id": 3, "team_id": None, "reason": "on call", "by": AUTHOR})
    ]


def test_assigning_an_agent_keeps_the_team() -> None:
    state = given(("TicketAssigned", {"agent_id": None, "team_id": 4, "by": AUTHOR}))
    (event,) = tickets.assign(state, Assign(agent_id=3), by=BY)
    assert (event.data["agent_id"], event.data["team_id"]) == (3, 4)


@pytest.mark.parametrize("closed", ["closed", "resolved"])
def test_assigning_a_closed_ticket_reopens_it(closed: str) -> None:
    state = given(status(closed, "open"))
    events = tickets.assign(state, Assign(team_id=4), by=BY)
    assert then(events) == [
        ("TicketAssigned", {"agent_id": None, "team_id": 4, "reason": None, "by": AUTHOR}),
        (
            "TicketStatusChanged",
            {
                "status": "open",
                "previous": closed,
                "reason": "reopened on assignment",
                "by": AUTHOR,
            },
        ),
    ]


def test_assign_needs_an_agent_or_a_team() -> None:
    with pytest.raises(ValidationFailed) as info:
        tickets.assign(given(), Assign(reason="why not"), by=BY)
    assert info.value.details["field"] == "agent_id"


def test_assigning_the_current_assignee_is_refused() -> None:
    state = given(("TicketAssigned", {"agent_id": 3, "team_id": 4, "by": AUTHOR}))
    with pytest.raises(ValidationFailed) as info:
        tickets.assign(state, Assign(team_id=4), by=BY)
    assert info.value.details["field"] == "team_id"


def test_an_archived_ticket_is_neither_assigned_nor_transferred() -> None:
    state = given(status("archived", "open"))
    with pytest.raises(Conflict):
        tickets.assign(state, Assign(agent_id=3), by=BY)
    with pytest.raises(Conflict):
        tickets.transfer(state, Transfer(department_id=2), by=BY)


# -- release ------------------------------------------------------------------------------------


def test_release_without_flags_releases_whatever_is_assigned() -> None:
    state = given(("TicketAssigned", {"agent_id": 3, "team_id": None, "by": AUTHOR}))
    assert then(tickets.release(state, Release(), by=BY)) == [
        ("AssignmentReleased", {"agent": True, "team": False, "reason": None, "by": AUTHOR})
    ]


def test_release_only_the_team() -> None:
    state = given(("TicketAssigned", {"agent_id": 3, "team_id": 4, "by": AUTHOR}))
    (event,) = tickets.release(state, Release(team=True), by=BY)
    assert (event.data["agent"], event.data["team"]) == (False, True)


def test_release_when_unassigned_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="no assigned agent or team"):
        tickets.release(given(), Release(), by=BY)


def test_release_of_an_unassigned_part_is_a_conflict() -> None:
    state = given(("TicketAssigned", {"agent_id": None, "team_id": 4, "by": AUTHOR}))
    with pytest.raises(Conflict, match="no assigned agent"):
        tickets.release(state, Release(agent=True), by=BY)


def test_release_of_nothing_is_invalid() -> None:
    with pytest.raises(ValidationFailed):
        tickets.release(given(), Release(agent=False, team=False), by=BY)


# -- transfer -----------------------------------------------------------------------------------


def test_transfer_names_both_departments() -> None:
    events = tickets.transfer(given(), Transfer(department_id=2, reason="billing"), by=BY)
    assert then(events) == [
        (
            "TicketTransferred",
            {"department_id": 2, "previous_department_id": 1, "reason": "billing", "by": AUTHOR},
        )
    ]


def test_transfer_to_the_current_department_is_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        tickets.transfer(given(), Transfer(department_id=1), by=BY)
    assert info.value.details["field"] == "department_id"


def test_transferring_a_closed_ticket_reopens_it() -> None:
    events = tickets.transfer(given(status("closed", "open")), Transfer(department_id=2), by=BY)
    assert [(t, d.get("status")) for t, d in then(events)] == [
        ("TicketTransferred", None),
        ("TicketStatusChanged", "open"),
    ]


# -- status, priority, fields -------------------------------------------------------------------


def test_close_then_reopen() -> None:
    closed = tickets.change_status(given(), ChangeStatus("closed", reason="fixed"), by=BY)
    assert then(closed) == [
        (
            "TicketStatusChanged",
            {"status": "closed", "previous": "open", "reason": "fixed", "by": AUTHOR},
        )
    ]
    reopened = tickets.change_status(given(status("closed", "open")), ChangeStatus("open"), by=BY)
    assert reopened[0].data["previous"] == "closed"


@pytest.mark.parametrize(("target", "message"), [("open", "already open"), ("deleted", "one of")])
def test_status_to_the_current_or_an_unknown_status_is_refused(target: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as info:
        tickets.change_status(given(), ChangeStatus(target), by=BY)
    assert info.value.details["field"] == "status"


def test_priority_change_carries_the_previous_one() -> None:
    assert then(tickets.change_priority(given(), ChangePriority("high"), by=BY)) == [
        ("TicketPriorityChanged", {"priority": "high", "previous": "normal", "by": AUTHOR})
    ]


@pytest.mark.parametrize("priority", ["normal", "urgent"])
def test_same_or_unknown_priority_is_refused(priority: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        tickets.change_priority(given(), ChangePriority(priority), by=BY)
    assert info.value.details["field"] == "priority"


def test_help_topic_edit() -> None:
    events = tickets.update_field(given(), UpdateField("help_topic", 5, "misfiled"), by=BY)
    assert then(events) == [
        (
            "TicketFieldUpdated",
            {"field": "help_topic", "value": 5, "previous": 1, "reason": "misfiled", "by": AUTHOR},
        )
    ]


def test_subject_edit_is_trimmed() -> None:
    (event,) = tickets.update_field(given(), UpdateField("subject", "  VPN flaps "), by=BY)
    assert (event.data["field"], event.data["value"]) == ("subject", "VPN flaps")


@pytest.mark.parametrize(
    ("field", "value", "bad"),
    [
        ("help_topic", 1, "value"),  # already the topic
        ("help_topic", "2", "value"),
        ("help_topic", True, "value"),
        ("subject", "   ", "value"),
        ("subject", "s" * 256, "value"),
        ("due_date", "2030-01-01", "field"),
    ],
)
def test_bad_field_edits_are_refused(field: str, value: object, bad: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        tickets.update_field(given(), UpdateField(field, value), by=BY)
    assert info.value.details["field"] == bad


# -- replies and notes --------------------------------------------------------------------------


def test_reply_is_a_response_by_the_agent() -> None:
    events = tickets.reply(
        given(), Reply("On it.", "<p>On it.</p>", "requester"), by=BY, entry_id=ENTRY_ID
    )
    assert then(events) == [
        (
            "MessageAppended",
            {
                "entry_id": str(ENTRY_ID),
                "kind": "response",
                "author": AUTHOR,
                "body": "On it.",
                "body_html": "<p>On it.</p>",
                "attachments": [],
                "reply_to": "requester",
            },
        )
    ]


def test_note_is_internal() -> None:
    (event,) = then(tickets.add_note(given(), AddNote("call back"), by=BY, entry_id=ENTRY_ID))
    assert event[0] == "MessageAppended"
    assert (event[1]["kind"], event[1]["reply_to"]) == ("note", None)


def test_blank_reply_and_unknown_recipients_are_refused() -> None:
    with pytest.raises(ValidationFailed) as info:
        tickets.reply(given(), Reply("  "), by=BY, entry_id=ENTRY_ID)
    assert info.value.details["field"] == "body"
    with pytest.raises(ValidationFailed) as info:
        tickets.reply(given(), Reply("hi", reply_to="everyone"), by=BY, entry_id=ENTRY_ID)
    assert info.value.details["field"] == "reply_to"


def test_a_rejected_ticket_takes_no_commands() -> None:
    state = given(("TicketRejected", {"reason": "spam"}))
    with pytest.raises(Conflict, match="rejected"):
        tickets.reply(state, Reply("hello"), by=BY, entry_id=ENTRY_ID)
    with pytest.raises(Conflict, match="rejected"):
        tickets.add_note(state, AddNote("hm"), by=BY, entry_id=ENTRY_ID)
    with pytest.raises(Conflict, match="rejected"):
        tickets.change_status(state, ChangeStatus("closed"), by=BY)


def test_no_command_on_a_missing_ticket() -> None:
    with pytest.raises(NotFound):
        tickets.add_note(TicketState(), AddNote("hm"), by=BY, entry_id=ENTRY_ID)
