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
from services.intake.commands import CONFLICT_EVENTS
from services.intake.config import seed_defaults
from services.intake.handlers import find_ticket
from services.platform import Platform
from services.query import handlers as query_handlers
from services.replay import replay
from services.routing import handlers as routing_handlers

GOOD = {"name": "Ada", "email": "ada@example.com", "subject": "VPN down", "message": "since 9am"}


@dataclasses.dataclass
class Desk:
    platform: Platform
    client: FlaskClient
    grace: str  # an agent of Support (department 1), in the default role
    otto: str  # an agent of Sales (department 2) only
    lead: str  # an agent of Support who may also merge and link

    def open_ticket(self, requester: str = "ada@example.com") -> str:
        """A ticket opened over the API and routed to Support: at version 2."""
        body = {**GOOD, "email": requester}
        response = self.client.post("/api/v1/tickets", json=body, headers=_auth(self.grace))
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

    def view(self, number: str, *, token: str | None = None) -> TestResponse:
        """GET the ticket once the query projection has caught up."""
        store = self.platform.store
        EmbeddedSubscriber(query_handlers.subscription(), store, store.clock).run_until_idle()
        return self.client.get(f"/api/v1/tickets/{number}", headers=_auth(token or self.grace))

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
    everything = [
        "ticket.assign",
        "ticket.release",
        "ticket.transfer",
        "ticket.merge",
        "ticket.link",
    ]
    agents = [
        create_agent(
            platform.store,
            email=f"{n}@example.com",
            name=n,
            password=None,
            department_id=d,
            permissions=p,
        )
        for n, d, p in (("grace", 1, []), ("otto", 2, []), ("lead", 1, everything))
    ]
    client = embedded_app(platform).test_client()
    yield Desk(platform, client, *(token for _, token in agents))
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
    assert error["events_total"] == 1


def test_a_409_on_a_long_ticket_carries_the_newest_events_and_how_many_there_are(
    desk: Desk,
) -> None:
    number = desk.open_ticket()
    for version in range(2, 2 + 120):
        note = desk.command(
            number, "notes", {"body": f"note {version}", "expected_version": version}
        )
        assert note.status_code == 200, note.text
    current = 2 + 120

    stale = desk.command(number, "notes", {"body": "late", "expected_version": 1})
    assert stale.status_code == 409, stale.text
    error = stale.json["error"]  # type: ignore[index]
    assert (error["current_version"], error["events_total"]) == (current, current - 1)
    versions = [e["version"] for e in error["events"]]
    assert versions == list(range(current - CONFLICT_EVENTS + 1, current + 1))  # newest, in order
    assert error["events"][-1]["data"]["body"] == f"note {current - 1}"


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


# -- collaborators, merge, link: and what the ticket view shows ---------------------------------


def test_collaborators_are_added_disabled_and_removed(desk: Desk) -> None:
    number = desk.open_ticket()
    add = {"add": [{"email": "bob@example.com", "name": "Bob"}, {"email": "carol@example.com"}]}
    added = desk.command(number, "collaborators", {**add, "expected_version": 2})
    assert added.status_code == 200, added.text
    assert added.json["version"] == 4  # type: ignore[index]
    shown = desk.view(number).json
    assert shown["collaborators"] == [  # type: ignore[index]
        {"email": "bob@example.com", "name": "Bob", "active": True},
        {"email": "carol@example.com", "name": None, "active": True},
    ]
    changed = desk.command(
        number,
        "collaborators",
        {"disable": ["Carol@example.com"], "remove": ["bob@example.com"], "expected_version": 4},
    )
    assert changed.status_code == 200, changed.text
    assert [e.type for e in desk.events(number)[-2:]] == [
        "CollaboratorRemoved",
        "CollaboratorAdded",
    ]
    assert desk.view(number).json["collaborators"] == [  # type: ignore[index]
        {"email": "carol@example.com", "name": None, "active": False}
    ]
    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"add": [{"email": "ADA@example.com"}]}, "add[0].email", "requester"),
        ({"add": [{"email": "carol@example.com"}]}, "add[0].email", "already a collaborator"),
        ({"enable": ["bob@example.com"]}, "enable[0]", "not a collaborator"),
        ({"add": [{"email": "not an address"}]}, "add[0].email", "email"),
        ({}, "add", "name collaborators"),
    ]
    for body, field, message in refusals:
        refused = desk.command(number, "collaborators", {**body, "expected_version": 6})
        assert refused.status_code == 400, (body, refused.text)
        error = refused.json["error"]  # type: ignore[index]
        assert (error["field"], message in error["message"]) == (field, True), error
    peek = {"add": [{"email": "mallory@example.com"}], "expected_version": 6}
    assert desk.command(number, "collaborators", peek, token=desk.otto).status_code == 404
    assert len(desk.events(number)) == 6


