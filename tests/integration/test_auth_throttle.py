"""Credential guessing through the real HTTP app (RELIABILITY.md S12/S13): wrong API keys and
agent tokens are logged by prefix only, counted, and lock the guessing address out with 429 +
Retry-After; other addresses, and requests that presented nothing, are not affected."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from libs.events.clock import FakeClock
from libs.platform.access import create_agent, create_api_key
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform

GOOD = {"name": "Ada", "email": "ada@example.com", "subject": "Broken", "message": "It broke"}
LIMIT, LOCKOUT_S = 4, 30
GUESSER, NEIGHBOUR = "192.0.2.66", "192.0.2.10"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def platform(tmp_path: Path, clock: FakeClock) -> Iterator[Platform]:
    """The embedded desk with a small limit, on a clock the tests advance."""
    settings = desk_settings(
        tmp_path, auth_failure_limit=LIMIT, auth_failure_window_s=600, auth_lockout_s=LOCKOUT_S
    )
    with open_platform(settings, clock) as platform:
        yield platform


@pytest.fixture
def api_key(platform: Platform) -> str:
    """Usable from any address: the throttle, not the allow-list, is what stops the guesser."""
    return create_api_key(platform.store, [])[1]


@pytest.fixture
def agent_token(platform: Platform) -> str:
    return create_agent(
        platform.store, email="grace@example.com", name="Grace", password=None, department_id=1
    )[1]


def open_ticket(client: FlaskClient, key: str | None, ip: str, **headers: str) -> TestResponse:
    if key is not None:
        headers["X-API-Key"] = key
    return client.post(
        "/api/tickets.json", json=GOOD, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def queue(client: FlaskClient, token: str, ip: str) -> TestResponse:
    return client.get(
        "/api/v1/queues/open/tickets",
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": ip},
    )


def failures(credential: str) -> float:
    value = REGISTRY.get_sample_value("deskstream_auth_failures_total", {"credential": credential})
    return value or 0.0


def guessed(key: str, n: int) -> str:
    """A wrong key with the real key's (public) prefix and a made-up secret."""
    return f"dsk_{key.split('_')[1]}_guessed-secret-{n:04d}"


def test_wrong_keys_lock_the_address_out_and_not_its_neighbour(
    client: FlaskClient, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = failures("api_key")
    with caplog.at_level(logging.WARNING, logger="libs.platform.auth_guard"):
        answers = [open_ticket(client, guessed(api_key, n), GUESSER) for n in range(LIMIT)]
        locked = open_ticket(client, guessed(api_key, LIMIT), GUESSER)
        locked_with_the_right_key = open_ticket(client, api_key, GUESSER)
        neighbour = open_ticket(client, api_key, NEIGHBOUR)

    assert [a.status_code for a in answers] == [401] * LIMIT
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(LOCKOUT_S)
    assert locked.mimetype == "text/plain"  # osTicket clients parse plain-text errors
    # Refused before the key is looked at: a key that worked now would be an oracle.
    assert locked_with_the_right_key.status_code == 429
    assert neighbour.status_code == 201, neighbour.text
    assert failures("api_key") - before == LIMIT  # the 429s checked no key

    prefix = api_key.split("_")[1]
    failed = [r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(failed) == LIMIT
    assert all(f"prefix={prefix} from {GUESSER}" in line for line in failed)
    assert "guessed-secret" not in caplog.text
    assert api_key.split("_", 2)[2] not in caplog.text
    assert f"authentication locked out: {GUESSER} for {LOCKOUT_S} s" in caplog.text


def test_the_lockout_ends_and_the_next_one_is_longer(
    client: FlaskClient, api_key: str, clock: FakeClock
) -> None:
    for n in range(LIMIT):
        open_ticket(client, guessed(api_key, n), GUESSER)
    retry = int(open_ticket(client, api_key, GUESSER).headers["Retry-After"])

    clock.advance(timedelta(seconds=retry))
    assert open_ticket(client, api_key, GUESSER).status_code == 201
    for n in range(LIMIT):  # a success resets nothing: the count runs on
        assert open_ticket(client, guessed(api_key, n), GUESSER).status_code == 401
    assert open_ticket(client, api_key, GUESSER).headers["Retry-After"] == str(2 * LOCKOUT_S)


def test_wrong_bearer_tokens_lock_the_address_out_of_every_endpoint(
    client: FlaskClient, api_key: str, agent_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = failures("agent_token")
    forged = f"dst_{agent_token.split('_')[1]}_not-the-secret"
    with caplog.at_level(logging.WARNING, logger="libs.platform.auth_guard"):
        assert [queue(client, forged, GUESSER).status_code for _ in range(LIMIT)] == [401] * LIMIT
    locked = queue(client, agent_token, GUESSER)

    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) == LOCKOUT_S
    assert locked.json is not None and locked.json["error"]["code"] == "too_many_requests"
    assert open_ticket(client, api_key, GUESSER).status_code == 429  # one lock per address
    assert queue(client, agent_token, NEIGHBOUR).status_code == 200
    assert failures("agent_token") - before == LIMIT
    assert "not-the-secret" not in caplog.text and agent_token not in caplog.text


def test_requests_that_present_no_credentials_are_not_counted(client: FlaskClient) -> None:
    answers = [open_ticket(client, None, GUESSER).status_code for _ in range(3 * LIMIT)]
    assert answers == [401] * (3 * LIMIT)
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": GUESSER}).status_code == 200


def test_a_forwarded_for_header_is_believed_only_from_a_trusted_proxy(
    client: FlaskClient, api_key: str
) -> None:
    """A guesser cannot dodge the count by naming a new address each time, and clients behind
    the trusted proxy (loopback by default) are counted one by one, not as the proxy."""
    for n in range(LIMIT):
        spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert open_ticket(client, guessed(api_key, n), GUESSER, **spoofed).status_code == 401
    assert (
        open_ticket(client, api_key, GUESSER, **{"X-Forwarded-For": "198.51.100.99"}).status_code
        == 429
    )

    for n in range(LIMIT):
        via_proxy = {"X-Forwarded-For": "203.0.113.5"}
        open_ticket(client, guessed(api_key, n), "127.0.0.1", **via_proxy)
    assert (
        open_ticket(client, api_key, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.5"}).status_code
        == 429
    )
    assert (
        open_ticket(client, api_key, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.6"}).status_code
        == 201
    )


def test_the_openapi_document_tells_integrators_about_the_429(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document is not None
    create = document["paths"]["/api/v1/tickets"]["post"]["responses"]
    assert create["429"] == {"$ref": "#/components/responses/TooManyRequests"}
