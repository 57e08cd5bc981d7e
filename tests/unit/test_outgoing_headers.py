"""Outgoing mail headers (RELIABILITY.md S5): whatever a sender put in a subject or a name, the
desk's mail carries exactly its own headers, to exactly the validated recipient, and a value
that is itself an encoded word hiding CR/LF reads back as that literal text, never as a Bcc:
and a body. Read back with the same parser a receiving Python program would use."""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notify.domain.headers import (
    TEXT_LIMIT,
    UnsafeAddress,
    header_text,
    identifier,
    safe_address,
)
from services.notify.domain.messages import (
    Outgoing,
    TicketSummary,
    new_ticket_autoresponse,
    over_limit_notice,
)

SENT_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
HIDDEN = "x\r\nBcc: a@evil.example\r\n\r\n<html><body>Click</body></html>"


def b_word(text: str) -> str:
    return f"=?utf-8?B?{base64.b64encode(text.encode()).decode()}?="


def q_word(text: str) -> str:
    return f"=?utf-8?q?{quopri.encodestring(text.encode(), header=True).decode()}?="


ENCODED = b_word(HIDDEN)
DOUBLY_ENCODED = b_word(ENCODED)  # what the mail channel's parser hands on after one decoding
HOSTILE = [
    ENCODED,
    DOUBLY_ENCODED,
    q_word(HIDDEN),
    f"Hello {ENCODED} and {ENCODED}",  # two of them, words around
    f"Printer{ENCODED}",  # glued to a word: Python's parser decodes those too
    "x\r\nBcc: a@evil.example\r\n\r\n<html>",
    "x\nBcc: a@evil.example",
    "x\rBcc: a@evil.example",
    "x\x00Bcc: a@evil.example",
    "x\u2028Bcc: a@evil.example\u2029\u2029<html>",
    "x\x85Bcc: a@evil.example",
    'Ada" <a@evil.example>, "Mallory',
    "Ada, Mallory <a@evil.example>",
    "Zoë (a@evil.example) <a@evil.example>;",
    "\ud800 lone surrogate",
    "é" * 5000 + ENCODED,
    ENCODED * 200,
]
AUTORESPONSE_HEADERS = {
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Date",
    "Auto-Submitted",
    "X-Deskstream-Ticket",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
}
NOTICE_HEADERS = AUTORESPONSE_HEADERS - {"X-Deskstream-Ticket"}


def autoresponse(subject: str, name: str | None, helpdesk_name: str = "Support") -> Outgoing:
    return new_ticket_autoresponse(
        TicketSummary("123456", subject, "ada@example.com", name),
        helpdesk_email="support@deskstream.example",
        helpdesk_name=helpdesk_name,
        msg_id="<abc@deskstream.example>",
        sent_at=SENT_AT,
    )


def notice(subject: str, name: str | None, helpdesk_name: str = "Support") -> Outgoing:
    return over_limit_notice(
        "ada@example.com",
        name,
        subject,
        helpdesk_email="support@deskstream.example",
        helpdesk_name=helpdesk_name,
        msg_id="<abc@deskstream.example>",
        sent_at=SENT_AT,
    )


def wire(outgoing: Outgoing) -> bytes:
    """The bytes smtplib sends (CRLF line ends)."""
    return outgoing.message.as_bytes(policy=email.policy.SMTP)


def on_the_wire(outgoing: Outgoing) -> EmailMessage:
    raw = wire(outgoing)
    head = raw.split(b"\r\n\r\n")[0]
    head.decode("ascii")  # 7-bit headers: nothing for a relay to reinterpret
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def same_name(read: str, sent: str) -> bool:
    """Python's address parser keeps the space between two adjacent encoded words (RFC 2047
    section 6.2 says drop it), so a long display name reads back with a space more where the
    desk split it into encoded words. Mail clients follow the RFC."""
    return read.replace(" ", "") == sent.replace(" ", "")


def assert_only_ours(outgoing: Outgoing, expected_headers: set[str]) -> EmailMessage:
    parsed = on_the_wire(outgoing)
    assert outgoing.recipients == ("ada@example.com",)
    assert outgoing.sender == "support@deskstream.example"
    assert sorted(parsed.keys()) == sorted(expected_headers), "one of each, nothing added"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ada@example.com"]
    assert [a.addr_spec for a in parsed["From"].addresses] == ["support@deskstream.example"]
    assert not parsed.defects
    # The body is the template, as plain text: no part or markup of the sender's making.
    assert parsed.get_content_type() == "text/plain" and not parsed.is_multipart()
    assert parsed.get_content().startswith("Dear ")
    return parsed


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\r\nb", "a b"),
        ("  a \n\n b  ", "a b"),
        ("a\tb\x0bc\x0cd", "a b c d"),
        ("\r\n", ""),
        (None, ""),
        ("plain", "plain"),
        ("a\x00b", "ab"),
        ("a\x1b[31mred", "a[31mred"),  # ESC: no terminal escape either
        ("a\x7fb\x9bc", "abc"),  # DEL and C1 CSI
        ("a\x85b", "a b"),  # NEL, a C1 line break
        ("a\u2028b\u2029c", "a b c"),  # Unicode line and paragraph separators
        ("a\x1cb\x1dc\x1ed\x1fe", "a b c d e"),  # file/group/record/unit separators
        ("a \x00 b", "a b"),
        ("\ud800x", "\ufffdx"),  # a lone surrogate cannot be encoded as UTF-8
        (ENCODED, ENCODED),  # literal text: not decoded
    ],
)
def test_header_text_is_one_line_of_plain_text(raw: str | None, clean: str) -> None:
    assert header_text(raw) == clean