def test_merge_combines_the_childrens_threads_into_the_parent(desk: Desk) -> None:
    parent = desk.open_ticket()
    first = desk.open_ticket("bob@example.com")
    second = desk.open_ticket("carol@example.com")
    noted = desk.command(first, "notes", {"body": "bob called", "expected_version": 2})
    assert noted.status_code == 200, noted.text
    body = {"tickets": [first, second], "mode": "combine", "expected_version": 2}
    merged = desk.command(parent, "merge", body, token=desk.lead)
    assert merged.status_code == 200, merged.text
    assert merged.json == {"number": parent, "version": 5}  # three events on the parent

    assert [e.type for e in desk.events(parent)[2:]] == [
        "ChildTicketsMerged",
        "CollaboratorAdded",
        "CollaboratorAdded",
    ]
    for child in (first, second):
        merge, closing = desk.events(child)[-2:]
        assert (merge.type, merge.data["into_number"], merge.data["mode"]) == (
            "TicketMerged",
            parent,
            "combine",
        )
        assert (closing.type, closing.data["status"]) == ("TicketStatusChanged", "closed")

    view = desk.view(parent).json
    assert view is not None
    assert [(e["ticket"]["number"], e["kind"]) for e in view["thread"]] == [
        (parent, "message"),
        (first, "message"),
        (second, "message"),
        (first, "note"),
    ]
    assert [c["email"] for c in view["collaborators"]] == ["bob@example.com", "carol@example.com"]
    shown = desk.view(first).json
    assert shown is not None
    assert (shown["merged_into"], shown["status"]) == ({"number": parent}, "closed")
    assert view["merged_into"] is None
    queue = desk.client.get("/api/v1/queues/open/tickets", headers=_auth(desk.grace)).json
    assert [t["number"] for t in queue["tickets"]] == [parent]  # type: ignore[index]

    # A merged child takes no more commands, and is merged only once.
    again = desk.command(first, "notes", {"body": "hm", "expected_version": 5})
    assert again.status_code == 409 and f"merged into ticket {parent}" in again.text
    third = desk.open_ticket("dan@example.com")
    twice = desk.command(
        third, "merge", {"tickets": [first], "expected_version": 2}, token=desk.lead
    )
    assert twice.status_code == 400 and twice.json["error"]["field"] == "tickets[0]"  # type: ignore[index]
    into_child = desk.command(
        first, "merge", {"tickets": [third], "expected_version": 5}, token=desk.lead
    )
    assert into_child.status_code == 400 and "itself merged" in into_child.text

    # The projection rebuilds to the same views from the log.
    before = [desk.view(n).json for n in (parent, first, second)]
    assert replay(desk.platform, "query") > 0
    assert [desk.view(n).json for n in (parent, first, second)] == before


def test_a_separate_merge_keeps_the_childs_thread_as_a_block(desk: Desk) -> None:
    child, parent = desk.open_ticket("bob@example.com"), desk.open_ticket()
    noted = desk.command(parent, "notes", {"body": "later", "expected_version": 2})
    assert noted.status_code == 200, noted.text
    body = {
        "tickets": [child],
        "mode": "separate",
        "child_status": "resolved",
        "delete_children": True,
        "move_collaborators": False,
        "expected_version": 3,
    }
    merged = desk.command(parent, "merge", body, token=desk.lead)
    assert merged.status_code == 200, merged.text
    view = desk.view(parent).json
    assert view is not None
    # The child was opened first, yet its block follows the parent's own entries.
    assert [e["ticket"]["number"] for e in view["thread"]] == [parent, parent, child]
    gone = desk.view(child)
    assert gone.status_code == 404 and f"merged into ticket {parent}" in gone.text
    assert desk.events(child)[-1].data["status"] == "resolved"


