"""`/api/v1/api-keys`: an admin creates a key (shown once), never sees its secret again, and
what a PUT changes (active, ip_allow, can_create_tickets) is what `/api/tickets.json` enforces."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from libs.platform.access import create_agent, create_api_key
from services.platform import Platform

TICKET = {"name": "Ada", "email": "ada@example.com", "subject": "Broken", "message": "It broke"}


# `platform` and `client`: the embedded desk of tests/conftest.py.


@pytest.fixture
def admin(platform: Platform) -> dict[str, str]:
    _, token = create_agent(
        platform.store, email="root@example.com", name="Root", password=None, admin=True
    )
    return {"Authorization": f"Bearer {token}"}


def open_ticket(client: FlaskClient, key: str, ip: str = "127.0.0.1") -> TestResponse:
    return client.post(
        "/api/tickets.json",
        json=TICKET,
        headers={"X-API-Key": key},
        environ_base={"REMOTE_ADDR": ip},
    )


def refused(response: TestResponse, status: int) -> str:
    """osTicket's API answers errors in plain text."""
    assert response.status_code == status, response.text
    return response.text


def error(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json["error"]  # type: ignore[index]
    return body


def test_a_created_key_is_shown_once_and_opens_tickets(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    body = {"ip_allow": ["127.0.0.1", "10.0.0.0/8"], "notes": "monitoring", "active": True}
    created = client.post("/api/v1/api-keys", headers=admin, json=body)

    assert created.status_code == 201, created.text
    key_view = created.json
    assert key_view is not None
    key = key_view.pop("key")
    secret = key.split("_", 2)[2]
    assert key_view == {
        "id": 1,
        "version": 1,
        "ip_allow": ["127.0.0.1", "10.0.0.0/8"],
        "can_create_tickets": True,
        "active": True,
        "notes": "monitoring",
        "prefix": key.split("_")[1],
    }
    assert created.headers["Location"] == "/api/v1/api-keys/1"
    assert open_ticket(client, key).status_code == 201
    assert open_ticket(client, key, ip="10.20.30.40").status_code == 201

    got = client.get("/api/v1/api-keys/1", headers=admin)
    listed = client.get("/api/v1/api-keys", headers=admin)
    assert got.json == key_view and listed.json == {"items": [key_view]}
    for response in (got, listed):
        assert secret not in response.text and "key_hash" not in response.text


def test_what_a_put_changes_is_enforced_and_the_key_stays_the_same(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    created = client.post("/api/v1/api-keys", headers=admin, json={"ip_allow": ["127.0.0.1"]})
    assert created.json is not None
    key, url = created.json["key"], created.headers["Location"]
    shown = client.get(url, headers=admin).json
    assert shown is not None
    as_shown = {k: v for k, v in shown.items() if k not in ("id", "version")}  # prefix included

    off = client.put(url, headers=admin, json={**as_shown, "active": False, "expected_version": 1})
    assert off.status_code == 200 and off.json is not None and off.json["version"] == 2
    assert "key" not in off.json
    assert refused(open_ticket(client, key), 401) == "Valid API key required"

    moved = {**as_shown, "ip_allow": ["192.0.2.0/24"]}
    assert client.put(url, headers=admin, json=moved).status_code == 200
    assert "source IP" in refused(open_ticket(client, key), 403)
    assert open_ticket(client, key, ip="192.0.2.9").status_code == 201  # the same key again

    read_only = {**moved, "can_create_tickets": False}
    assert client.put(url, headers=admin, json=read_only).status_code == 200
    assert refused(open_ticket(client, key, ip="192.0.2.9"), 401) == "API key not authorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ip_allow": ["127.0.0.1", "10.0.0.0/33"]}, "ip_allow[1]"),
        ({"ip_allow": ["intranet"]}, "ip_allow[0]"),
        ({"ip_allow": "127.0.0.1"}, "ip_allow"),
        ({"notes": "no list"}, "ip_allow"),  # required: leaving it out would admit anywhere
        ({"ip_allow": [], "key_hash": "0" * 64}, "key_hash"),
        ({"ip_allow": [], "active": "maybe"}, "active"),
    ],
)
def test_bad_bodies_name_the_field_and_append_nothing(
    client: FlaskClient, admin: dict[str, str], platform: Platform, body: Any, field: str
) -> None:
    before = platform.store.head_position()
    refused = error(client.post("/api/v1/api-keys", headers=admin, json=body), 400)
    assert refused["field"] == field and field in refused["message"]
    assert platform.store.head_position() == before


def test_keys_are_for_admins_only(
    client: FlaskClient, admin: dict[str, str], platform: Platform
) -> None:
    _, token = create_agent(platform.store, email="a@example.com", name="A", password=None)
    agent = {"Authorization": f"Bearer {token}"}
    assert error(client.get("/api/v1/api-keys"), 401)["code"] == "unauthorized"
    assert error(client.get("/api/v1/api-keys", headers=agent), 403)["code"] == "forbidden"
    refused = client.post("/api/v1/api-keys", headers=agent, json={"ip_allow": []})
    assert error(refused, 403)["code"] == "forbidden"


def test_a_cli_key_is_listed_and_managed_like_any_other(
    client: FlaskClient, admin: dict[str, str], platform: Platform
) -> None:
    key_id, key = create_api_key(platform.store, ["127.0.0.1"], notes="from the CLI")
    listed = client.get("/api/v1/api-keys", headers=admin).json
    assert listed is not None
    assert [(k["id"], k["notes"], k["prefix"]) for k in listed["items"]] == [
        (key_id, "from the CLI", key.split("_")[1])
    ]
    off = {"ip_allow": ["127.0.0.1"], "active": False}
    assert client.put(f"/api/v1/api-keys/{key_id}", headers=admin, json=off).status_code == 200
    assert refused(open_ticket(client, key), 401) == "Valid API key required"
