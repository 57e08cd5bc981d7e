"""`POST /api/tickets.xml` through the HTTP app: osTicket's XML opens a ticket like its JSON;
bad XML is a plain-text 400 (osTicket answers 200) and appends nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from services.platform import Platform

GOOD = f"""<?xml version="1.0" encoding="UTF-8"?>
<ticket alert="false" autorespond="true" source="API" topicId="1">
    <name>Ada Lovelace</name>
    <email>ada@example.com</email>
    <subject>Printer on fire</subject>
    <message type="text/html" encoding="base64">{base64.b64encode(b"<p>It is <b>on fire</b></p>").decode()}</message>
    <priority>high</priority>
    <attachments>
        <file name="smoke.txt" type="text/plain">lots of smoke</file>
    </attachments>
    <asset_tag>PRN-7</asset_tag>
</ticket>"""


# `platform`, `client` and `api_key`: the embedded desk of tests/conftest.py.


def post(
    client: FlaskClient,
    key: str | None,
    body: str | bytes = GOOD,
    content_type: str = "application/xml",
    **headers: str,
) -> TestResponse:
    return client.post(
        "/api/tickets.xml",
        data=body,
        content_type=content_type,
        headers={**({"X-API-Key": key} if key else {}), **headers},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )


def created(platform: Platform) -> list[dict[str, Any]]:
    return [e.data for e in platform.store.read_all(0, 10_000) if e.type == "TicketCreated"]


def ticket_events(platform: Platform) -> int:
    return len([e for e in platform.store.read_all(0, 10_000) if e.stream_id.startswith("ticket-")])


def test_xml_ticket_is_created_with_its_fields(
    client: FlaskClient, api_key: str, platform: Platform
) -> None:
    response = post(client, api_key)

    assert response.status_code == 201, response.text
    assert response.text.isdigit() and len(response.text) == 6  # the number, as osTicket
    [ticket] = created(platform)
    assert ticket["number"] == response.text
    assert ticket["subject"] == "Printer on fire"
    assert ticket["requester"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert ticket["channel"] == "api" and ticket["help_topic_id"] == 1
    assert (
        ticket["body_html"] == "<p>It is <b>on fire</b></p>" and ticket["body"] == "It is on fire"
    )
    assert ticket["priority"] == "high"
    assert ticket["alert"] is False and ticket["autorespond"] is True
    assert [(a["filename"], a["content_type"], a["size"]) for a in ticket["attachments"]] == [
        ("smoke.txt", "text/plain", len("lots of smoke"))
    ]
    assert ticket["fields"] == {"asset_tag": "PRN-7"}


def test_text_xml_with_a_charset_is_accepted(client: FlaskClient, api_key: str) -> None:
    assert post(client, api_key, content_type="text/xml; charset=utf-8").status_code == 201


def test_idempotency_key_retry_makes_no_second_ticket(
    client: FlaskClient, api_key: str, platform: Platform
) -> None:
    first = post(client, api_key, **{"Idempotency-Key": "xml-1"})
    second = post(client, api_key, **{"Idempotency-Key": "xml-1"})
    assert first.status_code == second.status_code == 201
    assert first.text == second.text and len(created(platform)) == 1


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("no key", 401, "Valid API key required"),
        ("malformed xml", 400, "Malformed XML"),
        ("another root", 400, "root must be <ticket>"),
        ("billion laughs", 400, "XML refused"),
        ("empty body", 400, "empty"),
        ("missing email", 400, "email"),
        ("json sent as xml", 400, "Malformed XML"),
        ("wrong content type", 415, "Unsupported data format"),
    ],
)
def test_bad_xml_is_refused_in_plain_text_and_appends_nothing(
    case: str, status: int, message: str, client: FlaskClient, api_key: str, platform: Platform
) -> None:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(9))
    bodies: dict[str, Any] = {
        "no key": lambda: post(client, None),
        "malformed xml": lambda: post(client, api_key, GOOD.replace("</name>", "")),
        "another root": lambda: post(client, api_key, "<tickets><ticket/></tickets>"),
        "billion laughs": lambda: post(
            client, api_key, f"<!DOCTYPE ticket [{laughs}]><ticket><name>&l8;</name></ticket>"
        ),
        "empty body": lambda: post(client, api_key, "  "),
        "missing email": lambda: post(client, api_key, GOOD.replace("ada@example.com", "")),
        "json sent as xml": lambda: post(client, api_key, '{"name": "Ada"}'),
        "wrong content type": lambda: post(client, api_key, content_type="application/json"),
    }
    response = bodies[case]()
    assert response.status_code == status, response.text
    assert message in response.text
    assert response.mimetype == "text/plain"  # osTicket clients parse plain-text errors
    assert ticket_events(platform) == 0
