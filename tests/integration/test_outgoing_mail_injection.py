"""No header, recipient or body injected into the desk's mail, whichever channel the hostile
subject or name came in by (RELIABILITY.md S5): tickets.json, /api/v1/tickets, tickets.xml,
tickets.email and `deskstream pipe`'s path (an encoded word hiding CR/LF, and the same doubly
encoded), CloudEvents. Through a real SMTP server: its envelope and the message it received.

The values are encoded words, pure printable ASCII that every channel must take as text: until
now Python's `email` decoded them when notify assigned them to a header."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from libs.platform.access import create_agent, create_api_key
from services.embedded import embedded_app
from services.intake.email_intake import receive_email
from services.notify.domain.headers import header_text
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform, pipeline, settle
from tests.support.servers import ReceivedMail, SmtpSink

HELPDESK = "support@deskstream.local"
HIDDEN = "x\r\nBcc: a@evil.example\r\nX-Injected: yes\r\n\r\n<html><body>Click</body></html>"


def encoded(text: str) -> str:
    return f"=?utf-8?B?{base64.b64encode(text.encode()).decode()}?="


ENCODED = encoded(HIDDEN)
DOUBLY_ENCODED = encoded(ENCODED)
AUTORESPONSE_HEADERS = [
    "Auto-Submitted",
    "Content-Transfer-Encoding",
    "Content-Type",
    "Date",
    "From",
    "MIME-Version",
    "Message-ID",
    "Subject",
    "To",
    "X-Deskstream-Ticket",
]


@pytest.fixture
def platform(tmp_path: Path, smtp: SmtpSink) -> Iterator[Platform]:
    settings = desk_settings(
        tmp_path, smtp_url=smtp.url, helpdesk_email=HELPDESK, autoresponse_window_s=0
    )
    with open_platform(settings) as platform:
        yield platform


Submit = Callable[[Platform, FlaskClient, str], str]  # -> the literal subject the ticket has


def _key(platform: Platform) -> dict[str, str]:
    return {"X-API-Key": create_api_key(platform.store, ["127.0.0.1"])[1]}


def _post(client: FlaskClient, path: str, **kwargs: Any) -> None:
    response = client.post(path, environ_base={"REMOTE_ADDR": "127.0.0.1"}, **kwargs)
    assert response.status_code in (201, 202), response.text


def tickets_json(platform: Platform, client: FlaskClient, requester: str) -> str:
    body = {"name": ENCODED, "email": requester, "subject": ENCODED, "message": "Help"}
    _post(client, "/api/tickets.json", json=body, headers=_key(platform))
    return ENCODED


def v1_tickets(platform: Platform, client: FlaskClient, requester: str) -> str:
    body = {"name": ENCODED, "email": requester, "subject": ENCODED, "message": "Help"}
    _post(client, "/api/v1/tickets", json=body, headers=_key(platform))
    return ENCODED


def tickets_xml(platform: Platform, client: FlaskClient, requester: str) -> str:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ticket><name>{ENCODED}</name>'
        f"<email>{requester}</email><subject>{ENCODED}</subject><message>Help</message></ticket>"
    )
    _post(
        client, "/api/tickets.xml", data=xml, content_type="application/xml", headers=_key(platform)
    )
    return ENCODED


def raw_mail(requester: str, subject: str, message_id: str) -> bytes:
    """Written by hand: a mail library would refuse to write (or would re-encode) these."""
    return (
        f"From: {encoded('Ada' + HIDDEN)} <{requester}>\r\nTo: {HELPDESK}\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{message_id}@mail.example.com>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHelp.\r\n"
    ).encode()


def tickets_email_doubly_encoded(platform: Platform, client: FlaskClient, requester: str) -> str:
    raw = raw_mail(requester, DOUBLY_ENCODED, "doubly")
    _post(client, "/api/tickets.email", data=raw, headers=_key(platform))
    return ENCODED  # the parser decodes one layer; the rest is the subject's literal text


def tickets_email_encoded(platform: Platform, client: FlaskClient, requester: str) -> str:
    _post(
        client,
        "/api/tickets.email",
        data=raw_mail(requester, ENCODED, "once"),
        headers=_key(platform),
    )
    return HIDDEN  # decoded by intake: CR/LF inside the text notify is given


def piped_doubly_encoded(platform: Platform, client: FlaskClient, requester: str) -> str:
    outcome = receive_email(platform, raw_mail(requester, DOUBLY_ENCODED, "piped"), channel="pipe")
    assert outcome.action == "created", outcome
    return ENCODED


def cloudevent(platform: Platform, client: FlaskClient, requester: str) -> str:
    _, token = create_agent(
        platform.store, email="root@example.com", name="Root", password=None, admin=True
    )
    mapping = {
        "name": "Alerts",
        "type": "com.example.alert.fired",
        "source_prefix": "//monitoring/",
        "subject": "{data.summary}",
        "body": "{data.summary}",
        "requester_email": requester,
        "requester_name": "{data.who}",
        "help_topic_id": 1,
        "correlation": "monitoring:{data.alert_id}",
    }
    _post(
        client, "/api/v1/event-mappings", json=mapping, headers={"Authorization": f"Bearer {token}"}
    )
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "//monitoring/prod",
        "type": "com.example.alert.fired",
        "data": {"alert_id": "a1", "summary": ENCODED, "who": ENCODED},
    }
    headers = {**_key(platform), "Content-Type": "application/cloudevents+json"}
    _post(client, "/api/v1/events", data=orjson.dumps(event), headers=headers)
    return ENCODED


def assert_only_ours(mail: ReceivedMail, requester: str, headers: list[str]) -> None:
    message = mail.message
    assert mail.rcpt_tos == (requester,), "the envelope: the requester and nobody else"
    assert mail.mail_from == HELPDESK
    assert sorted(message.keys()) == headers, "no Bcc:, no X-Injected:, one of each"
    assert [a.addr_spec for a in message["To"].addresses] == [requester]
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    body = message.get_content()
    assert body.startswith("Dear ") and "\n<html>" not in body and "\nBcc:" not in body
    for name in ("To", "From"):
        (address,) = message[name].addresses
        assert "\n" not in address.display_name and "\r" not in address.display_name


@pytest.mark.parametrize(
    "submit",
    [
        tickets_json,
        v1_tickets,
        tickets_xml,
        tickets_email_doubly_encoded,
        tickets_email_encoded,
        piped_doubly_encoded,
        cloudevent,
    ],
)
def test_the_autoresponse_carries_only_its_own_headers_and_recipient(
    platform: Platform, smtp: SmtpSink, submit: Submit
) -> None:
    client = embedded_app(platform).test_client()
    requester = f"{submit.__name__.replace('_', '-')}@example.com"
    subject = submit(platform, client, requester)
    settle(pipeline(platform))

    (mail,) = smtp.wait_for(1, timeout=10)
    assert_only_ours(mail, requester, AUTORESPONSE_HEADERS)
    number = mail.message["X-Deskstream-Ticket"]
    # Whatever the subject was, it reads back as the literal text the ticket has, cleaned.
    assert mail.message["Subject"] == header_text(f"[#{number}] {subject}")


def test_the_over_limit_notice_carries_only_its_own_headers_and_recipient(
    tmp_path: Path, smtp: SmtpSink
) -> None:
    settings = desk_settings(
        tmp_path,
        smtp_url=smtp.url,
        helpdesk_email=HELPDESK,
        autoresponse_window_s=0,
        max_open_tickets=1,
    )
    with open_platform(settings) as platform:
        subscribers = pipeline(platform)
        for number, subject in enumerate([DOUBLY_ENCODED, DOUBLY_ENCODED]):
            raw = raw_mail("ada@example.com", subject, f"limit-{number}")
            receive_email(platform, raw, channel="pipe")
            settle(subscribers)

    autoresponse, notice = smtp.wait_for(2, timeout=10)
    assert_only_ours(autoresponse, "ada@example.com", AUTORESPONSE_HEADERS)
    notice_headers = [h for h in AUTORESPONSE_HEADERS if h != "X-Deskstream-Ticket"]
    assert_only_ours(notice, "ada@example.com", notice_headers)
    assert notice.message["Subject"] == f"Open ticket limit reached: {ENCODED}"


@pytest.mark.parametrize(
    "requester",
    [
        f"{encoded('x>, a@evil.example')}@example.com",  # an encoded word as the local part
        "zoë@example.com",  # needs SMTPUTF8 in a header: cannot be written as plain ASCII
    ],
)
def test_an_address_intake_took_but_a_header_cannot_carry_gets_no_mail_and_a_record(
    platform: Platform, smtp: SmtpSink, requester: str
) -> None:
    client = embedded_app(platform).test_client()
    body = {"name": "Ada", "email": requester, "subject": "Printer on fire", "message": "Help"}
    _post(client, "/api/tickets.json", json=body, headers=_key(platform))
    tickets_json(platform, client, "ada@example.com")  # the next ticket is not held up
    settle(pipeline(platform))

    (mail,) = smtp.wait_for(1, timeout=10)
    assert mail.rcpt_tos == ("ada@example.com",)
    events = platform.store.read_all(0, 100_000)
    (suppressed,) = [e.data for e in events if e.type == "NotificationSuppressed"]
    assert suppressed["recipient"] == requester.lower()
    assert "not a single plain email address" in suppressed["reason"]
