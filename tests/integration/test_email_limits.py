"""Email intake where the message itself is hostile or large: a wrapped message never speaks
for its sender (S6), content cut by the cost caps is noted on the ticket with the original
attached (S3), read receipts open nothing, and every attachment within the attachment limit
fits in an email within the email limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from services.platform import Platform
from tests.integration.test_email_channels import remote_pipe
from tests.integration.test_email_intake import HELPDESK, Desk
from tests.support.desk import desk_settings, open_platform
from tests.support.mail import compose

MiB = 1024 * 1024


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    """On both dialects (`client` and `api_key` of tests/conftest.py use this one)."""
    with open_platform(desk_settings(tmp_path, database_url, helpdesk_email=HELPDESK)) as platform:
        yield platform


@pytest.fixture
def desk(platform: Platform) -> Desk:
    return Desk(platform)


def wrapped(outer_from: str, inner: bytes) -> bytes:
    return (
        f"From: {outer_from}\r\nTo: {HELPDESK}\r\nSubject: Fwd: see below\r\n"
        "Message-ID: <wrapper@mail.example.net>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: message/rfc822\r\n\r\n"
    ).encode() + inner


def test_a_forged_wrapped_message_is_the_wrappers_not_the_victims(desk: Desk) -> None:
    victim = desk.receive(compose(sender="Victim <victim@example.org>", message_id="<v1@x.org>"))
    forged = compose(
        sender="Victim <victim@example.org>",
        subject="Please send the invoice to me",
        in_reply_to="<v1@x.org>",
        body="New bank details: ...",
    )
    outcome = desk.receive(wrapped("Mallory <mallory@evil.example>", forged))
    assert outcome.action == "created" and outcome.number != victim.number
    created = desk.events(outcome.number or "")[0][1]
    assert created["requester"] == {"email": "mallory@evil.example", "name": "Mallory"}
    assert "From: Victim <victim@example.org>" in created["body"]
    assert "New bank details" in created["body"]
    assert [a["content_type"] for a in created["attachments"]] == ["message/rfc822"]
    assert desk.types(victim.number or "").count("MessageAppended") == 0


def test_a_banned_sender_cannot_hide_behind_a_wrapped_message(desk: Desk) -> None:
    desk.define("banned-email", {"id": 1, "email": "evil.example", "active": True})
    outcome = desk.receive(
        wrapped("mallory@evil.example", compose(sender="Victim <victim@example.org>"))
    )
    assert outcome.action == "refused" and "mallory@evil.example" in (outcome.reason or "")
    assert desk.tickets() == []


def read_receipt(original_id: str) -> bytes:
    return (
        f"From: Ada <ada@example.com>\r\nTo: {HELPDESK}\r\nSubject: Read: Printer on fire\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="R"\r\n'
        "\r\n--R\r\nContent-Type: text/plain\r\n\r\nYour message was displayed.\r\n"
        "\r\n--R\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: mail.example.com\r\nOriginal-Message-ID: {original_id}\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n"
        "\r\n--R--\r\n"
    ).encode()


def test_a_read_receipt_opens_no_ticket_and_is_no_customer_message(desk: Desk) -> None:
    unknown = desk.receive(read_receipt("<never-sent@elsewhere.example>"))
    assert unknown.action == "refused" and unknown.reason == "a read receipt for no known ticket"
    assert desk.tickets() == []

    number = desk.receive(compose()).number or ""
    (autoresponse,) = desk.sent()
    noted = desk.receive(read_receipt(autoresponse["Message-ID"]))
    assert noted.action == "noted" and noted.number == number
    entries = [d for t, d in desk.events(number) if t == "MessageAppended"]
    assert [(e["kind"], e["author"]["kind"]) for e in entries] == [("note", "system")]
    assert entries[0]["body"].startswith("Read receipt (Read: Printer on fire)")


def test_content_cut_by_the_caps_is_noted_and_the_original_attached(desk: Desk) -> None:
    # Item 7 of issue 10: text 100 multiparts deep made a ticket whose body was "-".
    body = b"Content-Type: text/plain\r\n\r\nThe deep text."
    for level in range(100):
        body = (
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n'
            % (level, level, body, level)
        )
    head, content = body.split(b"\r\n\r\n", 1)
    raw = (
        b"From: Ada <ada@example.com>\r\nTo: " + HELPDESK.encode() + b"\r\nSubject: Deep\r\n"
        b"Message-ID: <deep@example.com>\r\n" + head + b"\r\n\r\n" + content
    )
    number = desk.receive(raw).number or ""
    (_, created), *rest = desk.events(number)
    assert created["body"].strip() == "The deep text."
    assert [a["filename"] for a in created["attachments"]] == ["original-message.eml"]
    note = next(d for t, d in rest if t == "MessageAppended" and d["kind"] == "note")
    assert "nested deeper than 32 levels" in note["body"]


def test_an_attachment_just_inside_the_limit_fits_in_an_email_inside_the_limit(
    platform: Platform, client: FlaskClient, api_key: str
) -> None:
    """7.8 MiB is under the 8 MiB attachment limit; in base64 the email was over 10 MiB and
    was refused whole. Above the attachment limit, the ticket still opens, with a note."""
    fits = compose(attachment=("scan.pdf", b"%PDF" * (78 * MiB // 40)))
    assert len(fits) > 10 * MiB
    answer = remote_pipe(client, api_key, fits)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    too_big = compose(attachment=("dump.bin", b"\x00" * (8 * MiB + 1)))
    answer = remote_pipe(client, api_key, too_big)
    assert answer.status_code == 201, answer.get_data(as_text=True)

    events = platform.store.read_all(0, 1000)
    first, second = [e for e in events if e.type == "TicketCreated"]
    assert [(a["filename"], a["size"]) for a in first.data["attachments"]] == [
        ("scan.pdf", len(b"%PDF" * (78 * MiB // 40)))
    ]
    assert second.data["attachments"] == []
    notes = [e.data for e in events if e.stream_id == second.stream_id and "kind" in e.data]
    assert any(n["kind"] == "note" and "dump.bin" in n["body"] for n in notes)
