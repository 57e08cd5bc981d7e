"""The two push channels for email: `deskstream pipe` as a real process (its exit status is
what the MTA acts on) and remote piping over `POST /api/tickets.email`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from libs.platform.configuration import define
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform
from tests.support.mail import compose
from tests.support.platform import ROOT, base_env, deskstream
from tests.support.servers import free_port


def pipe(raw: bytes, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "pipe"],
        input=raw,
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def embedded_desk(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    data_dir = tmp_path_factory.mktemp("pipe")
    env = base_env(data_dir=str(data_dir))
    deskstream("migrate", env=env, cwd=ROOT)
    return env, data_dir


def test_pipe_exits_0_once_committed_and_0_again_for_the_same_message(
    embedded_desk: tuple[dict[str, str], Path],
) -> None:
    env, _ = embedded_desk
    raw = compose(message_id="<piped-once@mail.example.com>")
    first = pipe(raw, env, ROOT)
    assert first.returncode == 0, first.stderr.decode()
    action, number = first.stdout.decode().split()
    assert action == "created" and len(number) == 6
    again = pipe(raw, env, ROOT)
    assert again.returncode == 0
    assert again.stdout.decode().split() == ["duplicate", number]


def test_pipe_exits_65_for_a_message_it_refuses_for_good(
    embedded_desk: tuple[dict[str, str], Path],
) -> None:
    env, _ = embedded_desk
    garbage = pipe(b"\x00\x01 this is not an email at all", env, ROOT)
    assert garbage.returncode == 65
    assert b"refused" in garbage.stderr


def test_pipe_refuses_a_refused_message_again_with_the_same_exit_and_reason(
    embedded_desk: tuple[dict[str, str], Path],
) -> None:
    env, _ = embedded_desk
    # Mail from the desk's own address is a loop: refused, and recorded as refused.
    raw = compose(sender="support@deskstream.local", message_id="<loop-twice@mail.example.com>")
    first = pipe(raw, env, ROOT)
    assert first.returncode == 65, first.stderr.decode()
    again = pipe(raw, env, ROOT)
    assert again.returncode == 65, again.stdout.decode()
    assert _refusal(again.stderr) == _refusal(first.stderr) != ""


def _refusal(stderr: bytes) -> str:
    return next((line for line in stderr.decode().splitlines() if line.startswith("refused")), "")


def test_pipe_exits_75_when_the_database_is_down_so_the_mta_retries(tmp_path: Path) -> None:
    env = base_env(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone",
        data_dir=str(tmp_path),
    )
    result = pipe(compose(), env, ROOT)
    assert result.returncode == 75, result.stderr.decode()
    assert b"the MTA will retry" in result.stderr


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    """On both dialects (`client` and `api_key` of tests/conftest.py use this one)."""
    with open_platform(desk_settings(tmp_path, database_url)) as platform:
        yield platform


def remote_pipe(client: FlaskClient, key: str | None, raw: bytes):  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": key, "Content-Type": "message/rfc822"} if key else {}
    return client.post(
        "/api/tickets.email", data=raw, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )


def test_remote_piping_answers_like_osticket(
    platform: Platform, client: FlaskClient, api_key: str
) -> None:
    raw = compose(message_id="<remote@mail.example.com>")
    created = remote_pipe(client, api_key, raw)
    assert created.status_code == 201
    number = created.get_data(as_text=True)
    assert number.isdigit()
    assert remote_pipe(client, api_key, raw).get_data(as_text=True) == number

    assert remote_pipe(client, None, raw).status_code == 401
    assert remote_pipe(client, "dsk_wrong_key", raw).status_code == 401
    assert remote_pipe(client, api_key, b"   ").status_code == 400
    unparseable = remote_pipe(client, api_key, b"no headers, no sender, nothing")
    assert unparseable.status_code == 400
    assert "Unable to create new ticket" in unparseable.get_data(as_text=True)

    with platform.store.transaction() as conn:
        banned = {"id": 1, "email": "spam@example.org", "active": True}
        define(platform.store, "banned-email", banned, conn=conn, expected_version=0)
    spam = compose(sender="spam@example.org")
    denied = remote_pipe(client, api_key, spam)
    assert denied.status_code == 403
    again = remote_pipe(client, api_key, spam)  # a duplicate of a refusal is a refusal
    assert (again.status_code, again.get_data()) == (403, denied.get_data())
    tickets = [e for e in platform.store.read_all(0, 1000) if e.type == "TicketCreated"]
    assert [e.data["number"] for e in tickets] == [number]
