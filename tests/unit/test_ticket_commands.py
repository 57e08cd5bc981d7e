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
    ChangeCollaborators,
    ChangeLinks,
    ChangePriority,
    ChangeStatus,
    Collaborator,
    Merge,
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
                "state": "open",
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
            {
                "status": "closed",
                "state": "closed",
                "reopenable": True,
                "previous": "open",
                "reason": "fixed",
                "by": AUTHOR,
            },
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


# -- collaborators ------------------------------------------------------------------------------


def added(email: str, name: str | None = None, *, active: bool = True) -> Event:
    return ("CollaboratorAdded", {"email": email, "name": name, "active": active, "by": AUTHOR})


def test_add_collaborators_then_the_state_mails_them() -> None:
    command = ChangeCollaborators(
        add=(Collaborator("Bob@Example.com", " Bob "), Collaborator("carol@example.com"))
    )
    events = then(tickets.change_collaborators(given(), command, by=BY))
    assert events == [added("Bob@Example.com", "Bob"), added("carol@example.com")]
    state = given(*events)
    assert state.collaborators == {"bob@example.com", "carol@example.com"}


def test_remove_disable_and_enable_collaborators() -> None:
    state = given(added("bob@example.com", "Bob"), added("carol@example.com", "Carol"))
    command = ChangeCollaborators(remove=("BOB@example.com",), disable=("carol@example.com",))
    events = then(tickets.change_collaborators(state, command, by=BY))
    assert events == [
        ("CollaboratorRemoved", {"email": "bob@example.com", "name": "Bob", "by": AUTHOR}),
        added("carol@example.com", "Carol", active=False),
    ]
    disabled = given(added("bob@example.com", "Bob"), added("carol@example.com", "Carol"), *events)
    # A disabled collaborator stays on the ticket but is sent no mail.
    assert disabled.collaborators == frozenset()
    assert disabled.all_collaborators == (Collaborator("carol@example.com", "Carol", False),)
    enabled = tickets.change_collaborators(
        disabled, ChangeCollaborators(enable=("carol@example.com",)), by=BY
    )
    assert then(enabled) == [added("carol@example.com", "Carol")]


@pytest.mark.parametrize(
    ("command", "field", "message"),
    [
        (ChangeCollaborators(), "add", "name collaborators"),
        (ChangeCollaborators(add=(Collaborator("ADA@example.com"),)), "add[0].email", "requester"),
        (ChangeCollaborators(add=(Collaborator("bob@example.com"),)), "add[0].email", "already"),
        (
            ChangeCollaborators(
                add=(Collaborator("dan@example.com"), Collaborator("Dan@Example.com"))
            ),
            "add[1].email",
            "named twice",
        ),
        (
            ChangeCollaborators(
                add=(Collaborator("dan@example.com"),), remove=("dan@example.com",)
            ),
            "remove[0]",
            "named twice",
        ),
        (ChangeCollaborators(remove=("dan@example.com",)), "remove[0]", "not a collaborator"),
        (ChangeCollaborators(disable=("carol@example.com",)), "disable[0]", "already disabled"),
        (ChangeCollaborators(enable=("bob@example.com",)), "enable[0]", "already enabled"),
    ],
)
def test_collaborator_changes_that_are_refused(
    command: ChangeCollaborators, field: str, message: str
) -> None:
    state = given(added("bob@example.com"), added("carol@example.com", active=False))
    with pytest.raises(ValidationFailed, match=message) as info:
        tickets.change_collaborators(state, command, by=BY)
    assert info.value.details["field"] == field


def test_added_again_a_collaborator_keeps_their_place() -> None:
    state = given(
        added("bob@example.com"), added("carol@example.com"), added("bob@example.com", "Bob")
    )
    assert [c.email for c in state.all_collaborators] == ["bob@example.com", "carol@example.com"]
    assert state.all_collaborators[0].name == "Bob"


# -- merge --------------------------------------------------------------------------------------

PARENT_ID = TICKET_ID
CHILD_IDS = {
    "200001": "33333333-3333-4333-8333-333333333333",
    "200002": "44444444-4444-4444-8444-444444444444",
}