def test_merge_refusals_append_nothing_anywhere(desk: Desk) -> None:
    parent, child = desk.open_ticket(), desk.open_ticket("bob@example.com")
    elsewhere = desk.open_ticket("eve@example.com")
    _, admin = create_agent(
        desk.platform.store, email="root@example.com", name="root", password=None, admin=True
    )
    moved = desk.command(
        elsewhere, "transfer", {"department_id": 2, "expected_version": 2}, token=admin
    )
    assert moved.status_code == 200, moved.text

    def merge(numbers: list[str], version: int = 2, token: str | None = None) -> TestResponse:
        body = {"tickets": numbers, "expected_version": version}
        return desk.command(parent, "merge", body, token=token or desk.lead)

    forbidden = merge([child], token=desk.grace)  # the default role may not merge
    assert forbidden.status_code == 403, forbidden.text
    assert "ticket.merge" in forbidden.json["error"]["message"]  # type: ignore[index]
    hidden = merge([child, elsewhere])  # the lead cannot see Sales
    assert hidden.status_code == 404, hidden.text
    assert hidden.json["error"]["field"] == "tickets[1]"  # type: ignore[index]
    itself = merge([parent])
    assert itself.status_code == 400 and itself.json["error"]["field"] == "tickets[0]"  # type: ignore[index]
    stale = merge([child], version=1)
    assert stale.status_code == 409, stale.text
    error = stale.json["error"]  # type: ignore[index]
    assert error["current_version"] == 2
    assert [e["type"] for e in error["events"]] == ["TicketRouted"]
    assert [len(desk.events(n)) for n in (parent, child, elsewhere)] == [2, 2, 3]


def test_links_are_recorded_on_both_tickets_and_undone_from_either(desk: Desk) -> None:
    first, second, third = (desk.open_ticket(f"{n}@example.com") for n in ("a", "b", "c"))
    linked = desk.command(
        first, "links", {"link": [second, third], "expected_version": 2}, token=desk.lead
    )
    assert linked.status_code == 200, linked.text
    assert linked.json["version"] == 4  # type: ignore[index]
    assert [(e.type, e.data["number"]) for e in desk.events(second)[2:]] == [
        ("TicketLinked", first)
    ]
    assert desk.view(first).json["links"] == [{"number": second}, {"number": third}]  # type: ignore[index]
    assert desk.view(second).json["links"] == [{"number": first}]  # type: ignore[index]

    undone = desk.command(
        second, "links", {"unlink": [first], "expected_version": 3}, token=desk.lead
    )
    assert undone.status_code == 200, undone.text
    assert desk.events(first)[-1].type == "TicketUnlinked"
    assert desk.view(first).json["links"] == [{"number": third}]  # type: ignore[index]
    assert desk.view(second).json["links"] == []  # type: ignore[index]

    refusals = [
        (desk.grace, {"link": [second], "expected_version": 5}, 403),
        (desk.lead, {"link": [third], "expected_version": 5}, 400),  # already linked
        (desk.lead, {"unlink": [second], "expected_version": 5}, 400),  # not linked
        (desk.lead, {"link": ["000000"], "expected_version": 5}, 404),
        (desk.lead, {"link": [second], "expected_version": 4}, 409),
    ]
    for token, body, status in refusals:
        response = desk.command(first, "links", body, token=token)
        assert response.status_code == status, (body, response.text)
    assert [len(desk.events(n)) for n in (first, second, third)] == [5, 4, 3]


def test_release_needs_the_release_permission(desk: Desk) -> None:
    _, assigner = create_agent(
        desk.platform.store,
        email="ivy@example.com",
        name="ivy",
        password=None,
        department_id=1,
        permissions=["ticket.assign"],
    )
    number = desk.open_ticket()
    assigned = desk.command(number, "assign", {"team_id": 1, "expected_version": 2}, token=assigner)
    assert assigned.status_code == 200, assigned.text
    released = desk.command(number, "release", {"expected_version": 3}, token=assigner)
    assert released.status_code == 403, released.text
    assert released.json["error"]["permission"] == "ticket.release"  # type: ignore[index]
    assert len(desk.events(number)) == 3
