"""Issue 10, S16/F9: one request must not stop a read model. Every value intake accepts fits
every projection on both dialects; anything else is a 400 naming the field, on every channel.
Attachment names are cleaned as the mail path cleans them, whichever channel sent them."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from libs.events.tables import dead_letters
from libs.platform.access import create_agent
from libs.platform.database import reading
from services.intake.domain.mail.parser import parse_email
from services.platform import Platform
from tests.support.builders import ticket_created, write_unchecked
from tests.support.desk import desk_settings, open_platform, pipeline, settle

HUGE = 99999999999999999999999
GOOD = {"name": "Ada", "email": "ada@example.com", "subject": "VPN down", "message": "since 9am"}
CHANNELS = ("json", "xml", "v1")


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    with open_platform(desk_settings(tmp_path, database_url)) as platform:
        yield platform


@pytest.fixture
def auth(platform: Platform) -> dict[str, str]:
    token = create_agent(
        platform.store, email="grace@example.com", name="Grace", password=None, admin=True
    )[1]
    return {"Authorization": f"Bearer {token}"}


def create(
    client: FlaskClient, channel: str, key: str, extra: dict[str, Any] | None = None
) -> TestResponse:
    body = {**GOOD, **(extra or {})}
    headers = {"X-API-Key": key}
    if channel == "json":
        return client.post("/api/tickets.json", json=body, headers=headers)
    if channel == "v1":
        return client.post("/api/v1/tickets", json=body, headers=headers)
    return client.post(
        "/api/tickets.xml", data=_xml(body), headers=headers, content_type="application/xml"
    )


def _xml(body: dict[str, Any]) -> bytes:
    parts = []
    for name, value in body.items():
        if name == "attachments":
            files = "".join(
                f"<file name={quoteattr(filename)} type='text/plain' encoding='base64'>"
                f"{url.split(',', 1)[1]}</file>"
                for item in value
                for filename, url in item.items()
            )
            parts.append(f"<attachments>{files}</attachments>")
        else:
            parts.append(f"<{name}>{escape(str(value))}</{name}>")
    return f"<?xml version='1.0' encoding='UTF-8'?><ticket>{''.join(parts)}</ticket>".encode()


def number_of(channel: str, response: TestResponse) -> str:
    assert response.status_code == 201, response.text
    return str(response.json["number"]) if channel == "v1" else response.text  # type: ignore[index]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_huge_topic_id_is_refused_naming_it_and_later_tickets_are_projected(
    platform: Platform, client: FlaskClient, api_key: str, auth: dict[str, str], channel: str
) -> None:
    subscribers = pipeline(platform)
    refused = create(client, channel, api_key, {"topicId": HUGE})
    assert refused.status_code == 400
    assert "topicId" in refused.text
    number = number_of(channel, create(client, channel, api_key))
    settle(subscribers)
    assert client.get(f"/api/v1/tickets/{number}", headers=auth).status_code == 200
    queue = client.get("/api/v1/queues/open/tickets", headers=auth).json
    assert [t["number"] for t in queue["tickets"]] == [number]  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"topicId": 2**31}, "topicId"),  # past PostgreSQL INTEGER, the projections' id column
        ({"priorityId": HUGE}, "priorityId"),
        ({"name": "Ada\x00"}, "name"),
        ({"message": "a\x00b"}, "message"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"name": "n" * 201}, "name"),
        ({"subject": "s" * 256}, "subject"),
        ({"order_ref": "x\x00"}, "order_ref"),  # a custom field
    ],
)
def test_values_no_projection_can_store_are_refused_naming_the_field(
    platform: Platform, client: FlaskClient, api_key: str, extra: dict[str, Any], field: str
) -> None:
    for channel in ("json", "v1"):  # XML cannot carry a NUL at all: the parser refuses it
        response = create(client, channel, api_key, extra)
        assert response.status_code == 400, (channel, response.text)
        assert field in response.text
    assert not [e for e in platform.store.read_all(0, 1000) if e.stream_id.startswith("ticket-")]


def test_agent_commands_and_config_bodies_refuse_unstorable_values(
    platform: Platform, client: FlaskClient, api_key: str, auth: dict[str, str]
) -> None:
    number = number_of("v1", create(client, "v1", api_key))
    base = f"/api/v1/tickets/{number}"
    cases = [
        (f"{base}/assign", {"agent_id": HUGE, "expected_version": 1}, "agent_id"),
        (f"{base}/transfer", {"department_id": 2**31, "expected_version": 1}, "department_id"),
        (f"{base}/notes", {"body": "a\x00b", "expected_version": 1}, "body"),
        (f"{base}/collaborators", {"add": [{"email": "c" * 250 + "@x.io"}], "expected_version": 1},
         "add[0].email"),
        ("/api/v1/departments", {"name": "Ops", "parent_id": HUGE}, "parent_id"),
        ("/api/v1/teams", {"name": "t" * 201}, "name"),
        ("/api/v1/agents", {"email": "b@example.com", "name": "B", "username": "b",
                            "team_ids": [2**31]}, "team_ids[0]"),
    ]  # fmt: skip
    for path, body, field in cases:
        response = client.post(path, json=body, headers=auth)
        assert response.status_code == 400, (path, response.text)
        assert response.json["error"]["field"] == field, (path, response.json)  # type: ignore[index]


@pytest.mark.parametrize("page", ["99999999999999999999999", "0", "-1", "x", "2147483648"])
def test_a_page_out_of_range_is_a_400_naming_it(
    client: FlaskClient, auth: dict[str, str], page: str
) -> None:
    response = client.get(f"/api/v1/queues/open/tickets?page={page}", headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["field"] == "page"  # type: ignore[index]
    response = client.get(f"/api/v1/queues/open/tickets?per_page={page}", headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["field"] == "per_page"  # type: ignore[index]


def mail_filename(name: str) -> str:
    """What the mail path stores for an attachment called `name`."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "h@example.com", "s"
    message.set_content("hi")
    message.add_attachment(b"data", maintype="text", subtype="plain", filename=name)
    parsed = parse_email(message.as_bytes(), max_attachment_bytes=1_000_000)
    return parsed.attachments[0].filename


