"""CloudEvents in over HTTP, on SQLite and PostgreSQL: an alert opens a ticket through the
admin's event mapping, the same CloudEvent again changes nothing, a correlated one appends a
message, and what no mapping takes (or is no CloudEvent) is refused with nothing written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from libs.events.store import EventStore
from libs.platform.access import create_agent, create_api_key
from libs.platform.settings import Settings
from services.embedded import embedded_app
from services.intake.config import seed_defaults
from services.intake.domain.cloudevents import from_structured
from services.intake.handlers import find_ticket
from services.intake.inbound import Received, receive_cloudevent
from services.platform import Platform

STRUCTURED = {"Content-Type": "application/cloudevents+json"}

ALERTS = {
    "name": "Monitoring alerts",
    "type": "com.example.alert.fired",
    "source_prefix": "//monitoring/",
    "subject": "[{data.severity}] {data.summary}",
    "body": "{data.summary} on {subject} since {time}.",
    "requester_email": "alerts@monitoring.example",
    "requester_name": "Monitoring ({source})",
    "priority": "{data.severity}",
    "help_topic_id": 1,
    "correlation": "monitoring:{data.alert_id}",
}
RESOLVED = {
    "name": "Alert resolved",
    "type": "com.example.alert.resolved",
    "action": "append_message",
    "body": "Resolved: {data.summary}",
    "correlation": "monitoring:{data.alert_id}",
}


def alert(event_id: str, alert_id: str = "disk-full", **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "//monitoring/prod",
        "type": "com.example.alert.fired",
        "subject": "db-1",
        "time": "2026-01-05T09:00:00Z",
        "data": {"alert_id": alert_id, "severity": "high", "summary": "Disk full", **data},
    }


@pytest.fixture
def store(engine: Engine, store: EventStore) -> EventStore:
    seed_defaults(store)  # department 1, help topic 1, SLA plan 1
    return store


@pytest.fixture
def client(engine: Engine, store: EventStore) -> FlaskClient:
    platform = Platform(Settings(database_url=str(engine.url)), engine, store, store.clock)
    return embedded_app(platform).test_client()


@pytest.fixture
def admin(store: EventStore) -> dict[str, str]:
    _, token = create_agent(store, email="root@example.com", name="Root", password=None, admin=True)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_key(store: EventStore) -> dict[str, str]:
    return {"X-API-Key": create_api_key(store, [])[1]}


def define(client: FlaskClient, admin: dict[str, str], body: dict[str, Any]) -> int:
    created = client.post("/api/v1/event-mappings", headers=admin, json=body)
    assert created.status_code == 201, created.text
    return int(created.json["id"])  # type: ignore[index]


def send(client: FlaskClient, headers: dict[str, str], event: dict[str, Any]) -> TestResponse:
    return client.post(
        "/api/v1/events", headers={**headers, **STRUCTURED}, data=orjson.dumps(event)
    )


def accepted(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def thread(store: EventStore, number: str) -> list[tuple[str, dict[str, Any]]]:
    with store.engine.connect() as conn:
        stream = find_ticket(conn, number)
    assert stream is not None
    return [(e.type, e.data) for e in store.read_stream(stream)]


def test_an_alert_opens_a_ticket_once_and_correlated_events_append(
    client: FlaskClient, store: EventStore, admin: dict[str, str], api_key: dict[str, str]
) -> None:
    define(client, admin, ALERTS)
    define(client, admin, RESOLVED)

    first = accepted(send(client, api_key, alert("evt-1")))
    assert first == {"ticket": first["ticket"], "action": "open_ticket", "duplicate": False}
    [(kind, created)] = thread(store, first["ticket"])
    assert kind == "TicketCreated"
    assert created["subject"] == "[high] Disk full"
    assert created["body"] == "Disk full on db-1 since 2026-01-05T09:00:00Z."
    assert created["requester"] == {
        "email": "alerts@monitoring.example",
        "name": "Monitoring (//monitoring/prod)",
    }
    assert (created["channel"], created["priority"], created["help_topic_id"]) == (
        "event",
        "high",
        1,
    )

    # The same CloudEvent again (a retry): the same ticket, nothing appended.
    head = store.head_position()
    again = accepted(send(client, api_key, alert("evt-1", summary="changed")))
    assert again == {"ticket": first["ticket"], "action": "open_ticket", "duplicate": True}
    assert store.head_position() == head

    # Another event of the same alert, in binary mode: a message on the same ticket.
    binary = client.post(
        "/api/v1/events",
        headers={
            **api_key,
            "ce-specversion": "1.0",
            "ce-id": "evt-2",
            "ce-source": "//monitoring/prod",
            "ce-type": "com.example.alert.fired",
            "ce-subject": "db-1",
            "Content-Type": "application/json",
        },
        data=orjson.dumps({"alert_id": "disk-full", "severity": "emergency", "summary": "Still"}),
    )
    assert accepted(binary) == {
        "ticket": first["ticket"],
        "action": "append_message",
        "duplicate": False,
    }
    resolved = {**alert("evt-3"), "type": "com.example.alert.resolved"}
    assert accepted(send(client, admin, resolved))["ticket"] == first["ticket"]
    assert accepted(send(client, api_key, resolved)) == {
        "ticket": first["ticket"],
        "action": "append_message",
        "duplicate": True,
    }
    messages = [data for kind, data in thread(store, first["ticket"]) if kind == "MessageAppended"]
    assert [(m["body"], m["channel"], m["kind"]) for m in messages] == [
        ("Still on db-1 since .", "event", "message"),
        ("Resolved: Disk full", "event", "message"),
    ]
    assert messages[0]["author"]["email"] == "alerts@monitoring.example"
    assert messages[1]["author"] == {
        "kind": "system",
        "id": None,
        "name": "//monitoring/prod",
        "email": None,
    }

    # Another alert opens its own ticket (NUL, which PostgreSQL cannot store, is dropped).
    other = accepted(send(client, api_key, alert("evt-4", alert_id="cpu", summary="CPU\x00 hot")))
    assert other["action"] == "open_ticket" and other["ticket"] != first["ticket"]
    assert thread(store, other["ticket"])[0][1]["subject"] == "[high] CPU hot"


def test_a_closed_ticket_reopens_and_an_archived_one_gets_a_successor(
    client: FlaskClient, store: EventStore, admin: dict[str, str], api_key: dict[str, str]
) -> None:
    define(client, admin, ALERTS)
    number = accepted(send(client, api_key, alert("evt-1")))["ticket"]
    closed = client.post(
        f"/api/v1/tickets/{number}/status",
        headers=admin,
        json={"status": "closed", "expected_version": 1},
    )
    assert closed.status_code == 200, closed.text
    assert accepted(send(client, api_key, alert("evt-2")))["action"] == "append_message"
    kinds = [(kind, data.get("status")) for kind, data in thread(store, number)]
    assert kinds[-2:] == [("MessageAppended", None), ("TicketStatusChanged", "open")]

    # An archived ticket stays closed: the alert opens a successor, which later events follow.
    archived = client.post(
        f"/api/v1/tickets/{number}/status",
        headers=admin,
        json={"status": "archived", "expected_version": len(kinds)},
    )
    assert archived.status_code == 200, archived.text
    successor = accepted(send(client, api_key, alert("evt-3")))
    assert successor["action"] == "open_ticket" and successor["ticket"] != number
    assert accepted(send(client, api_key, alert("evt-4")))["ticket"] == successor["ticket"]
    assert len(thread(store, number)) == len(kinds) + 1


def test_refusals_write_nothing(
    client: FlaskClient, store: EventStore, admin: dict[str, str], api_key: dict[str, str]
) -> None:
    define(client, admin, RESOLVED)
    head = store.head_position()

    def error(response: TestResponse, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json["error"]  # type: ignore[index]
        return body

    unmapped = error(send(client, api_key, alert("evt-1")), 422)
    assert unmapped["code"] == "no_mapping"
    assert "com.example.alert.fired" in unmapped["message"]
    nothing_to_append = {**alert("evt-2"), "type": "com.example.alert.resolved"}
    assert "no ticket has it yet" in error(send(client, api_key, nothing_to_append), 422)["message"]
    assert (
        error(send(client, api_key, {**alert("evt-3"), "specversion": "0.3"}), 400)["field"]
        == "specversion"
    )
    assert error(send(client, api_key, {**alert("evt-4"), "id": None}), 400)["field"] == "id"
    assert error(send(client, api_key, alert("evt-\x00")), 400)["field"] == "id"
    garbage = client.post("/api/v1/events", headers={**api_key, **STRUCTURED}, data=b"{oops")
    assert "malformed JSON" in error(garbage, 400)["message"]
    plain = client.post("/api/v1/events", headers=api_key, json=alert("evt-5"))
    assert "not a CloudEvent" in error(plain, 400)["message"]
    assert error(send(client, {}, alert("evt-6")), 401)["code"] == "unauthorized"
    assert error(send(client, {"X-API-Key": "nope"}, alert("evt-7")), 401)
    assert store.head_position() == head

    # Once a mapping takes it, the refused event goes through: a refusal claimed nothing.
    define(client, admin, ALERTS)
    assert accepted(send(client, api_key, alert("evt-1")))["duplicate"] is False


def test_mappings_are_admin_configuration(
    client: FlaskClient, store: EventStore, admin: dict[str, str]
) -> None:
    mapping_id = define(client, admin, ALERTS)
    got = client.get(f"/api/v1/event-mappings/{mapping_id}", headers=admin).json
    assert got is not None
    assert (got["version"], got["action"], got["enabled"]) == (1, "open_ticket", True)
    replaced = client.put(
        f"/api/v1/event-mappings/{mapping_id}",
        headers={**admin, "If-Match": '"1"'},
        json={**ALERTS, "enabled": False},
    )
    assert replaced.status_code == 200 and replaced.json is not None
    assert (replaced.json["version"], replaced.json["enabled"]) == (2, False)
    listed = client.get("/api/v1/event-mappings", headers=admin).json
    assert listed is not None and [m["name"] for m in listed["items"]] == [ALERTS["name"]]

    head = store.head_position()
    for body, field in [
        ({**ALERTS, "subject": "{data.summary!r}"}, "subject"),
        ({**ALERTS, "correlation": "{data.alert_id"}, "correlation"),
        ({**ALERTS, "help_topic_id": 99}, "help_topic_id"),
        ({**ALERTS, "action": "close_ticket"}, "action"),
        ({**ALERTS, "requester_email": "nobody"}, "requester_email"),
        ({k: v for k, v in ALERTS.items() if k != "type"}, "type"),
    ]:
        refused = client.post("/api/v1/event-mappings", headers=admin, json=body)
        assert refused.status_code == 400, (field, refused.text)
        assert refused.json is not None and refused.json["error"]["field"] == field
    assert store.head_position() == head


def test_racing_events_of_one_new_alert_open_one_ticket(
    client: FlaskClient, store: EventStore, admin: dict[str, str]
) -> None:
    define(client, admin, ALERTS)
    # evt-1 twice (a sender's retry racing the original), and three more of the same alert.
    events = [from_structured(orjson.dumps(alert(f"evt-{n}"))) for n in (1, 1, 2, 3, 4)]
    start = threading.Barrier(len(events))

    def receive(index: int) -> Received:
        start.wait()
        return receive_cloudevent(
            store, events[index], max_open_tickets=0, metadata={"actor": "test"}
        )

    with ThreadPoolExecutor(len(events)) as pool:
        results = list(pool.map(receive, range(len(events))))

    assert len({r.ticket for r in results}) == 1
    assert sorted(r.action for r in results if not r.duplicate) == [
        "append_message",
        "append_message",
        "append_message",
        "open_ticket",
    ]
    assert [r.duplicate for r in results].count(True) == 1
    kinds = [kind for kind, _ in thread(store, results[0].ticket)]
    assert kinds == ["TicketCreated", "MessageAppended", "MessageAppended", "MessageAppended"]
