"""Bad input at the intake API: each a clear 4xx, and nothing appended to the store."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from libs.platform.access import create_api_key
from libs.platform.settings import Settings
from services.platform import Platform

GOOD = {"name": "Ada", "email": "ada@example.com", "subject": "Broken", "message": "It broke"}


# `platform` and `client`: the embedded desk of tests/conftest.py.


@pytest.fixture
def api_key(platform: Platform) -> str:
    """Also for an allowed network beside the test client's address."""
    return create_api_key(platform.store, ["127.0.0.1", "10.1.0.0/16"])[1]


def post(
    client: FlaskClient,
    key: str | None,
    body: object = GOOD,
    ip: str = "127.0.0.1",
    **kwargs: object,
):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key} if key else {}
    if "data" in kwargs:
        return client.post(
            "/api/tickets.json", headers=headers, environ_base={"REMOTE_ADDR": ip}, **kwargs
        )
    return client.post(
        "/api/tickets.json", headers=headers, json=body, environ_base={"REMOTE_ADDR": ip}
    )


def ticket_events(platform: Platform) -> int:
    return len([e for e in platform.store.read_all(0, 10_000) if e.stream_id.startswith("ticket-")])


def test_good_request_creates_one_ticket(
    client: FlaskClient, api_key: str, platform: Platform
) -> None:
    response = post(client, api_key)
    assert response.status_code == 201
    assert response.text.isdigit() and len(response.text) == 6
    assert ticket_events(platform) == 1


def test_allowed_network_accepts(client: FlaskClient, api_key: str) -> None:
    assert post(client, api_key, ip="10.1.200.3").status_code == 201


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("no key", 401, "Valid API key required"),
        ("wrong key", 401, "Valid API key required"),
        ("forged prefix", 401, "Valid API key required"),
        ("ip outside allow-list", 403, "source IP"),
        ("malformed json", 400, "malformed JSON"),
        ("empty body", 400, "empty"),
        ("json array", 400, "JSON object"),
        ("missing email", 400, "email"),
        ("bad email", 400, "email"),
        ("missing subject", 400, "subject"),
        ("bad priority", 400, "priority"),
        ("bad origin", 400, "origin"),
        ("wrong content type", 415, "Unsupported data format"),
        ("oversized body", 413, ""),
        ("bad attachment", 400, "attachment"),
    ],
)
def test_bad_input_is_refused_and_appends_nothing(
    case: str, status: int, message: str, client: FlaskClient, api_key: str, platform: Platform
) -> None:
    prefix = api_key.split("_")[1]
    requests = {
        "no key": lambda: post(client, None),
        "wrong key": lambda: post(client, api_key[:-3] + "xyz"),
        "forged prefix": lambda: post(client, f"dsk_{prefix}_guessed-secret"),
        "ip outside allow-list": lambda: post(client, api_key, ip="192.0.2.7"),
        "malformed json": lambda: post(
            client, api_key, data='{"name": ', content_type="application/json"
        ),
        "empty body": lambda: post(client, api_key, data="", content_type="application/json"),
        "json array": lambda: post(client, api_key, body=[GOOD]),
        "missing email": lambda: post(
            client, api_key, body={k: v for k, v in GOOD.items() if k != "email"}
        ),
        "bad email": lambda: post(client, api_key, body={**GOOD, "email": "not-an-address"}),
        "missing subject": lambda: post(
            client, api_key, body={k: v for k, v in GOOD.items() if k != "subject"}
        ),
        "bad priority": lambda: post(client, api_key, body={**GOOD, "priorityId": 9}),
        "bad origin": lambda: post(client, api_key, body={**GOOD, "source": "Carrier pigeon"}),
        "wrong content type": lambda: post(
            client, api_key, data="name=Ada", content_type="application/x-www-form-urlencoded"
        ),
        "oversized body": lambda: post(
            client,
            api_key,
            # one byte past the request limit the settings derive from the email limit
            data=b"{" + b" " * Settings().max_request_bytes + b"}",
            content_type="application/json",
        ),
        "bad attachment": lambda: post(
            client, api_key, body={**GOOD, "attachments": [{"a.txt": "data:text/plain;base64,@@@"}]}
        ),
    }
    response = requests[case]()
    assert response.status_code == status, response.text
    assert message in response.text
    assert response.mimetype == "text/plain"  # osTicket clients parse plain-text errors
    assert ticket_events(platform) == 0


def test_idempotency_key_retry_makes_no_second_ticket(
    client: FlaskClient, api_key: str, platform: Platform
) -> None:
    headers = {"X-API-Key": api_key, "Idempotency-Key": "retry-7"}
    first = client.post(
        "/api/tickets.json", json=GOOD, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    second = client.post(
        "/api/tickets.json", json=GOOD, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert first.status_code == second.status_code == 201
    assert first.text == second.text
    assert ticket_events(platform) == 1


def test_v1_create_answers_json_and_errors_as_json(client: FlaskClient, api_key: str) -> None:
    headers = {"X-API-Key": api_key}
    ok = client.post(
        "/api/v1/tickets", json=GOOD, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert ok.status_code == 201
    assert (
        ok.json is not None
        and ok.json["version"] == 1
        and ok.headers["Location"].endswith(ok.json["number"])
    )
    bad = client.post(
        "/api/v1/tickets", json={}, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert bad.status_code == 400
    assert bad.json is not None and bad.json["error"]["code"] == "validation_failed"


def test_key_never_appears_in_the_log(platform: Platform, api_key: str) -> None:
    secret = api_key.split("_", 2)[2]
    for event in platform.store.read_all(0, 100):
        assert secret not in str(event.data)


def test_forwarded_client_is_believed_only_from_a_trusted_proxy(
    client: FlaskClient, api_key: str
) -> None:
    via_proxy = {"X-API-Key": api_key, "X-Forwarded-For": "192.0.2.50, 127.0.0.1"}
    refused = client.post(
        "/api/tickets.json", json=GOOD, headers=via_proxy, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert refused.status_code == 403  # the real client 192.0.2.50 is not allowed
    spoofed = {"X-API-Key": api_key, "X-Forwarded-For": "127.0.0.1"}
    stranger = client.post(
        "/api/tickets.json", json=GOOD, headers=spoofed, environ_base={"REMOTE_ADDR": "192.0.2.9"}
    )
    assert stranger.status_code == 403  # an untrusted peer cannot claim to be loopback
    allowed = {"X-API-Key": api_key, "X-Forwarded-For": "10.1.4.4"}
    assert (
        client.post(
            "/api/tickets.json",
            json=GOOD,
            headers=allowed,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        ).status_code
        == 201
    )


def test_the_callers_trace_rides_with_the_ticket(
    client: FlaskClient, api_key: str, platform: Platform
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"X-API-Key": api_key, "traceparent": traceparent}
    response = client.post(
        "/api/tickets.json", json=GOOD, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert response.status_code == 201
    created = next(e for e in platform.store.read_all(0, 100) if e.type == "TicketCreated")
    assert created.metadata["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert created.metadata["actor"].startswith("apikey:")
