"""Custom ticket statuses: each status's state, setting one, and who may reopen a ticket in it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from libs.events.types import CATALOG
from libs.events.types.fields import state_of
from libs.platform.errors import Conflict, ValidationFailed
from services.intake.domain import tickets
from services.intake.domain.cloudevents import placement
from services.intake.domain.config_rules import Existing, check, parse
from services.intake.domain.mail.rules import Placement, place_reply
from services.intake.domain.tickets import (
    Actor,
    Assign,
    ChangeStatus,
    TicketState,
    TicketStatus,
    Transfer,
    evolve,
)

BY = Actor(7, "Grace", "grace@example.com")
AUTHOR = BY.as_author()
AWAITING = TicketStatus("awaiting-customer", "open")
DUPLICATE = TicketStatus("duplicate", "closed", reopenable=False)
ON_HOLD = TicketStatus("on-hold", "closed")
RETIRED = TicketStatus("retired", "closed", active=False)
CUSTOM = {s.name: s for s in (AWAITING, DUPLICATE, ON_HOLD, RETIRED)}


def ticket(*changes: dict[str, Any]) -> TicketState:
    """A routed ticket, then these TicketStatusChanged events (checked against the catalog)."""
    state = evolve(
        TicketState(),
        "TicketCreated",
        {"ticket_id": str(uuid.uuid4()), "number": "123456", "requester": {"email": "a@b.co"}},
        1,
    )
    state = evolve(state, "TicketRouted", {"department_id": 1, "priority": "normal"}, 2)
    for version, data in enumerate(changes, start=3):
        data = {"previous": state.status, "by": AUTHOR, **data}
        CATALOG.validate("TicketStatusChanged", data)
        state = evolve(state, "TicketStatusChanged", data, version)
    return state


def set_status(state: TicketState, name: str) -> dict[str, Any]:
    (event,) = tickets.change_status(state, ChangeStatus(name), by=BY, custom=CUSTOM)
    CATALOG.validate(event.type, event.data)
    return event.data


# -- the state of a status ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "expected"),
    [
        ("open", None, "open"),
        ("resolved", None, "closed"),
        ("closed", None, "closed"),
        ("archived", None, "archived"),
        ("deleted", None, "deleted"),
        ("awaiting-customer", "open", "open"),
        ("duplicate", "closed", "closed"),
        ("from-the-future", None, "open"),  # no state recorded: stays in view
    ],
)
def test_an_events_state_is_its_own_or_the_built_in_statuss(
    status: str, state: str | None, expected: str
) -> None:
    assert state_of(status, state) == expected


def test_an_old_status_change_without_a_state_reads_as_the_built_in_one() -> None:
    closed = ticket({"status": "resolved"})
    assert (closed.status, closed.state, closed.reopenable) == ("resolved", "closed", True)
    archived = ticket({"status": "archived"})
    assert (archived.state, archived.reopenable) == ("archived", False)
    # A state built by hand from a status name means the built-in status.
    assert TicketState(version=2, status="closed").reopenable


# -- setting a status ---------------------------------------------------------------------------


def test_a_custom_status_is_recorded_with_its_state() -> None:
    assert set_status(ticket(), "awaiting-customer") == {
        "status": "awaiting-customer",
        "state": "open",
        "previous": "open",
        "reason": None,
        "by": AUTHOR,
    }
    data = set_status(ticket(), "duplicate")
    assert (data["status"], data["state"], data["reopenable"]) == ("duplicate", "closed", False)
    assert set_status(ticket(), "resolved")["state"] == "closed"  # built-ins carry it too


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-such-status", "or a ticket status an admin defined"),
        ("deleted", "or a ticket status an admin defined"),
        ("retired", "retired is not active"),
    ],
)
def test_an_unknown_or_inactive_status_is_refused(name: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        set_status(ticket(), name)
    assert caught.value.details["field"] == "status"


def test_setting_the_current_custom_status_again_is_refused() -> None:
    state = ticket(set_status(ticket(), "awaiting-customer"))
    with pytest.raises(ValidationFailed, match="already awaiting-customer"):
        set_status(state, "awaiting-customer")


# -- reopening ----------------------------------------------------------------------------------


def test_a_non_reopenable_closed_status_is_neither_assigned_nor_transferred() -> None:
    state = ticket(set_status(ticket(), "duplicate"))
    assert (state.state, state.reopenable) == ("closed", False)
    with pytest.raises(Conflict, match="duplicate, which does not reopen"):
        tickets.assign(state, Assign(agent_id=3), by=BY)
    with pytest.raises(Conflict, match="cannot be transferred"):
        tickets.transfer(state, Transfer(department_id=2), by=BY)


def test_a_reopenable_custom_closed_status_reopens_on_assignment() -> None:
    state = ticket(set_status(ticket(), "on-hold"))
    _, reopened = tickets.assign(state, Assign(agent_id=3), by=BY)
    assert reopened.data["status"] == "open" and reopened.data["previous"] == "on-hold"
    assert evolve(state, reopened.type, reopened.data, 4).state == "open"


def test_an_open_state_custom_status_needs_no_reopening() -> None:
    state = ticket(set_status(ticket(), "awaiting-customer"))
    assert [e.type for e in tickets.assign(state, Assign(agent_id=3), by=BY)] == ["TicketAssigned"]


@pytest.mark.parametrize(
    ("status", "automatic", "expected"),
    [
        ("awaiting-customer", False, Placement.APPEND),
        ("on-hold", False, Placement.REOPEN),
        ("on-hold", True, Placement.APPEND),
        ("duplicate", False, Placement.NEW_TICKET),
    ],
)
def test_where_a_reply_to_a_custom_status_goes(
    status: str, automatic: bool, expected: Placement
) -> None:
    state = ticket(set_status(ticket(), status))
    where = place_reply(
        state, department_status="active", help_topic_status=None, automatic=automatic
    )
    assert where is expected
    if not automatic:  # an external system's correlated event follows the same rule
        assert placement(state, department_status="active", help_topic_status=None) is expected


# -- defining a status --------------------------------------------------------------------------

NAMED = Existing(status_names={"awaiting-customer": 1})


def defined(body: dict[str, Any], thing_id: int = 2) -> dict[str, Any]:
    return {"id": thing_id, **parse("ticket-status", body).data}


def test_a_definition_defaults_to_reopenable_and_active() -> None:
    data = defined({"name": "duplicate", "state": "closed"})
    assert data == {
        "id": 2,
        "name": "duplicate",
        "state": "closed",
        "reopenable": True,
        "active": True,
    }
    check("ticket-status", data, NAMED)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Awaiting Customer", "state": "open"},
        {"name": "awaiting-", "state": "open"},
        {"name": "x" * 41, "state": "open"},
        {"name": "gone", "state": "deleted"},
        {"name": "gone", "state": "open", "colour": "red"},
    ],
)
def test_a_malformed_definition_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        parse("ticket-status", body)


@pytest.mark.parametrize(
    ("body", "thing_id", "message"),
    [
        ({"name": "resolved", "state": "closed"}, 2, "resolved is a built-in status"),
        ({"name": "deleted", "state": "archived"}, 2, "deleted is a built-in status"),
        ({"name": "awaiting-customer", "state": "open"}, 2, "already called awaiting-customer"),
        ({"name": "waiting-on-customer", "state": "open"}, 1, "tickets record it by name"),
    ],
)
def test_names_are_unique_reserved_and_kept(
    body: dict[str, Any], thing_id: int, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        check("ticket-status", defined(body, thing_id), NAMED)
    assert caught.value.details["field"] == "name"


def test_redefining_a_status_under_its_own_name_is_fine() -> None:
    data = defined({"name": "awaiting-customer", "state": "open", "active": False}, 1)
    check("ticket-status", data, NAMED)
