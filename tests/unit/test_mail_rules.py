"""Email intake's rules, as functions of their inputs: no database, no mail server."""

from __future__ import annotations

import uuid

import pytest

from services.intake.domain.mail import rules
from services.intake.domain.mail.parsed import Mailbox, ParsedEmail
from services.intake.domain.mail.rules import Placement
from services.intake.domain.tickets import TicketState

PATTERN = rules.subject_number_pattern("[#{number}]")


def mail(**fields: object) -> ParsedEmail:
    base: dict[str, object] = {
        "message_id": "<m@x>",
        "subject": "Help",
        "sender": Mailbox("ada@example.com", "Ada"),
        "body": "hi",
    }
    return ParsedEmail(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "numbers"),
    [
        ("Re: [#123456] Printer", ["123456"]),
        ("[#123456]", ["123456"]),
        ("Fwd: Re: [#111111] old [#222222] new", ["222222", "111111"]),
        ("Re: [# 654321 ] spaced", ["654321"]),
        ("Ticket #123456 without brackets", []),
        ("[#] empty", []),
    ],
)
def test_ticket_numbers_in_the_subject(subject: str, numbers: list[str]) -> None:
    assert rules.subject_numbers(subject, PATTERN) == numbers


def test_a_custom_number_format() -> None:
    pattern = rules.subject_number_pattern("Ticket {number}:")
    assert rules.subject_numbers("Re: Ticket ABC-42: VPN", pattern) == ["ABC-42"]


def test_reply_candidates_put_the_most_recent_parent_first_and_skip_the_mail_itself() -> None:
    email = mail(
        message_id="<self@x>",
        in_reply_to=("<parent@x>",),
        references=("<root@x>", "<middle@x>", "<parent@x>", "<self@x>"),
    )
    assert rules.reply_candidates(email) == ["<parent@x>", "<middle@x>", "<root@x>"]


def test_replies_go_to_reply_to_when_the_sender_set_one() -> None:
    assert rules.requester(mail()) == Mailbox("ada@example.com", "Ada")
    other = Mailbox("team@example.com", "Team")
    assert rules.requester(mail(reply_to=other)) == other


def test_an_address_a_ticket_could_not_store_is_not_a_requester() -> None:
    unusable = Mailbox("xxxxx@xxxxx")  # no dot in the domain (corpus mime_emails/raw_email11)
    assert rules.requester(mail(reply_to=unusable)) == Mailbox("ada@example.com", "Ada")
    assert rules.requester(mail(sender=unusable)) is None


STATE = TicketState(
    version=3,
    ticket_id=uuid.uuid4(),
    number="123456",
    requester_email="ada@example.com",
    collaborators=frozenset({"bob@example.com"}),
)


def test_only_people_on_the_ticket_may_thread_by_number() -> None:
    assert rules.may_write(STATE, "Ada@Example.com")
    assert rules.may_write(STATE, "bob@example.com")
    assert not rules.may_write(STATE, "mallory@example.com")


@pytest.mark.parametrize(
    ("status", "department", "topic", "automatic", "placement"),
    [
        ("open", "active", "active", False, Placement.APPEND),
        ("closed", "active", "active", False, Placement.REOPEN),
        ("resolved", "active", None, False, Placement.REOPEN),
        ("closed", "disabled", "active", False, Placement.REOPEN),  # disabled still reopens
        ("closed", "archived", "active", False, Placement.NEW_TICKET),
        ("closed", "active", "archived", False, Placement.NEW_TICKET),
        ("archived", "active", "active", False, Placement.NEW_TICKET),
        ("open", "archived", "active", False, Placement.APPEND),
        ("closed", "active", "active", True, Placement.APPEND),  # auto-replies never reopen
    ],
)
def test_where_a_reply_goes(
    status: str, department: str, topic: str | None, automatic: bool, placement: Placement
) -> None:
    state = TicketState(version=2, status=status)
    assert (
        rules.place_reply(
            state, department_status=department, help_topic_status=topic, automatic=automatic
        )
        is placement
    )


def test_recipients_split_into_the_desks_addresses_and_people() -> None:
    email = mail(
        to=(Mailbox("support@desk.example"), Mailbox("bob@example.com", "Bob")),
        cc=(Mailbox("carol@example.com"), Mailbox("Sales@Desk.example")),
        delivered_to=(Mailbox("carol@example.com"),),
    )
    split = rules.split_recipients(email, ["support@desk.example", "sales@desk.example"])
    assert split.system == ("support@desk.example", "sales@desk.example")
    # Carol's copy was delivered to her: she is not asked to join (osTicket's delivered-to).
    assert split.others == (Mailbox("bob@example.com", "Bob"),)


def test_collaborators_join_only_mail_sent_to_the_desk_and_only_once() -> None:
    to_desk = rules.Recipients(("support@desk.example",), (Mailbox("bob@example.com"),))
    assert rules.new_collaborators(to_desk, on_ticket=[], enabled=True) == [
        Mailbox("bob@example.com")
    ]
    assert rules.new_collaborators(to_desk, on_ticket=["BOB@example.com"], enabled=True) == []
    assert rules.new_collaborators(to_desk, on_ticket=[], enabled=False) == []
    copied = rules.Recipients((), (Mailbox("bob@example.com"),))
    assert rules.new_collaborators(copied, on_ticket=[], enabled=True) == []


def test_the_first_desk_address_with_a_department_picks_it() -> None:
    emails = {"sales@desk.example": 2, "billing@desk.example": 3}
    assert rules.department_for(["support@desk.example", "billing@desk.example"], emails) == 3
    assert rules.department_for(["support@desk.example"], emails) is None


def test_one_email_adds_at_most_the_cap_of_collaborators_and_counts_the_rest() -> None:
    people = [Mailbox(f"p{n}@example.com") for n in range(2000)]
    kept, left_out = rules.cap_collaborators(people, 20)
    assert kept == people[:20] and left_out == 1980
    assert rules.cap_collaborators(people[:3], 20) == (people[:3], 0)
    assert rules.cap_collaborators(people, 0) == (people, 0)  # 0: no cap


@pytest.mark.parametrize(
    ("bounce", "delivery_report", "report"),
    [(True, True, True), (False, True, True), (False, False, False)],
)
def test_delivery_reports_of_any_kind_never_open_tickets(
    bounce: bool, delivery_report: bool, report: bool
) -> None:
    email = mail(bounce=bounce, delivery_report=delivery_report)
    assert rules.is_delivery_report(email) is report