def test_header_text_bounds_a_very_long_value_and_marks_the_cut() -> None:
    cut = header_text("word " * 100_000)
    assert len(cut) == TEXT_LIMIT and cut.endswith("\u2026")
    assert header_text(cut) == cut  # idempotent


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["subject", "name", "helpdesk_name"])
@pytest.mark.parametrize(
    ("compose", "expected_headers", "prefix"),
    [
        (autoresponse, AUTORESPONSE_HEADERS, "[#123456] "),
        (notice, NOTICE_HEADERS, "Open ticket limit reached: "),
    ],
)
def test_no_value_adds_a_header_a_recipient_or_a_body(
    compose: Callable[..., Outgoing],
    expected_headers: set[str],
    prefix: str,
    field: str,
    value: str,
) -> None:
    fields = {"subject": "Printer on fire", "name": "Ada Lovelace", "helpdesk_name": "Support"}
    fields[field] = value
    parsed = assert_only_ours(compose(**fields), expected_headers)

    # Whatever it was, it reads back as the cleaned literal text, an encoded word included.
    assert parsed["Subject"] == header_text(prefix + header_text(fields["subject"]))


def test_an_encoded_word_in_a_subject_is_sent_encoded_and_reads_back_literally() -> None:
    outgoing = autoresponse(DOUBLY_ENCODED, ENCODED)
    raw = wire(outgoing).decode()
    assert DOUBLY_ENCODED not in raw and ENCODED not in raw.split("\r\n\r\n")[0]
    parsed = assert_only_ours(outgoing, AUTORESPONSE_HEADERS)
    assert parsed["Subject"] == f"[#123456] {DOUBLY_ENCODED}"
    assert same_name(parsed["To"].addresses[0].display_name, ENCODED)


def test_plain_values_stay_readable_on_the_wire() -> None:
    raw = wire(autoresponse("Printer on fire", "Ada Lovelace")).decode()
    assert "\r\nSubject: [#123456] Printer on fire\r\n" in raw
    assert "\r\nTo: Ada Lovelace <ada@example.com>\r\n" in raw
    assert raw.startswith("From: Support <support@deskstream.example>\r\n")


@pytest.mark.parametrize(
    ("address", "safe"),
    [
        ("ada@example.com", "ada@example.com"),
        ("o'brien+tag@mail.example.co.uk", "o'brien+tag@mail.example.co.uk"),
        ("ada@exämple.com", "ada@xn--exmple-cua.com"),
    ],
)
def test_safe_address_accepts_one_plain_addr_spec(address: str, safe: str) -> None:
    assert safe_address(address) == safe


@pytest.mark.parametrize(
    "address",
    [
        "ada@example.com\r\nBcc: a@evil.example",
        "ada@example.com\n",
        "ada@example.com\x00",
        "Ada <ada@example.com>",
        "ada@example.com, a@evil.example",
        "ada@example.com a@evil.example",
        '"ada, a@evil.example"@example.com',
        "ada(comment)@example.com",
        f"{b_word('x>, a@evil.example')}@example.com",
        "ada@example.com>",
        "ada@[127.0.0.1]",
        "ada@@example.com",
        "ada@",
        "@example.com",
        "",
        "zoë@example.com",
        "a" * 250 + "@example.com",
        "ada@exa\u2028mple.com",
    ],
)
def test_safe_address_refuses_everything_else(address: str) -> None:
    with pytest.raises(UnsafeAddress):
        safe_address(address)


def test_an_unsafe_recipient_or_helpdesk_address_builds_no_message() -> None:
    with pytest.raises(UnsafeAddress):
        over_limit_notice(
            "ada@example.com, a@evil.example",
            None,
            "x",
            helpdesk_email="support@deskstream.example",
            helpdesk_name="Support",
            msg_id="<abc@deskstream.example>",
            sent_at=SENT_AT,
        )
    with pytest.raises(UnsafeAddress):
        new_ticket_autoresponse(
            TicketSummary("1", "x", "ada@example.com", None),
            helpdesk_email="Support <support@deskstream.example>",
            helpdesk_name="Support",
            msg_id="<abc@deskstream.example>",
            sent_at=SENT_AT,
        )


@pytest.mark.parametrize(
    "msg_id", ["<abc@x.example>\r\nBcc: a@evil.example", "abc@x.example", "<a b@x>", "<a@x>>"]
)
def test_identifier_refuses_anything_but_one_plain_id(msg_id: str) -> None:
    with pytest.raises(ValueError):
        identifier("Message-ID", msg_id)


ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=400) | st.sampled_from(HOSTILE)


@settings(max_examples=300, deadline=None)
@given(
    subject=ANY_TEXT,
    name=st.none() | ANY_TEXT,
    helpdesk_name=ANY_TEXT,
    which=st.sampled_from(["autoresponse", "notice"]),
)
def test_any_text_yields_exactly_our_headers_and_recipient(
    subject: str, name: str | None, helpdesk_name: str, which: str
) -> None:
    if which == "autoresponse":
        outgoing = autoresponse(subject, name, helpdesk_name)
        expected, prefix = AUTORESPONSE_HEADERS, "[#123456] "
    else:
        outgoing = notice(subject, name, helpdesk_name)
        expected, prefix = NOTICE_HEADERS, "Open ticket limit reached: "
    parsed = assert_only_ours(outgoing, expected)

    assert parsed["Subject"] == header_text(prefix + header_text(subject))
    (to,) = parsed["To"].addresses
    assert same_name(to.display_name, header_text(name))
    (sender,) = parsed["From"].addresses
    assert same_name(sender.display_name, header_text(helpdesk_name))
