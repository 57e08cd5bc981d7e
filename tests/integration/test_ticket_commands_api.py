"""Agent ticket commands over HTTP on both dialects: versions, 409s, access, references."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from libs.events.embedded import EmbeddedSubscriber
from libs.events.envelope import RecordedEvent
from libs.platform.access import create_agent
from libs.platform.configuration import define
from libs.platform.database import reading
from libs.platform.settings import Settings
from services import migrations
from services.embedded import embedded_app
from services.intake.config import seed_defaults
from services.intake.handlers import find_ticket
from services.platform import Platform
from services.routing import handlers as routing_handlers

GOOD = {"name": "Ada", "email": "ada@example.com", "subject": "VPN down", "message": "since 9am"}


@dataclasses.dataclass
class Desk:
    platform: Platform
    client: FlaskClient
    grace: str  # an agent of Support (department 1)
    otto: str  # an agent of Sales (department 2) only

    def open_ticket(self) -> str:
        """A ticket opened over the API and routed to Support: at version 2."""
        response = self.client.post("/api/v1/tickets", json=GOOD, headers=_auth(self.grace))
        assert response.status_code == 201, response.text
        store = self.platform.store
        EmbeddedSubscriber(routing_handlers.subscription(), store, store.clock).run_until_idle()
        number: str = response.json["number"]  # type: ignore[index]
        assert [e.type for e in self.events(number)] == ["TicketCreated", "TicketRouted"]
        return number

    def command(
        self, number: str, action: str, body: dict[str, Any], *, token: str | None = None
    ) -> TestResponse:
        return self.client.post(
            f"/api/v1/tickets/{number}/{action}", json=body, headers=_auth(token or self.grace)
        )

    def events(self, number: str) -> list[RecordedEvent]:
        with reading(self.platform.engine) as conn:
            stream_id = find_ticket(conn, number)
        assert stream_id is not None
        return self.platform.store.read_stream(stream_id)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def desk(database_url: str, tmp_path: Path) -> Iterator[Desk]:
    settings = dataclasses.replace(Settings().with_data_dir(tmp_path), database_url=database_url)
    platform = Platform.build(settings)
    migrations.upgrade(platform.engine)
    seed_defaults(platform.store)
    with platform.store.transaction() as conn:
        define(platform.store, "department", {"id": 2, "name": "Sales"}, conn=conn)
        define(platform.store, "team", {"id": 1, "name": "Level 2"}, conn=conn)
    agents = [
        create_agent(
            platform.store, email=f"{n}@example.com", name=n, password=None, department_id=d
        )
        for n, d in (("grace", 1), ("otto", 2))
    ]
    yield Desk(platform, embedded_app(platform).test_client(), agents[0][1], agents[1][1])
    platform.close()


def test_assign_then_a_stale_retry_gets_409_with_the_missed_events(desk: Desk) -> None:
    number = desk.open_ticket()
    ok = desk.command(number, "assign", {"team_id": 1, "reason": "L2", "expected_version": 2})
    assert ok.status_code == 200, ok.text
    assert ok.json == {"number": number, "version": 3}
    assert ok.headers["ETag"] == '"3"'

    stale = desk.command(number, "assign", {"agent_id": 1, "expected_version": 2})
    assert stale.status_code == 409, stale.text
    error = stale.json["error"]  # type: ignore[index]
    assert error["current_version"] == 3 and error["expected_version"] == 2
    (missed,) = error["events"]
    assert set(missed) == {"position", "version", "type", "time", "data"}
    assert (missed["type"], missed["version"]) == ("TicketAssigned", 3)
    assert missed["data"]["team_id"] == 1 and missed["data"]["by"]["name"] == "grace"
    assert len(desk.events(number)) == 3  # nothing appended

    assigned = desk.events(number)[-1]
    assert assigned.metadata["actor"].startswith("agent:")


def test_if_match_carries_the_version(desk: Desk) -> None:
    number = desk.open_ticket()
    response = desk.client.post(
        f"/api/v1/tickets/{number}/priority",
        json={"priority": "high"},
        headers={**_auth(desk.grace), "If-Match": '"2"'},
    )
    assert response.status_code == 200, response.text
    assert desk.events(number)[-1].data["priority"] == "high"


def test_close_then_assign_reopens_then_release(desk: Desk) -> None:
    number = desk.open_ticket()
    closed = desk.command(number, "status", {"status": "closed", "expected_version": 2})
    assert closed.status_code == 200, closed.text
    assigned = desk.command(number, "assign", {"agent_id": 1, "expected_version": 3})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json["version"] == 5  # type: ignore[index]
    *_, assign, reopen = desk.events(number)
    assert (assign.type, assign.data["agent_id"]) == ("TicketAssigned", 1)
    assert (reopen.type, reopen.data["status"], reopen.data["previous"]) == (
        "TicketStatusChanged",
        "open",
        "closed",
    )
    released = desk.command(number, "release", {"agent": True, "expected_version": 5})
    assert released.status_code == 200, released.text
    again = desk.command(number, "release", {"expected_version": 6})
    assert again.status_code == 409 and "no assigned" in again.text
    assert "current_version" not in again.json["error"]  # type: ignore[index]


def test_reply_and_note_join_the_thread(desk: Desk) -> None:
    number = desk.open_ticket()
    reply = {"body": "On it.", "body_html": "<p>On it.<script>x()</script></p>"}
    replied = desk.command(number, "replies", {**reply, "reply_to": "all", "expected_version": 2})
    assert replied.status_code == 200, replied.text
    noted = desk.command(number, "notes", {"body": "call back at 3", "expected_version": 3})
    assert noted.status_code == 200, noted.text
    response, note = desk.events(number)[-2:]
    assert (response.type, response.data["kind"], response.data["reply_to"]) == (
        "MessageAppended",
        "response",
        "all",
    )
    assert response.data["author"]["kind"] == "agent"
    assert "script" not in response.data["body_html"]
    assert (note.type, note.data["kind"], note.data["body"]) == (
        "MessageAppended",
        "note",
        "call back at 3",
    )


def test_references_must_exist_and_be_reachable(desk: Desk) -> None:
    number = desk.open_ticket()
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("transfer", {"department_id": 99}, 400, "department_id"),
        ("assign", {"agent_id": 99}, 400, "agent_id"),
        ("assign", {"team_id": 99}, 400, "team_id"),
        ("fields", {"field": "help_topic", "value": 99}, 400, "value"),
        ("transfer", {"department_id": 2}, 403, "department_id"),  # grace cannot see Sales
        ("transfer", {"department_id": 1}, 400, "department_id"),  # already there
        ("status", {"status": "deleted"}, 400, "status"),
    ]
    for action, body, status, field in cases:
        response = desk.command(number, action, {**body, "expected_version": 2})
        assert response.status_code == status, (action, body, response.text)
        assert response.json["error"]["field"] == field  # type: ignore[index]
    assert len(desk.events(number)) == 2


def test_another_departments_agent_gets_404_and_changes_nothing(desk: Desk) -> None:
    number = desk.open_ticket()
    commands: list[tuple[str, dict[str, Any]]] = [
        ("assign", {"agent_id": 2}),
        ("notes", {"body": "peek"}),
    ]
    for action, body in commands:
        response = desk.command(number, action, {**body, "expected_version": 2}, token=desk.otto)
        assert response.status_code == 404, response.text
        # Not even a stale version tells the agent that the ticket exists.
        stale = desk.command(number, action, {**body, "expected_version": 1}, token=desk.otto)
        assert stale.status_code == 404
    assert len(desk.events(number)) == 2
    edited = desk.command(
        number, "fields", {"field": "subject", "value": "VPN", "expected_version": 2}
    )
    assert edited.status_code == 200, edited.text  # still at version 2


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("no version", 400, "expected_version is required"),
        ("malformed json", 400, "malformed JSON"),
        ("json array", 400, "JSON object"),
        ("version as text", 400, "expected_version"),
        ("unknown key", 400, "agent: Unknown field"),
        ("if-match any", 400, "If-Match"),
        ("versions disagree", 400, "If-Match"),
        ("not json", 415, "Content-Type"),
        ("no token", 401, "token"),
    ],
)
def test_bad_requests_are_clear_and_append_nothing(
    desk: Desk, case: str, status: int, message: str
) -> None:
    number = desk.open_ticket()
    url, auth = f"/api/v1/tickets/{number}/assign", _auth(desk.grace)
    requests = {
        "no version": lambda: desk.client.post(url, json={"agent_id": 1}, headers=auth),
        "malformed json": lambda: desk.client.post(
            url, data='{"agent_id": ', content_type="application/json", headers=auth
        ),
        "json array": lambda: desk.client.post(url, json=[1], headers=auth),
        "version as text": lambda: desk.client.post(
            url, json={"agent_id": 1, "expected_version": "2"}, headers=auth
        ),
        "unknown key": lambda: desk.client.post(
            url, json={"agent": 1, "expected_version": 2}, headers=auth
        ),
        "if-match any": lambda: desk.client.post(
            url, json={"agent_id": 1}, headers={**auth, "If-Match": "*"}
        ),
        "versions disagree": lambda: desk.client.post(
            url, json={"agent_id": 1, "expected_version": 2}, headers={**auth, "If-Match": '"1"'}
        ),
        "not json": lambda: desk.client.post(
            url, data="agent_id=1", content_type="text/plain", headers=auth
        ),
        "no token": lambda: desk.client.post(url, json={"agent_id": 1, "expected_version": 2}),
    }
    response = requests[case]()
    assert response.status_code == status, response.text
    assert message in response.text
    assert response.mimetype == "application/json"
    assert len(desk.events(number)) == 2


def test_unknown_ticket_and_unknown_action(desk: Desk) -> None:
    missing = desk.command("000000", "notes", {"body": "x", "expected_version": 1})
    assert missing.status_code == 404
    number = desk.open_ticket()
    assert desk.command(number, "explode", {"expected_version": 2}).status_code == 404
