"""The new-ticket autoresponse: no header injection, deterministic Message-ID, RFC 3834."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from libs.platform.message_ids import ticket_of
from services.notify.domain.messages import (
    TicketSummary,
    message_id,
    new_ticket_autoresponse,
)

SENT_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
INJECTION = "\r\nBcc: attacker@evil.example\r\nX-Injected: yes"


def compose(ticket: TicketSummary, helpdesk_name: str = "Deskstream Support") -> EmailMessage:
    return new_ticket_autoresponse(
        ticket,
        helpdesk_email="support@deskstream.example",
        helpdesk_name=helpdesk_name,
        msg_id="<abc@deskstream.example>",
        sent_at=SENT_AT,
    ).message


def on_the_wire(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(bytes(message), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def assert_not_injected(parsed: EmailMessage) -> None:
    assert parsed.get_all("Bcc") is None
    assert parsed.get_all("Cc") is None
    assert parsed.get_all("X-Injected") is None
    assert len(parsed.get_all("To")) == 1
    (to,) = parsed["To"].addresses
    assert to.addr_spec == "ada@example.com"


def ticket(**overrides: str | None) -> TicketSummary:
    base: dict[str, str | None] = {
        "number": "123456",
        "subject": "Printer on fire",
        "requester_email": "ada@example.com",
        "requester_name": "Ada Lovelace",
    }
    base.update(overrides)
    return TicketSummary(**base)  # type: ignore[arg-type]


def test_autoresponse_headers() -> None:
    parsed = on_the_wire(compose(ticket()))

    assert parsed["Subject"] == "[#123456] Printer on fire"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Message-ID"] == "<abc@deskstream.example>"
    assert parsed["X-Deskstream-Ticket"] == "123456"
    assert parsed["From"].addresses[0].addr_spec == "support@deskstream.example"
    assert parsed["From"].addresses[0].display_name == "Deskstream Support"
    assert parsed["To"].addresses[0].display_name == "Ada Lovelace"
    assert parsed["Date"].datetime == SENT_AT
    body = parsed.get_content()
    assert "Dear Ada Lovelace," in body
    assert "#123456" in body


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hello" + INJECTION},
        {"subject": "Hello\nBcc: attacker@evil.example"},
        {"subject": "Hello\rBcc: attacker@evil.example"},
        {"requester_name": "Ada" + INJECTION},
        {"requester_name": "Ada, Mallory <attacker@evil.example>"},
        {"requester_name": 'Ada" <attacker@evil.example>, "x'},
    ],
)
def test_cr_lf_in_fields_never_adds_a_header_or_recipient(overrides: dict[str, str]) -> None:
    parsed = on_the_wire(compose(ticket(**overrides)))

    assert_not_injected(parsed)
    assert parsed["Subject"].startswith("[#123456] ")
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


def test_cr_lf_in_helpdesk_name_is_flattened() -> None:
    parsed = on_the_wire(compose(ticket(), helpdesk_name="Support" + INJECTION))

    assert_not_injected(parsed)
    assert len(parsed.get_all("From")) == 1


@pytest.mark.parametrize(
    "bad_email",
    ["ada@example.com" + INJECTION, "ada@example.com\nBcc: attacker@evil.example"],
)
def test_cr_lf_in_email_is_refused_rather_than_sent(bad_email: str) -> None:
    with pytest.raises(ValueError):
        compose(ticket(requester_email=bad_email))


def test_missing_requester_name_greets_generically() -> None:
    parsed = on_the_wire(compose(ticket(requester_name=None)))

    assert parsed["To"].addresses[0].addr_spec == "ada@example.com"
    assert "Dear there," in parsed.get_content()


BASE = ("6f1e4d1c-0000-4000-8000-000000000001", "ada@example.com", "new_ticket", "desk.example")
TICKET = uuid.UUID("0b7c2a9e-0000-4000-8000-00000000000a")
SIGNED = {"ticket_id": TICKET, "secret": "s3cret"}


def test_message_id_is_deterministic_and_uses_the_domain() -> None:
    first = message_id(*BASE, **SIGNED)
    assert first == message_id(*BASE, **SIGNED)
    assert first.startswith("<") and first.endswith("@desk.example>")


@pytest.mark.parametrize(
    "changed",
    [
        ("6f1e4d1c-0000-4000-8000-000000000002", *BASE[1:]),
        (BASE[0], "bob@example.com", *BASE[2:]),
        (*BASE[:2], "new_message", BASE[3]),
    ],
)
def test_message_id_differs_when_event_recipient_or_template_differs(
    changed: tuple[str, str, str, str],
) -> None:
    assert message_id(*changed, **SIGNED) != message_id(*BASE, **SIGNED)


def test_message_id_ignores_recipient_case() -> None:
    assert message_id(BASE[0], "ADA@Example.com", *BASE[2:], **SIGNED) == message_id(
        *BASE, **SIGNED
    )


def test_a_reply_to_a_sent_message_names_its_ticket_only_when_the_signature_holds() -> None:
    sent = message_id(*BASE, **SIGNED)
    assert ticket_of(sent, "s3cret") == TICKET
    assert ticket_of(sent.upper(), "s3cret") == TICKET  # some clients change case
    assert ticket_of(sent, "another secret") is None
    forged = sent.replace(TICKET.hex, uuid.UUID(int=7).hex)
    assert ticket_of(forged, "s3cret") is None
    assert ticket_of("<CAF123@mail.gmail.com>", "s3cret") is None
