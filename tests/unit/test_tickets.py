"""open_ticket / evolve: the intake aggregate's decisions."""

from __future__ import annotations

import uuid

import pytest

from libs.events.types import CATALOG
from libs.platform.errors import Conflict, ValidationFailed
from services.intake.domain.tickets import (
    OpenTicket,
    Requester,
    TicketState,
    evolve,
    open_ticket,
    stream_id,
)

TICKET_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
ENTRY_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")


def command(**overrides: object) -> OpenTicket:
    base: dict[str, object] = {
        "subject": "Printer on fire",
        "body": "It is on fire.",
        "requester": Requester("ada@example.com", "Ada"),
        "channel": "api",
    }
    base.update(overrides)
    return OpenTicket(**base)  # type: ignore[arg-type]


def decide(cmd: OpenTicket, state: TicketState | None = None, **kw: object) -> list:
    return open_ticket(
        state or TicketState(),
        cmd,
        ticket_id=TICKET_ID,
        number="123456",
        entry_id=ENTRY_ID,
        **kw,  # type: ignore[arg-type]
    )


def test_opening_emits_exactly_one_ticket_created() -> None:
    events = decide(command(priority="high", help_topic_id=3, fields={"seats": 2}))

    assert [e.type for e in events] == ["TicketCreated"]
    data = events[0].data
    assert data["ticket_id"] == str(TICKET_ID)
    assert data["entry_id"] == str(ENTRY_ID)
    assert data["number"] == "123456"
    assert data["subject"] == "Printer on fire"
    assert data["body"] == "It is on fire."
    assert data["requester"] == {"email": "ada@example.com", "name": "Ada"}
    assert data["priority"] == "high"
    assert data["help_topic_id"] == 3
    assert data["fields"] == {"seats": 2}
    assert data["attachments"] == []


def test_created_event_satisfies_the_catalog_schema() -> None:
    (event,) = decide(command(body_html="<p>x</p>", phone="555", source_ip="192.0.2.1"))
    assert CATALOG.validate(event.type, event.data) == 1


def test_attachment_descriptors_are_carried() -> None:
    described = [
        {"id": "a1", "filename": "a.txt", "content_type": "text/plain", "size": 1, "sha256": "x"}
    ]
    (event,) = decide(command(), attachments=described)
    assert event.data["attachments"] == described


def test_subject_is_trimmed_and_capped_at_255() -> None:
    (event,) = decide(command(subject="  " + "s" * 300 + "  "))
    assert event.data["subject"] == "s" * 255


@pytest.mark.parametrize("subject", ["", "   ", "\n\t"])
def test_blank_subject_is_refused(subject: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decide(command(subject=subject))
    assert info.value.details["field"] == "subject"


@pytest.mark.parametrize("body", ["", "   \n"])
def test_blank_message_without_html_is_refused(body: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decide(command(body=body))
    assert info.value.details["field"] == "message"


def test_blank_text_with_html_body_is_accepted() -> None:
    (event,) = decide(command(body="", body_html="<img src='cid:logo'>"))
    assert event.data["body_html"] == "<img src='cid:logo'>"


def test_opening_an_existing_ticket_is_a_conflict() -> None:
    state = TicketState(version=1, ticket_id=TICKET_ID, number="654321")
    with pytest.raises(Conflict) as info:
        decide(command(), state)
    assert info.value.details["number"] == "654321"


def test_evolve_created_then_reopen_is_refused() -> None:
    (event,) = decide(command())
    state = evolve(TicketState(), event.type, event.data, 1)

    assert state == TicketState(1, TICKET_ID, "123456", "open", requester_email="ada@example.com")
    assert state.exists
    with pytest.raises(Conflict):
        decide(command(), state)


def test_evolve_status_change_and_other_events() -> None:
    state = TicketState(1, TICKET_ID, "123456", "open")

    closed = evolve(state, "TicketStatusChanged", {"status": "closed"}, 2)
    assert closed == TicketState(2, TICKET_ID, "123456", "closed")

    noted = evolve(closed, "MessageAppended", {"kind": "note"}, 3)
    assert noted == TicketState(3, TICKET_ID, "123456", "closed")


def test_fresh_state_does_not_exist() -> None:
    assert not TicketState().exists


def test_stream_id() -> None:
    assert stream_id(TICKET_ID) == f"ticket-{TICKET_ID}"