def ticket(number: str, requester: str, *history: Event) -> TicketState:
    """Another ticket, in department 1, with `history` after its creation and routing."""
    created = (
        "TicketCreated",
        {"ticket_id": CHILD_IDS[number], "number": number, "requester": {"email": requester}},
    )
    state = TicketState()
    for version, (event_type, data) in enumerate((created, ROUTED, *history), start=1):
        state = evolve(state, event_type, data, version)
    return state


def children(*states: TicketState) -> dict[str, TicketState]:
    return {s.number: s for s in states if s.number}


def test_merge_two_tickets_combined() -> None:
    first = ticket("200001", "bob@example.com", added("carol@example.com", "Carol"))
    second = ticket("200002", "Ada@example.com", status("closed", "open"))
    parent = given(added("dan@example.com"))
    decided = tickets.merge(
        parent, Merge(("200001", "200002")), tickets=children(first, second), by=BY
    )
    assert list(decided) == ["123456", "200001", "200002"]
    into = {
        "into_ticket_id": PARENT_ID,
        "into_number": "123456",
        "mode": "combine",
        "deleted": False,
    }
    assert then(decided["200001"]) == [
        ("TicketMerged", {**into, "by": AUTHOR}),
        (
            "TicketStatusChanged",
            {
                "status": "closed",
                "state": "closed",
                "reopenable": True,
                "previous": "open",
                "reason": "merged into ticket 123456",
                "by": AUTHOR,
            },
        ),
    ]
    assert then(decided["200002"]) == [("TicketMerged", {**into, "by": AUTHOR})]  # already closed
    merged = [
        {"ticket_id": CHILD_IDS["200001"], "number": "200001"},
        {"ticket_id": CHILD_IDS["200002"], "number": "200002"},
    ]
    # The children's requesters and collaborators join the parent (Ada is its requester already).
    assert then(decided["123456"]) == [
        ("ChildTicketsMerged", {"tickets": merged, "mode": "combine", "by": AUTHOR}),
        added("bob@example.com"),
        added("carol@example.com", "Carol"),
    ]
    assert given(added("dan@example.com"), *then(decided["123456"])).children == {
        "200001",
        "200002",
    }
    child = ticket("200001", "bob@example.com", *then(decided["200001"]))
    assert (child.merged_into, child.status) == ("123456", "closed")


def test_merge_separate_resolved_deleted_without_collaborators() -> None:
    first = ticket("200001", "bob@example.com", added("carol@example.com"))
    command = Merge(
        ("200001",),
        mode="separate",
        child_status="resolved",
        delete_children=True,
        move_collaborators=False,
    )
    decided = tickets.merge(given(), command, tickets=children(first), by=BY)
    merged, closed = then(decided["200001"])
    assert (merged[1]["mode"], merged[1]["deleted"], closed[1]["status"]) == (
        "separate",
        True,
        "resolved",
    )
    assert [e for e, _ in then(decided["123456"])] == ["ChildTicketsMerged", "CollaboratorAdded"]
    assert decided["123456"][1].data["email"] == "bob@example.com"  # not carol


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("none", "tickets", "name the tickets"),
        ("itself", "tickets[0]", "merged into itself"),
        ("twice", "tickets[1]", "named twice"),
        ("already merged", "tickets[0]", "already merged into ticket 999999"),
        ("a parent", "tickets[0]", "has tickets merged into it"),
        ("rejected", "tickets[0]", "rejected"),
        ("mode", "mode", "combine, separate"),
        ("status", "child_status", "resolved, closed"),
        ("merged parent", None, "was itself merged into ticket 999999"),
    ],
)
def test_merges_that_are_refused(case: str, field: str | None, message: str) -> None:
    merged_away = (
        "TicketMerged",
        {"into_ticket_id": CHILD_IDS["200002"], "into_number": "999999", "by": AUTHOR},
    )
    histories: dict[str, tuple[Event, ...]] = {
        "already merged": (merged_away,),
        "a parent": (
            (
                "ChildTicketsMerged",
                {"tickets": [{"ticket_id": CHILD_IDS["200002"], "number": "200002"}], "by": AUTHOR},
            ),
        ),
        "rejected": (("TicketRejected", {"reason": "spam"}),),
    }
    child = ticket("200001", "bob@example.com", *histories.get(case, ()))
    numbers = {"none": (), "itself": ("123456",), "twice": ("200001", "200001")}.get(
        case, ("200001",)
    )
    command = Merge(
        numbers,
        mode="link" if case == "mode" else "combine",
        child_status="open" if case == "status" else "closed",
    )
    parent = given(merged_away) if case == "merged parent" else given()
    with pytest.raises(ValidationFailed, match=message) as info:
        tickets.merge(parent, command, tickets=children(child), by=BY)
    assert info.value.details.get("field") == field