HOSTILE_NAMES = ["../../../../tmp/x", "invoice\u202etxt.exe", "a\x07b\x85c\u2066.txt"]


@pytest.mark.parametrize("number", ["%00", "12%0d%0a", "1" * 21, "abc"])
def test_a_ticket_number_that_is_not_one_is_no_ticket(
    client: FlaskClient, auth: dict[str, str], number: str
) -> None:
    """PostgreSQL refused a NUL in the lookup (a 500); a number is digits, anything else 404."""
    for path in (f"/api/v1/tickets/{number}", f"/api/v1/tickets/{number}/events"):
        assert client.get(path, headers=auth).status_code == 404
    closed = {"status": "closed", "expected_version": 1}
    answer = client.post(f"/api/v1/tickets/{number}/status", headers=auth, json=closed)
    assert answer.status_code == 404


@pytest.mark.parametrize("channel", CHANNELS)
def test_attachment_names_are_stored_as_the_mail_path_stores_them(
    platform: Platform, client: FlaskClient, api_key: str, auth: dict[str, str], channel: str
) -> None:
    data = "data:text/plain;base64," + base64.b64encode(b"data").decode()
    names = HOSTILE_NAMES if channel != "xml" else [n for n in HOSTILE_NAMES if "\x07" not in n]
    attachments = [{name: data} for name in names]
    number = number_of(channel, create(client, channel, api_key, {"attachments": attachments}))
    settle(pipeline(platform))
    ticket = client.get(f"/api/v1/tickets/{number}", headers=auth).json
    stored = [a["filename"] for a in ticket["thread"][0]["attachments"]]  # type: ignore[index]
    assert stored == [mail_filename(name) for name in names]
    assert stored[0] == "x" and "\u202e" not in stored[1]


def test_the_read_model_keeps_serving_after_a_poison_event_in_the_store(
    platform: Platform, client: FlaskClient, api_key: str, auth: dict[str, str]
) -> None:
    """The event the old intake let through, written straight into the store: the query
    subscription dead-letters it (with its data) and projects every later ticket."""
    poisoned = f"ticket-{uuid.uuid4()}"
    ticket_id = poisoned.removeprefix("ticket-")
    poison = ticket_created(ticket_id=ticket_id, number="999999", help_topic_id=HUGE)
    write_unchecked(platform.store, poisoned, "TicketCreated", poison)
    subscribers = pipeline(platform)
    number = number_of("json", create(client, "json", api_key))
    settle(subscribers)
    assert client.get(f"/api/v1/tickets/{number}", headers=auth).status_code == 200
    queue = client.get("/api/v1/queues/open/tickets", headers=auth).json
    assert number in [t["number"] for t in queue["tickets"]]  # type: ignore[index]
    with reading(platform.engine) as conn:
        letters = conn.execute(
            select(dead_letters.c.subscription, dead_letters.c.payload).where(
                dead_letters.c.stream_id == poisoned
            )
        ).all()
    assert "query" in {row.subscription for row in letters}
    assert all(str(HUGE) in (row.payload or "") for row in letters)
    assert client.get("/readyz").status_code == 200
