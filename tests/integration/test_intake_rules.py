"""The rules a new ticket meets — ban list, reject filter, open-ticket limit — hold on every
channel, each with its own refusal: the APIs answer 403/422 with the reason, mail is refused
and recorded. A refused ticket is nowhere: no TicketCreated, not in the queue, no autoresponse.

Each case first opens an accepted ticket on the same channel and sees its autoresponse go
out, so "no autoresponse" for the refused one means something."""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from libs.platform.access import create_agent, create_api_key
from services.embedded import embedded_app
from services.intake.domain.mail.rules import Refusal
from services.intake.email_intake import receive_email
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform, pipeline, settle
from tests.support.mail import compose

LIMIT_NOTICE = "Open ticket limit reached"


@dataclass(frozen=True)
class Answer:
    """What a channel said: accepted (with or without the number), or why it refused."""

    accepted: bool
    status: int | None = None  # HTTP channels
    reason: str | None = None  # the refusal's rule, where the channel reports one
    text: str = ""


class Desk:
    """An embedded desk whose subscribers (routing, sla, notify, query) run after each call."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.client: FlaskClient = embedded_app(platform).test_client()
        self.key = create_api_key(platform.store, ["127.0.0.1"])[1]
        _, token = create_agent(
            platform.store, email="root@example.com", name="Root", password=None, admin=True
        )
        self.admin = {"Authorization": f"Bearer {token}"}
        self.subscribers = pipeline(platform)

    def define(self, collection: str, body: dict[str, Any]) -> int:
        response = self.client.post(f"/api/v1/{collection}", headers=self.admin, json=body)
        assert response.status_code == 201, response.text
        self.settle()
        return int(response.json["id"])  # type: ignore[index]

    def settle(self) -> None:
        settle(self.subscribers)

    def post(self, path: str, **kwargs: Any) -> Any:
        headers = {"X-API-Key": self.key, **kwargs.pop("headers", {})}
        response = self.client.post(
            path, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}, **kwargs
        )
        self.settle()
        return response

    def tickets_of(self, address: str) -> list[str]:
        store = self.platform.store
        return [
            e.data["number"]
            for e in store.read_all(0, 100_000)
            if e.type == "TicketCreated" and e.data["requester"]["email"] == address
        ]

    def queue(self) -> set[str]:
        response = self.client.get("/api/v1/queues/open/tickets", headers=self.admin)
        assert response.status_code == 200, response.text
        return {t["number"] for t in response.json["tickets"]}  # type: ignore[index]

    def mail_to(self, address: str) -> list[str]:
        """Subjects of the mail the desk sent to `address`."""
        subjects = []
        for path in sorted(self.platform.settings.maildrop_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if any(a.addr_spec == address for a in message["To"].addresses):
                subjects.append(str(message["Subject"]))
        return subjects


# -- the channels -------------------------------------------------------------------------------


def _http(response: Any) -> Answer:
    if response.status_code in (201, 202):
        return Answer(True, response.status_code)
    text = response.get_data(as_text=True)
    reason = None
    if response.mimetype == "application/json":
        reason = response.json["error"].get("reason")
    return Answer(False, response.status_code, reason, text)


def tickets_json(desk: Desk, address: str, subject: str) -> Answer:
    body = {"name": "Sender", "email": address, "subject": subject, "message": "Please help"}
    return _http(desk.post("/api/tickets.json", json=body))


def tickets_xml(desk: Desk, address: str, subject: str) -> Answer:
    message = base64.b64encode(b"Please help").decode()
    xml = (
        f'<?xml version="1.0"?><ticket><name>Sender</name><email>{address}</email>'
        f'<subject>{subject}</subject><message encoding="base64">{message}</message></ticket>'
    )
    return _http(desk.post("/api/tickets.xml", data=xml, content_type="application/xml"))


def v1(desk: Desk, address: str, subject: str) -> Answer:
    body = {"name": "Sender", "email": address, "subject": subject, "message": "Please help"}
    return _http(desk.post("/api/v1/tickets", json=body))


def cloudevents(desk: Desk, address: str, subject: str) -> Answer:
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "//crm/prod",
        "type": "com.example.request",
        "data": {"email": address, "subject": subject},
    }
    return _http(
        desk.post(
            "/api/v1/events",
            data=orjson.dumps(event),
            headers={"Content-Type": "application/cloudevents+json"},
        )
    )


def raw_mail(address: str, subject: str) -> bytes:
    return compose(sender=address, subject=subject, message_id=f"<{uuid.uuid4()}@mail.example>")


def tickets_email(desk: Desk, address: str, subject: str) -> Answer:
    response = desk.post(
        "/api/tickets.email",
        data=raw_mail(address, subject),
        headers={"Content-Type": "message/rfc822"},
    )
    return _http(response)


def _in_process(channel: str) -> Callable[[Desk, str, str], Answer]:
    """`deskstream pipe` and the IMAP poller both hand the raw mail to receive_email."""

    def receive(desk: Desk, address: str, subject: str) -> Answer:
        outcome = receive_email(desk.platform, raw_mail(address, subject), channel=channel)
        desk.settle()
        if outcome.refused is None:
            return Answer(True)
        return Answer(False, reason=outcome.refused.value, text=outcome.reason or "")

    return receive


CHANNELS: dict[str, Callable[[Desk, str, str], Answer]] = {
    "tickets.json": tickets_json,
    "tickets.xml": tickets_xml,
    "api/v1/tickets": v1,
    "api/v1/events": cloudevents,
    "tickets.email": tickets_email,
    "pipe": _in_process("pipe"),
    "imap": _in_process("email"),
}
MAIL = ("tickets.email", "pipe", "imap")
PLAIN_TEXT = ("tickets.json", "tickets.xml", "tickets.email")  # osTicket's error bodies


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    # No mail-loop window: a second autoresponse to one address would go out, so its absence
    # for a refused ticket is the rule's doing.
    settings = desk_settings(tmp_path, max_open_tickets=1, autoresponse_window_s=0)
    with open_platform(settings) as platform:
        desk = Desk(platform)
        desk.define(
            "event-mappings",
            {
                "name": "CRM requests",
                "type": "com.example.request",
                "subject": "{data.subject}",
                "body": "{data.subject}, from the CRM",
                "requester_email": "{data.email}",
            },
        )
        yield desk


def expect_refused(desk: Desk, channel: str, answer: Answer, reason: str, status: int) -> None:
    assert not answer.accepted, answer
    if channel in ("pipe", "imap"):
        assert answer.reason == Refusal(reason).value
        return
    assert answer.status == status, answer
    if channel in PLAIN_TEXT:
        assert answer.text.startswith("Unable to create new ticket"), answer.text
    else:
        assert answer.reason == reason, answer


def accepted_with_autoresponse(desk: Desk, channel: str, address: str) -> str:
    answer = CHANNELS[channel](desk, address, "A fine request")
    assert answer.accepted, answer
    [number] = desk.tickets_of(address)
    assert number in desk.queue()
    assert len(desk.mail_to(address)) == 1, "the accepted ticket's autoresponse"
    return number


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_banned_sender_gets_no_ticket_on_any_channel(desk: Desk, channel: str) -> None:
    desk.define("banned-emails", {"email": "spam.example"})
    accepted = accepted_with_autoresponse(desk, channel, "ham@example.org")

    answer = CHANNELS[channel](desk, "bob@spam.example", "Cheap pills")
    expect_refused(desk, channel, answer, "banned", 403)
    assert desk.tickets_of("bob@spam.example") == []
    assert desk.queue() == {accepted}
    assert desk.mail_to("bob@spam.example") == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_reject_filter_refuses_the_ticket_on_any_channel(desk: Desk, channel: str) -> None:
    desk.define(
        "filters",
        {
            "name": "No newsletters",
            "rules": [{"field": "subject", "op": "contains", "value": "weekly deals"}],
            "actions": [{"type": "reject"}],
        },
    )
    accepted = accepted_with_autoresponse(desk, channel, "ham@example.org")

    answer = CHANNELS[channel](desk, "news@shop.example", "Weekly deals")
    expect_refused(desk, channel, answer, "rejected", 403)
    assert desk.tickets_of("news@shop.example") == []
    assert desk.queue() == {accepted}
    assert desk.mail_to("news@shop.example") == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_open_ticket_limit_holds_on_every_channel(desk: Desk, channel: str) -> None:
    first = accepted_with_autoresponse(desk, channel, "ada@example.com")

    answer = CHANNELS[channel](desk, "ada@example.com", "And another thing")
    expect_refused(desk, channel, answer, "over_limit", 422)
    assert desk.tickets_of("ada@example.com") == [first]
    assert desk.queue() == {first}
    sent = desk.mail_to("ada@example.com")
    # Mail answers over the limit with the notice (osTicket's); the APIs answer the caller.
    expected = [f"{LIMIT_NOTICE}: And another thing"] if channel in MAIL else []
    assert [s for s in sent if s.startswith(LIMIT_NOTICE)] == expected, sent
    assert len(sent) == 1 + len(expected), "no autoresponse for the refused ticket"


def test_the_limit_counts_tickets_from_every_channel_but_spares_agents(desk: Desk) -> None:
    first = accepted_with_autoresponse(desk, "tickets.json", "ada@example.com")
    assert not CHANNELS["pipe"](desk, "ada@example.com", "By mail now").accepted
    by_agent = desk.client.post(
        "/api/v1/tickets",
        headers=desk.admin,
        json={
            "name": "Ada",
            "email": "ada@example.com",
            "subject": "Phoned in",
            "message": "x",
            "source": "staff",
        },
    )
    assert by_agent.status_code == 201, by_agent.text  # osTicket: staff are not limited
    assert desk.tickets_of("ada@example.com") == [first, by_agent.json["number"]]  # type: ignore[index]
