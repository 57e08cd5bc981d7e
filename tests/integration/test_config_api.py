"""The admin configuration API on SQLite and PostgreSQL: round trips with versions, refusals
that name the field and append nothing, and agents whose secrets never leave the server."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from libs.events.store import EventStore
from libs.platform.access import create_agent, verify_password
from libs.platform.database import reading
from libs.platform.settings import Settings
from services.embedded import embedded_app
from services.intake.config import seed_defaults
from services.platform import Platform


@pytest.fixture
def client(engine: Engine, store: EventStore) -> FlaskClient:
    seed_defaults(store)  # department 1, help topic 1, SLA plan 1
    platform = Platform(Settings(database_url=str(engine.url)), engine, store, store.clock)
    return embedded_app(platform).test_client()


@pytest.fixture
def admin(store: EventStore) -> dict[str, str]:
    _, token = create_agent(store, email="root@example.com", name="Root", password=None, admin=True)
    return {"Authorization": f"Bearer {token}"}


def error(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json["error"]  # type: ignore[index]
    return body


def test_create_get_list_replace_round_trip(client: FlaskClient, admin: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/departments", headers=admin, json={"name": "Sales", "parent_id": 1}
    )
    assert created.status_code == 201
    body = created.json
    assert body is not None
    assert (body["id"], body["version"], body["name"], body["parent_id"]) == (2, 1, "Sales", 1)
    assert body["status"] == "active" and body["autoresponder"]["new_ticket"] is True  # defaults
    assert created.headers["Location"] == "/api/v1/departments/2"

    got = client.get("/api/v1/departments/2", headers=admin)
    assert got.json == body and got.headers["ETag"] == '"1"'
    listed = client.get("/api/v1/departments", headers=admin).json
    assert listed is not None
    assert [d["name"] for d in listed["items"]] == ["Support", "Sales"]

    replacement = {k: v for k, v in body.items() if k not in ("id", "version")}
    replaced = client.put(
        "/api/v1/departments/2",
        headers=admin,
        json={**replacement, "name": "Sales EMEA", "expected_version": 1},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json == {**body, "name": "Sales EMEA", "version": 2}
    again = client.put(
        "/api/v1/departments/2", headers={**admin, "If-Match": '"2"'}, json={"name": "Sales"}
    )
    assert again.json is not None and again.json["version"] == 3
    assert again.json["parent_id"] is None  # a full replacement: what is left out is reset
    latest = client.get("/api/v1/departments/2", headers=admin).json
    assert latest is not None and (latest["name"], latest["version"]) == ("Sales", 3)


def test_every_collection_creates_and_reads(client: FlaskClient, admin: dict[str, str]) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "schedules": {"name": "Office", "timezone": "Europe/Paris", "hours": {"mon": [["09:00", "17:00"]]}},
        "sla-plans": {"name": "Gold", "grace_hours": 4, "schedule_id": 1},
        "templates": {"name": "Thanks", "subject": "Re: {subject}", "body": "Thanks!"},
        "teams": {"name": "Tier 2", "lead_id": 1, "member_ids": [1]},
        "help-topics": {"name": "Billing", "department_id": 1, "auto_assign": {"team_id": 1}},
        "filters": {
            "name": "VIP",
            "rules": [{"field": "email", "op": "match", "value": "@vip\\.example$"}],
            "actions": [{"type": "sla_plan", "value": 2}, {"type": "canned_response", "value": 1}],
        },
        "agents": {"email": "ann@example.com", "name": "Ann", "username": "ann", "team_ids": [1]},
    }  # fmt: skip
    for collection, body in bodies.items():
        created = client.post(f"/api/v1/{collection}", headers=admin, json=body)
        assert created.status_code == 201, (collection, created.text)
        location = created.headers["Location"]
        got = client.get(location, headers=admin).json
        assert got is not None and got["name"] == body["name"] and got["version"] == 1


def test_only_admins(client: FlaskClient, admin: dict[str, str], store: EventStore) -> None:
    _, token = create_agent(store, email="a@example.com", name="A", password=None)
    agent = {"Authorization": f"Bearer {token}"}
    assert error(client.get("/api/v1/departments"), 401)["code"] == "unauthorized"
    bogus = {"Authorization": "Bearer dst_00000000_nope"}
    assert error(client.get("/api/v1/teams/1", headers=bogus), 401)["code"] == "unauthorized"
    assert error(client.get("/api/v1/departments", headers=agent), 403)["code"] == "forbidden"
    before = store.head_position()
    refused = client.post("/api/v1/templates", headers=agent, json={"name": "x"})
    assert error(refused, 403)["code"] == "forbidden"
    assert error(client.put("/api/v1/departments/1", headers=agent, json={}), 403)
    assert store.head_position() == before


REFUSED = [
    (
        "filters",
        {"name": "Bad", "rules": [{"field": "subject", "op": "match", "value": "(oops"}]},
        "rules[0].value",
    ),
    (
        "schedules",
        {"name": "Mars", "timezone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}},
        "timezone",
    ),
    ("schedules", {"name": "Never", "timezone": "UTC", "hours": {"sat": []}}, "hours"),
    ("help-topics", {"name": "Lost", "department_id": 99}, "department_id"),
    ("departments", {"name": "Sales", "colour": "red"}, "colour"),
    ("sla-plans", {"name": "Slow", "grace_hours": -1}, "grace_hours"),
]


def test_refusals_name_the_field_and_append_nothing(
    client: FlaskClient, admin: dict[str, str], store: EventStore
) -> None:
    before = store.head_position()
    attempts = [(client.post(f"/api/v1/{c}", headers=admin, json=b), f) for c, b, f in REFUSED]
    lost = {"name": "General Inquiry", "department_id": 99, "expected_version": 1}
    attempts.append(
        (client.put("/api/v1/help-topics/1", headers=admin, json=lost), "department_id")
    )
    for response, field in attempts:
        refused = error(response, 400)
        assert (refused["code"], refused["field"]) == ("validation_failed", field), refused
        assert refused["message"].startswith(f"{field}: ") and field in refused["errors"]
    assert store.head_position() == before


def test_stale_version_is_a_conflict_and_appends_nothing(
    client: FlaskClient, admin: dict[str, str], store: EventStore
) -> None:
    topic = {"name": "General Inquiry", "department_id": 1}
    assert client.put("/api/v1/help-topics/1", headers=admin, json=topic).status_code == 200
    before = store.head_position()
    stale = client.put(
        "/api/v1/help-topics/1", headers=admin, json={**topic, "expected_version": 1}
    )
    assert error(stale, 409) == {
        "code": "conflict",
        "message": "help topic 1 is at version 2, not 1",
        "current_version": 2,
    }
    stale = client.put("/api/v1/help-topics/1", headers={**admin, "If-Match": '"1"'}, json=topic)
    assert error(stale, 409)["current_version"] == 2
    assert store.head_position() == before


def test_unknown_ids_are_404(client: FlaskClient, admin: dict[str, str]) -> None:
    assert error(client.get("/api/v1/teams/7", headers=admin), 404)["code"] == "not_found"
    assert error(client.put("/api/v1/teams/7", headers=admin, json={"name": "T"}), 404)
    assert client.get("/api/v1/gadgets", headers=admin).status_code == 404


def test_agent_secrets_never_leave_and_tokens_survive_updates(
    client: FlaskClient, admin: dict[str, str], store: EventStore
) -> None:
    password = "correct horse battery"
    body = {"email": "bo@example.com", "name": "Bo", "username": "bo", "password": password}
    created = client.post("/api/v1/agents", headers=admin, json=body)
    assert created.status_code == 201, created.text
    agent = created.json
    assert agent is not None
    token = agent.pop("token")  # shown this once
    bo = {"Authorization": f"Bearer {token}"}
    url = created.headers["Location"]
    for response in (created, client.get(url, headers=admin), client.get("/api/v1/agents", headers=admin)):  # fmt: skip
        for secret in (password, "password", "token_hash", "$argon2"):
            assert secret not in response.text
    stored = store.read_stream(f"config-agent-{agent['id']}")[-1].data
    assert password not in str(stored) and stored["password_hash"].startswith("$argon2")

    # Bo's token works (as a non-admin: 403, not 401) and keeps working through an update.
    assert client.get("/api/v1/agents", headers=bo).status_code == 403
    changed = {k: v for k, v in agent.items() if k not in ("id", "version")}
    changed["on_vacation"] = True
    updated = client.put(url, headers=admin, json=changed)
    assert updated.json is not None and updated.json["on_vacation"] is True
    assert client.get("/api/v1/agents", headers=bo).status_code == 403
    with reading(store.engine) as conn:
        assert verify_password(conn, "bo", password) is not None

    # A new password replaces the old one; the token still works.
    client.put(url, headers=admin, json={**changed, "password": "new and improved"})
    with reading(store.engine) as conn:
        assert verify_password(conn, "bo@example.com", password) is None
        assert verify_password(conn, "bo@example.com", "new and improved") is not None
    assert client.get("/api/v1/agents", headers=bo).status_code == 403


def test_agent_email_and_username_are_unique(
    client: FlaskClient, admin: dict[str, str], store: EventStore
) -> None:
    before = store.head_position()
    for clash, field in (({"email": "ROOT@example.com"}, "email"), ({"username": "root"}, "username")):  # fmt: skip
        body = {"email": "x@example.com", "name": "X", "username": "x", **clash}
        refused = error(client.post("/api/v1/agents", headers=admin, json=body), 400)
        assert refused["field"] == field
    assert store.head_position() == before


def test_the_last_admin_stays_one(client: FlaskClient, admin: dict[str, str]) -> None:
    root = client.get("/api/v1/agents/1", headers=admin).json
    assert root is not None
    demoted = {k: v for k, v in root.items() if k not in ("id", "version")} | {"admin": False}
    assert (
        error(client.put("/api/v1/agents/1", headers=admin, json=demoted), 400)["field"] == "admin"
    )
    assert client.get("/api/v1/agents", headers=admin).status_code == 200
