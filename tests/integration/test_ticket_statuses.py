"""Custom ticket statuses over HTTP on both dialects: an admin defines them, agents set them, and
routing, SLA, the queues and email intake go by each status's state, not its name."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.test import TestResponse

from libs.platform.database import reading
from services.intake.domain.mail.rules import Refusal
from services.intake.email_intake import MailOutcome, receive_email
from services.replay import replay
from services.routing.adapters.tables import routing_tickets
from tests.integration.routing_sla_desk import Desk
from tests.support.mail import compose


@pytest.fixture
def desk(database_url: str, tmp_path: Path) -> Iterator[Desk]:
    desk = Desk("embedded", database_url, tmp_path, None)
    try:
        yield desk
    finally:
        desk.close()


def admin(desk: Desk, method: str, path: str, body: dict[str, Any] | None = None) -> TestResponse:
    return desk.client.open(
        path, method=method, json=body, headers={"Authorization": f"Bearer {desk.token}"}
    )


def command(desk: Desk, number: str, action: str, body: dict[str, Any]) -> TestResponse:
    body = {"expected_version": desk.stream_version(number), **body}
    return admin(desk, "POST", f"/api/v1/tickets/{number}/{action}", body)


def email(desk: Desk, **fields: Any) -> MailOutcome:
    outcome = receive_email(desk.platform, compose(**fields), channel="pipe")
    desk.settle()
    return outcome


def queue(desk: Desk) -> list[str]:
    listed = admin(desk, "GET", "/api/v1/queues/open/tickets?per_page=200")
    assert listed.status_code == 200, listed.text
    return sorted(t["number"] for t in listed.json["tickets"])  # type: ignore[index]


def test_admins_define_statuses_and_refuse_clashing_names(desk: Desk) -> None:
    created = admin(
        desk, "POST", "/api/v1/ticket-statuses", {"name": "awaiting-customer", "state": "open"}
    )
    assert created.status_code == 201, created.text
    status_id = created.json["id"]  # type: ignore[index]
    assert created.headers["Location"] == f"/api/v1/ticket-statuses/{status_id}"
    assert created.json == {
        "id": status_id,
        "version": 1,
        "name": "awaiting-customer",
        "state": "open",
        "reopenable": True,
        "active": True,
    }
    body = {"name": "awaiting-customer", "state": "open", "active": False}
    replaced = admin(desk, "PUT", f"/api/v1/ticket-statuses/{status_id}", body)
    assert replaced.status_code == 200, replaced.text
    fetched = admin(desk, "GET", f"/api/v1/ticket-statuses/{status_id}")
    assert (fetched.json["active"], fetched.json["version"]) == (False, 2)  # type: ignore[index]
    listed = admin(desk, "GET", "/api/v1/ticket-statuses")
    assert [s["name"] for s in listed.json["items"]] == ["awaiting-customer"]  # type: ignore[index]

    for refused in (
        ("POST", "/api/v1/ticket-statuses", {"name": "closed", "state": "closed"}),
        ("POST", "/api/v1/ticket-statuses", {"name": "awaiting-customer", "state": "closed"}),
        ("POST", "/api/v1/ticket-statuses", {"name": "On Hold", "state": "open"}),
        ("POST", "/api/v1/ticket-statuses", {"name": "gone", "state": "deleted"}),
        ("PUT", f"/api/v1/ticket-statuses/{status_id}", {"name": "waiting", "state": "open"}),
    ):
        answer = admin(desk, *refused)
        assert answer.status_code == 400, answer.text
        error = answer.json["error"]  # type: ignore[index]
        assert error["field"] in {"name", "state"}, error


def test_custom_statuses_through_queues_sla_routing_and_email(desk: Desk) -> None:
    desk.define("ticket-statuses", {"name": "awaiting-customer", "state": "open"})
    desk.define("ticket-statuses", {"name": "duplicate", "state": "closed", "reopenable": False})
    desk.define("ticket-statuses", {"name": "retired", "state": "closed", "active": False})
    waiting = email(desk, message_id="<waiting@mail.example.com>").number or ""
    duplicate = email(desk, message_id="<duplicate@mail.example.com>").number or ""
    assert queue(desk) == sorted([waiting, duplicate])

    # Unknown and inactive statuses are refused, naming the field.
    for name in ("no-such-status", "retired"):
        refused = command(desk, waiting, "status", {"status": name})
        assert refused.status_code == 400, refused.text
        assert refused.json["error"]["field"] == "status"  # type: ignore[index]

    command(desk, waiting, "status", {"status": "awaiting-customer", "reason": "asked for logs"})
    command(desk, duplicate, "status", {"status": "duplicate"})
    desk.settle()
    (changed,) = desk.events(duplicate, "TicketStatusChanged")
    assert (changed["status"], changed["state"], changed["reopenable"]) == (
        "duplicate",
        "closed",
        False,
    )
    view = desk.ticket(waiting)
    assert (view["status"], view["state"]) == ("awaiting-customer", "open")
    view = desk.ticket(duplicate)
    assert (view["status"], view["state"]) == ("duplicate", "closed")
    # The open queue lists open-state tickets, whatever their status is called.
    assert queue(desk) == [waiting]
    with reading(desk.platform.engine) as conn:
        rows = conn.execute(select(routing_tickets.c.stream_id, routing_tickets.c.status))
        routing = {stream_id: status for stream_id, status in rows}
    assert routing[desk.stream(waiting)[0].stream_id] == "open"  # counts as an agent's load
    assert routing[desk.stream(duplicate)[0].stream_id] == "closed"

    # The SLA clock keeps running while the customer is awaited (no pause, as in osTicket).
    desk.clock.advance(timedelta(hours=19))  # the default plan: 18 hours around the clock
    assert desk.timer.run_once() == 1
    desk.settle()
    assert desk.ticket(waiting)["sla"]["overdue"] is True
    assert desk.ticket(duplicate)["sla"]["overdue"] is False
    assert desk.events(duplicate, "TicketOverdue") == []

    # A duplicate does not reopen: an assignment is refused, and a reply opens a new ticket.
    grace = desk.agent("Grace", 1)
    assigned = command(desk, duplicate, "assign", {"agent_id": grace})
    assert assigned.status_code == 409, assigned.text
    assert "duplicate, which does not reopen" in assigned.json["error"]["message"]  # type: ignore[index]
    version = desk.stream_version(duplicate)
    reply = email(desk, in_reply_to="<duplicate@mail.example.com>", body="Still broken.\n")
    assert reply.action == "created" and reply.number not in (duplicate, None)
    (created,) = desk.events(reply.number or "", "TicketCreated")
    assert created["previous_ticket"] == duplicate
    assert desk.stream_version(duplicate) == version
    assert desk.ticket(duplicate)["status"] == "duplicate"

    # A reply to the awaited ticket joins it, which stays as it is.
    joined = email(desk, in_reply_to="<waiting@mail.example.com>", body="Logs attached.\n")
    assert joined == MailOutcome("appended", waiting)
    assert desk.ticket(waiting)["status"] == "awaiting-customer"

    # The open-ticket limit counts open-state tickets: the awaited one and the new one.
    desk.platform.settings = dataclasses.replace(desk.platform.settings, max_open_tickets=2)
    over = email(desk, message_id="<third@mail.example.com>")
    assert over.refused is Refusal.OVER_LIMIT, over

    # Replayed from the log, the projection says the same.
    before = [desk.ticket(n) for n in (waiting, duplicate)]
    assert replay(desk.platform, "query") > 0
    assert [desk.ticket(n) for n in (waiting, duplicate)] == before