def test_a_merged_ticket_takes_no_more_commands() -> None:
    state = given(
        (
            "TicketMerged",
            {"into_ticket_id": CHILD_IDS["200001"], "into_number": "200001", "by": AUTHOR},
        )
    )
    with pytest.raises(Conflict, match="merged into ticket 200001"):
        tickets.add_note(state, AddNote("hm"), by=BY, entry_id=ENTRY_ID)
    with pytest.raises(Conflict, match="merged into ticket 200001"):
        tickets.change_status(state, ChangeStatus("open"), by=BY)


# -- links --------------------------------------------------------------------------------------


def link_event(kind: str, number: str, ticket_id: str) -> Event:
    return (kind, {"ticket_id": ticket_id, "number": number, "by": AUTHOR})


def test_link_then_unlink_records_it_on_both_tickets() -> None:
    other = ticket("200001", "bob@example.com")
    decided = tickets.change_links(
        given(), ChangeLinks(link=("200001",)), tickets=children(other), by=BY
    )
    assert {n: then(e) for n, e in decided.items()} == {
        "123456": [link_event("TicketLinked", "200001", CHILD_IDS["200001"])],
        "200001": [link_event("TicketLinked", "123456", PARENT_ID)],
    }
    linked = given(*then(decided["123456"]))
    assert linked.links == {"200001"}
    other = ticket("200001", "bob@example.com", *then(decided["200001"]))
    undone = tickets.change_links(
        linked, ChangeLinks(unlink=("200001",)), tickets=children(other), by=BY
    )
    assert {n: then(e) for n, e in undone.items()} == {
        "123456": [link_event("TicketUnlinked", "200001", CHILD_IDS["200001"])],
        "200001": [link_event("TicketUnlinked", "123456", PARENT_ID)],
    }
    assert given(*then(decided["123456"]), *then(undone["123456"])).links == frozenset()


@pytest.mark.parametrize(
    ("command", "field", "message"),
    [
        (ChangeLinks(), "link", "name tickets"),
        (ChangeLinks(link=("123456",)), "link[0]", "linked to itself"),
        (ChangeLinks(link=("200002",)), "link[0]", "already linked"),
        (ChangeLinks(link=("200001", "200001")), "link[1]", "named twice"),
        (ChangeLinks(unlink=("200001",)), "unlink[0]", "not linked"),
        (ChangeLinks(link=("200001",), unlink=("200001",)), "unlink", "both linked and unlinked"),
    ],
)
def test_link_changes_that_are_refused(command: ChangeLinks, field: str, message: str) -> None:
    state = given(link_event("TicketLinked", "200002", CHILD_IDS["200002"]))
    others = children(ticket("200001", "bob@example.com"), ticket("200002", "eve@example.com"))
    with pytest.raises(ValidationFailed, match=message) as info:
        tickets.change_links(state, command, tickets=others, by=BY)
    assert info.value.details["field"] == field


def test_a_merged_ticket_is_not_linked() -> None:
    merged = ("TicketMerged", {"into_ticket_id": PARENT_ID, "into_number": "777777", "by": AUTHOR})
    other = ticket("200001", "bob@example.com", merged)
    with pytest.raises(ValidationFailed, match="merged into ticket 777777"):
        tickets.change_links(given(), ChangeLinks(link=("200001",)), tickets=children(other), by=BY)
