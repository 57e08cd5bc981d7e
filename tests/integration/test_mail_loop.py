"""Outgoing mail a robot could answer, in-process on both dialects (RELIABILITY.md S4, S5):
a vacation responder or a flooding script gets at most one autoresponse per window and the loop
opens at most one ticket; CR/LF in what a sender writes never reaches the SMTP transcript.

The clock is injected, so "after the window" is a clock advance, not a ten-minute wait."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.events.clock import FakeClock
from libs.platform.settings import Settings
from services import migrations
from services.intake.config import seed_defaults
from services.platform import Platform
from tests.integration.test_email_intake import HELPDESK, Desk
from tests.support.mail import compose
from tests.support.servers import SmtpSink

ROBOT = "Robot <robot@example.com>"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def platform(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Platform]:
    settings = replace(
        Settings(), database_url=database_url, data_dir=tmp_path, helpdesk_email=HELPDESK
    )
    assert settings.autoresponse_window_s == 600  # the default is what is under test
    platform = Platform.build(settings, clock)
    migrations.upgrade(platform.engine)
    seed_defaults(platform.store)
    yield platform
    platform.close()


@pytest.fixture
def desk(platform: Platform, tmp_path: Path) -> Desk:
    return Desk(platform)


def autoresponses_to(desk: Desk, address: str) -> list[str]:
    """Subjects of the autoresponses `address` received, in the order they were sent."""
    return [m["Subject"] for m in desk.sent() if m["To"].addresses[0].addr_spec == address]


def suppressed(desk: Desk) -> list[dict[str, Any]]:
    store = desk.platform.store
    return [e.data for e in store.read_all(0, 100_000) if e.type == "NotificationSuppressed"]


def test_a_robot_writing_new_mail_gets_one_autoresponse_per_window(
    desk: Desk, clock: FakeClock
) -> None:
    numbers = []
    for subject in ("Status report", "Disk almost full", "Backup finished"):
        numbers.append(desk.receive(compose(sender=ROBOT, subject=subject)).number)
        clock.advance(timedelta(seconds=20))  # three new emails within a minute
    assert len(set(numbers)) == 3, "each is a new email: a ticket each"
    assert autoresponses_to(desk, "robot@example.com") == [f"[#{numbers[0]}] Status report"]

    held = suppressed(desk)
    assert [(h["recipient"], h["template"]) for h in held] == [
        ("robot@example.com", "ticket.autoresponse")
    ] * 2
    assert "20 s ago" in held[0]["reason"] and "40 s ago" in held[1]["reason"]

    # Somebody else is not held back by the robot's window.
    ada = desk.receive(compose(subject="Printer on fire")).number
    assert autoresponses_to(desk, "ada@example.com") == [f"[#{ada}] Printer on fire"]

    clock.advance(timedelta(minutes=10))  # the first autoresponse is now out of the window
    later = desk.receive(compose(sender=ROBOT, subject="Status report again")).number
    assert autoresponses_to(desk, "robot@example.com") == [
        f"[#{numbers[0]}] Status report",
        f"[#{later}] Status report again",
    ]
    assert len(suppressed(desk)) == 2


def test_a_vacation_responder_answering_the_autoresponse_opens_no_second_ticket(
    desk: Desk, clock: FakeClock
) -> None:
    number = desk.receive(compose(sender=ROBOT, subject="Invoice 42")).number
    (autoresponse,) = desk.sent()
    for _ in range(3):  # a responder that looks human (no auto-reply header or subject)
        clock.advance(timedelta(seconds=5))
        vacation = compose(
            sender=ROBOT,
            subject=f"Re: {autoresponse['Subject']}",
            body="I am away until Monday.\n",
            in_reply_to=autoresponse["Message-ID"],
        )
        assert desk.receive(vacation).number == number
    assert desk.tickets() == [number]
    assert len(desk.sent()) == 1


def test_the_over_limit_notice_shares_the_window(platform: Platform, tmp_path: Path) -> None:
    platform.settings = replace(platform.settings, max_open_tickets=1)
    desk = Desk(platform)
    desk.receive(compose(sender=ROBOT, subject="First"))
    refused = desk.receive(compose(sender=ROBOT, subject="Second"))
    assert refused.action == "refused"
    assert [m["Subject"] for m in desk.sent()] == [f"[#{desk.tickets()[0]}] First"]
    (held,) = suppressed(desk)
    assert held["template"] == "email.over_limit" and held["ticket_id"] is None


def encoded(text: str) -> str:
    """An RFC 2047 encoded word: how CR/LF can hide in a header until it is decoded."""
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


INJECTION = "\r\nBcc: attacker@evil.example\r\nX-Injected: yes"


def test_cr_lf_from_a_sender_never_reaches_the_smtp_transcript(
    platform: Platform, tmp_path: Path, smtp: SmtpSink
) -> None:
    """Both autoresponse templates, through a real SMTP server: one recipient, no new header."""
    platform.settings = replace(
        platform.settings, max_open_tickets=1, autoresponse_window_s=0, smtp_url=smtp.url
    )
    desk = Desk(platform)
    # No address in the name's payload: that is S6's business (the sender must stay Ada).
    name = encoded("Ada\r\nX-Injected: yes")

    def sneaky(subject: str) -> bytes:  # raw: a mail library would refuse to write it
        return (
            f"From: {name} <ada@example.com>\r\nReply-To: {name} <ada@example.com>\r\n"
            f"To: {HELPDESK}\r\nSubject: {encoded(subject + INJECTION)}\r\n"
            f"Message-ID: <{subject}@mail.example.com>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHelp.\r\n"
        ).encode()

    desk.receive(sneaky("Printer"))
    desk.receive(sneaky("Again"))  # over the limit: the notice

    mails = smtp.wait_for(2, timeout=5)
    assert len(mails) == 2
    for mail in mails:
        assert mail.rcpt_tos == ("ada@example.com",)
        assert mail.message.get_all("Bcc") is None
        assert mail.message.get_all("X-Injected") is None
        assert len(mail.message.get_all("To") or []) == 1
        assert [a.addr_spec for a in mail.message["To"].addresses] == ["ada@example.com"]
        assert "\n" not in mail.message["Subject"] and "\r" not in mail.message["Subject"]
    subjects = sorted(str(m.message["Subject"]).strip() for m in mails)  # a long one is folded
    assert subjects[0].startswith("Open ticket limit reached: Again")
    assert subjects[1].startswith("[#") and "Printer" in subjects[1]
