"""Hostile mail headers and hostile CloudEvents, on both dialects: raw RFC 822 through
`POST /api/tickets.email` and the pipe path (in process), CloudEvents in structured and binary
mode through `POST /api/v1/events` with event mappings defined. Each is accepted or refused
(4xx, or a logged refusal), never a 5xx or an exception the MTA would retry forever; nothing
accepted stops a subscription; no autoresponse or over-limit notice carries a header or a
recipient the sender injected. The JSON/XML/agent-command side: test_hostile_input.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from services.intake.email_intake import receive_email
from tests.integration.test_cloudevents_in import ALERTS, STRUCTURED, alert
from tests.integration.test_email_intake import HELPDESK
from tests.integration.test_hostile_input import SETTINGS, settled_with
from tests.support.hostile import (
    EMAILS,
    INJECTION,
    Watch,
    answered_sanely,
    dumps,
    encoded_word,
    header_safe,
    hostile_strings,
    hostile_values,
    nested,
    short,
    unique,
    watched_desk,
)
from tests.support.mail import compose

# -- mail ---------------------------------------------------------------------------------------

MAIL_SLOTS = [
    "from_name", "from_addr", "to", "cc", "reply_to", "subject", "message_id", "in_reply_to",
    "references", "date", "content_type", "transfer_encoding", "filename", "body",
    "auto_submitted",
]  # fmt: skip
MALFORMED_MIME = [
    b"Content-Type: multipart/mixed\r\n\r\n--x\r\nno boundary parameter\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
    b"never closed",
    b"Content-Type: message/rfc822\r\n\r\nFrom: victim@example.com\r\nSubject: inner\r\n\r\nforged",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    + b'--b\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' * 200
    + b"--b--\r\n",
    b"Content-Type: multipart/report; report-type=disposition-notification; boundary=r\r\n\r\n"
    b"--r\r\nContent-Type: message/disposition-notification\r\n\r\nDisposition: displayed\r\n--r--\r\n",
    b"Content-Type: text/html; charset=utf-8\r\n\r\n" + b"<div>" * 3000 + b"deep",
]


def _header(value: str) -> bytes:
    """A header value as raw bytes: lone surrogates become invalid UTF-8, CR/LF stay."""
    return value.encode("utf-8", "surrogatepass")


@st.composite
def raw_mails(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """(a raw message, what is hostile in it) with hostile values in some of its slots."""
    sender = f"{unique('mail')}@example.com"
    if draw(st.integers(0, 5)) == 0:  # one known sender: the open-ticket limit's notice
        sender = "repeat@example.com"
    slots = set(draw(st.lists(st.sampled_from(MAIL_SLOTS), min_size=1, max_size=4, unique=True)))
    value: dict[str, Any] = {s: draw(hostile_strings()) for s in slots}
    if "from_addr" in value and draw(st.booleans()):
        value["from_addr"] = draw(st.sampled_from(EMAILS))
    if "subject" in value and draw(st.booleans()):
        value["subject"] = encoded_word(INJECTION) if draw(st.booleans()) else INJECTION

    def slot(name: str, default: str) -> bytes:
        return _header(value.get(name, default))

    lines = [
        b"From: " + slot("from_name", "Ada") + b" <" + slot("from_addr", sender) + b">",
        b"To: " + slot("to", HELPDESK),
        b"Subject: " + slot("subject", "Printer on fire"),
        b"Message-ID: " + slot("message_id", f"<{unique('m')}@mail.example.com>"),
        b"Date: " + slot("date", "Mon, 5 Jan 2026 09:00:00 +0000"),
    ]
    for name, header in (
        ("cc", b"Cc"), ("reply_to", b"Reply-To"), ("in_reply_to", b"In-Reply-To"),
        ("references", b"References"), ("auto_submitted", b"Auto-Submitted"),
    ):  # fmt: skip
        if name in value:
            lines.append(header + b": " + _header(value[name]))
    if draw(st.integers(0, 4)) == 0:
        value["mime"] = draw(st.sampled_from(MALFORMED_MIME))
        return b"\r\n".join(lines) + b"\r\n" + value["mime"], {"sender": sender, **value}
    boundary = b"hostile-boundary"
    lines += [
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"',
        b"",
        b"--" + boundary,
        b"Content-Type: " + slot("content_type", "text/plain; charset=utf-8"),
        b"Content-Transfer-Encoding: " + slot("transfer_encoding", "8bit"),
        b"",
        slot("body", "It is on fire."),
        b"--" + boundary,
        b"Content-Type: application/octet-stream",
        b'Content-Disposition: attachment; filename="' + slot("filename", "smoke.txt") + b'"',
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.b64encode(b"smoke"),
        b"--" + boundary + b"--",
        b"",
    ]
    return b"\r\n".join(lines), {"sender": sender, **value}


@pytest.fixture
def mail_desk(database_url: str, tmp_path: Path) -> Iterator[Watch]:
    with watched_desk(database_url, tmp_path, helpdesk_email=HELPDESK, max_open_tickets=1) as desk:
        yield desk


@pytest.mark.parametrize("channel", ["api", "pipe"])
@SETTINGS
@given(mail=raw_mails())
@example(mail=(compose(sender=f"{'é' * 256} <long-name@example.com>"), {"from_name": "é" * 256}))
@example(mail=(compose(sender=f"Ada <{'a' * 250}@example.com>"), {"from_addr": "a" * 250}))
@example(mail=(compose(subject=encoded_word(INJECTION)), {"subject": INJECTION}))  # item 2
def test_hostile_mail_headers(
    mail_desk: Watch, channel: str, mail: tuple[bytes, dict[str, Any]]
) -> None:
    desk, (raw, hostile) = mail_desk, mail
    note(f"{channel} hostile={short(hostile)}")
    dead = desk.dead_letters()
    number: str | None = None
    if channel == "api":
        response = desk.client.post(
            "/api/tickets.email",
            data=raw,
            content_type="message/rfc822",
            headers={"X-API-Key": desk.api_key},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        answered_sanely(response)
        if response.status_code == 201:
            assert response.text.strip(), "201 without a ticket number"
            number = response.text
    else:  # `deskstream pipe` in process: an exception here is exit 75, a retry forever
        outcome = receive_email(desk.platform, raw, channel="pipe")
        assert outcome.action in ("created", "appended", "noted", "duplicate", "refused")
        if outcome.action == "refused":
            assert outcome.refused is not None and outcome.reason, outcome
        else:
            assert outcome.number, f"{outcome.action} without a ticket: {outcome}"
            number = outcome.number
    settled_with(desk, number, dead)


# -- CloudEvents --------------------------------------------------------------------------------

# Every template reads the event's data, so every data field reaches a ticket field.
PEOPLE = {
    "name": "People writing in",
    "type": "com.example.person.wrote",
    "subject": "{data.subject}",
    "body": "{data.body} ({subject}, {time}, {id})",
    "requester_email": "{data.email}",
    "requester_name": "{data.name}",
    "priority": "{data.priority}",
    "help_topic_id": 1,
    "correlation": "person:{data.thread}",
}
ATTRIBUTES = ["id", "source", "type", "subject", "time", "specversion", "datacontenttype",
              "dataschema", "data", "data_base64", "extension"]  # fmt: skip
ALERT_DATA = ["alert_id", "severity", "summary"]
PERSON_DATA = ["subject", "body", "email", "name", "priority", "thread"]


@pytest.fixture
def event_desk(database_url: str, tmp_path: Path) -> Iterator[Watch]:
    with watched_desk(database_url, tmp_path) as desk:
        for mapping in (ALERTS, PEOPLE):
            defined = desk.client.post(
                "/api/v1/event-mappings",
                headers={"Authorization": f"Bearer {desk.agent_token}"},
                json=mapping,
            )
            assert defined.status_code == 201, defined.text
        yield desk


@st.composite
def cloudevents(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        event = alert(unique("evt"), alert_id=unique("alert"))
        data_fields = ALERT_DATA
    else:
        event = {
            **alert(unique("evt")),
            "type": PEOPLE["type"],
            "data": {"subject": "Hello", "body": "Hi", "email": f"{unique('p')}@example.com",
                     "name": "Pat", "priority": "high", "thread": unique("t")},
        }  # fmt: skip
        data_fields = PERSON_DATA
    slots = draw(
        st.lists(st.sampled_from(ATTRIBUTES + [f"data.{f}" for f in data_fields]),
                 min_size=1, max_size=3, unique=True)
    )  # fmt: skip
    for name in slots:
        hostile = draw(hostile_values())
        if name == "source" and draw(st.booleans()):  # still the mapping's prefix: accepted
            hostile = "//monitoring/" + draw(hostile_strings())
        if name == "data.email" and draw(st.booleans()):
            hostile = draw(st.sampled_from(EMAILS))
        if name.startswith("data."):
            if isinstance(event["data"], dict):  # unless "data" itself was replaced
                event["data"][name[5:]] = hostile
        elif name == "extension":
            event[draw(st.sampled_from(["x", "traceparent", "\x00", "e" * 300]))] = hostile
        else:
            event[name] = hostile
    return event


def _binary_request(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The HTTP binding's binary mode: attributes percent-encoded in ce-* headers, the data as
    the body (so CR/LF and NUL reach the desk, decoded, as the binding says)."""
    headers = {}
    for name, value in event.items():
        if name in ("data", "data_base64"):
            continue
        text = value if isinstance(value, str) else dumps(value).decode()
        headers[f"ce-{header_safe(name) or 'x'}"] = quote(
            text.encode("utf-8", "surrogatepass"), safe=""
        )
    headers["Content-Type"] = header_safe(str(event.get("datacontenttype", "application/json")))
    return headers, dumps(event.get("data"))


@pytest.mark.parametrize("mode", ["structured", "binary"])
@SETTINGS
@given(event=cloudevents())
@example(event=alert("evt-deep", alert_id="deep", summary=nested(300)))
def test_hostile_cloudevents(event_desk: Watch, mode: str, event: dict[str, Any]) -> None:
    desk = event_desk
    note(f"{mode} event={short(event)}")
    head, dead = desk.platform.store.head_position(), desk.dead_letters()
    if mode == "structured":
        headers, body = dict(STRUCTURED), dumps(event)
    else:
        headers, body = _binary_request(event)
    response = desk.client.post(
        "/api/v1/events",
        headers={"X-API-Key": desk.api_key, **headers},
        data=body,
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    answered_sanely(response)
    number = None
    if response.status_code >= 400:
        assert desk.platform.store.head_position() == head, "a refusal appended events"
    else:
        assert response.status_code == 202, response.text
        number = response.json["ticket"]  # type: ignore[index]
    settled_with(desk, number, dead)
