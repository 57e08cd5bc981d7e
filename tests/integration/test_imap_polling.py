"""IMAP polling against a real dovecot: order, what happens after a commit, failures, backoff,
and mail becoming tickets in a real platform (in-process, and through `deskstream fetch-mail`)."""

from __future__ import annotations

import contextlib
import email
import functools
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from imapclient import IMAPClient

from libs.events.clock import FakeClock
from libs.events.runner import Runner, Worker
from libs.platform.settings import Settings
from services.intake.adapters.imap import MAILBOX_ERRORS, MailPoller, poll_account
from services.intake.email_intake import receive_email
from services.intake.mail_accounts import ImapAccount
from services.platform import Platform
from tests.support.desk import build_platform, desk_settings, open_platform
from tests.support.mail import compose
from tests.support.platform import ROOT, Deployment, base_env
from tests.support.servers import LOOPBACK, Dovecot, free_port, log_tail


class Receiver:
    """Stands in for receive_email: idempotent by Message-ID, one effect per new message."""

    def __init__(self) -> None:
        self.effects: list[str] = []  # Message-IDs, in the order they took effect
        self.calls = 0
        self.failing: dict[str, int] = {}  # Message-ID -> how many more calls fail ("db down")

    def __call__(self, raw: bytes) -> str:
        self.calls += 1
        message_id = str(email.message_from_bytes(raw)["Message-ID"])
        if self.failing.get(message_id):
            self.failing[message_id] -= 1
            raise ConnectionError("database unavailable")
        if message_id in self.effects:
            return "duplicate"
        self.effects.append(message_id)
        return "created"


def mailbox(dovecot: Dovecot, *, port: int | None = None, **options: Any) -> ImapAccount:
    """A fresh dovecot account, and its ImapAccount (plain IMAP on loopback)."""
    username = f"desk-{uuid.uuid4().hex[:12]}@example.org"
    dovecot.add_user(username, "secret")
    account = ImapAccount(
        name=username.split("@")[0],
        host=LOOPBACK,
        port=port or dovecot.port,
        username=username,
        password="secret",
        ssl=False,
        interval_seconds=1.0,
        timeout_seconds=5.0,
        after="delete",
        archive_folder="Processed",  # used by after="move"
    )
    return replace(account, **options)


def message(subject: str) -> tuple[str, bytes]:
    message_id = f"<{uuid.uuid4().hex}@customer.example>"
    raw = (
        f"From: Ada <ada@customer.example>\r\nTo: support@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n\r\n{subject}: it is broken.\r\n"
    ).encode()
    return message_id, raw


def deliver(dovecot: Dovecot, account: ImapAccount, count: int, *, seen: bool = False) -> list[str]:
    """APPEND `count` messages to the account's INBOX, oldest first; their Message-IDs."""
    with dovecot.client(account.username) as imap:
        return append(imap, count, seen=seen)


def append(imap: IMAPClient, count: int, *, seen: bool = False) -> list[str]:
    ids = []
    for n in range(count):
        message_id, raw = message(f"Problem {n + 1}")
        imap.append("INBOX", raw, flags=[b"\\Seen"] if seen else [])
        ids.append(message_id)
    return ids


def contents(
    dovecot: Dovecot, account: ImapAccount, folder: str = "INBOX"
) -> list[tuple[str, set[str]]]:
    """(Message-ID, flags) of every message in a folder, in arrival order."""
    header = "BODY[HEADER.FIELDS (MESSAGE-ID)]"
    with dovecot.client(account.username) as imap:
        if not imap.folder_exists(folder):
            return []
        imap.select_folder(folder, readonly=True)
        uids = sorted(imap.search("ALL"))
        found = imap.fetch(uids, ["FLAGS", header.replace("BODY", "BODY.PEEK")]) if uids else {}
    return [
        (
            str(email.message_from_bytes(found[uid][header.encode()])["Message-ID"]),
            {flag.decode() for flag in found[uid][b"FLAGS"]} - {"\\Recent"},
        )
        for uid in uids
    ]


def test_several_accounts_are_polled_in_order_and_each_applies_its_after(dovecot: Dovecot) -> None:
    accounts = [
        mailbox(dovecot, after="delete"),
        mailbox(dovecot, after="move"),
        mailbox(dovecot, after="seen"),
    ]
    sent = {account.name: deliver(dovecot, account, 3) for account in accounts}
    receivers = {account.name: Receiver() for account in accounts}
    workers: list[Worker] = [MailPoller(a, receivers[a.name]) for a in accounts]
    runner = Runner(workers, poll_interval=0.02, idle_wait=0.05)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while any(len(r.effects) < 3 for r in receivers.values()):
            assert time.monotonic() < deadline, {n: r.effects for n, r in receivers.items()}
            time.sleep(0.02)
    finally:
        runner.stop()

    for account in accounts:
        assert receivers[account.name].effects == sent[account.name]  # oldest first
    deleted, moved, seen = accounts
    assert contents(dovecot, deleted) == []
    assert contents(dovecot, moved) == []
    assert [mid for mid, _ in contents(dovecot, moved, "Processed")] == sent[moved.name]
    assert contents(dovecot, seen) == [(mid, {"\\Seen"}) for mid in sent[seen.name]]
    assert all(r.calls == 3 for r in receivers.values())  # nothing fetched twice meanwhile


def test_a_poll_takes_the_oldest_max_per_poll_and_leaves_read_mail_alone(dovecot: Dovecot) -> None:
    account = mailbox(dovecot, after="delete", max_per_poll=2)
    (already_read,) = deliver(dovecot, account, 1, seen=True)
    sent = deliver(dovecot, account, 5)
    receiver = Receiver()

    first = poll_account(account, receiver)

    assert (first.received, first.waiting, first.ok) == (2, 3, True)
    assert receiver.effects == sent[:2]
    assert contents(dovecot, account) == [(already_read, {"\\Seen"})] + [
        (mid, set()) for mid in sent[2:]
    ]
    poll_account(account, receiver)
    last = poll_account(account, receiver)
    assert receiver.effects == sent
    assert (last.received, last.waiting) == (1, 0)
    assert contents(dovecot, account) == [(already_read, {"\\Seen"})]


@pytest.mark.parametrize("after", ["delete", "move", "seen"])
def test_a_failing_receive_leaves_the_message_for_the_next_poll(
    dovecot: Dovecot, after: str
) -> None:
    account = mailbox(dovecot, after=after)
    sent = deliver(dovecot, account, 3)
    receiver = Receiver()
    receiver.failing[sent[1]] = 1  # the database is down while the second one is taken in

    failed = poll_account(account, receiver)

    assert (failed.received, failed.waiting) == (1, 2)
    assert failed.failure == "ConnectionError: database unavailable"
    # The second and third: not seen, not deleted, still in order.
    untouched: list[tuple[str, set[str]]] = [(mid, set()) for mid in sent[1:]]
    assert [m for m in contents(dovecot, account) if not m[1]] == untouched
    assert receiver.effects == sent[:1]  # it stopped: the third waits behind the second

    retried = poll_account(account, receiver)

    assert (retried.received, retried.waiting, retried.ok) == (2, 0, True)
    assert receiver.effects == sent
    assert receiver.calls == 4  # the failed attempt, then each message once
    assert all(flags for _, flags in contents(dovecot, account))  # nothing unseen is left


class Cut(NamedTuple):
    """Where a connection is cut: once `answers` writes from the server reached the client,
    either at once (the client's next command never reaches the server) or halfway through
    the next answer."""

    answers: int
    half_of_next: bool


class CuttingProxy:
    """A TCP proxy between poller and dovecot that cuts a connection at a `Cut`, or stops
    listening (server down) and listens again.

    The server writes an answer only after the client's command, so a cut between writes is a
    cut between "the client has the whole answer" and "the server saw the next command".
    """

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.cut: Cut | None = None  # applies to connections opened while it is set
        self.last_answers = 0  # server writes relayed on the last connection
        self._target = target_port
        self._listening = threading.Event()
        self._listener: threading.Thread | None = None
        self.up()

    def up(self) -> None:
        server = socket.create_server((LOOPBACK, self.port))
        server.settimeout(0.05)
        self._listening.set()
        self._listener = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._listener.start()

    def down(self) -> None:
        self._listening.clear()
        if self._listener is not None:
            self._listener.join(5)

    def _accept(self, server: socket.socket) -> None:
        with server:
            while self._listening.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection((LOOPBACK, self._target))
                for end in (client, upstream):  # relay each write at once, as a direct link would
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                severed = threading.Event()
                threading.Thread(
                    target=self._relay, args=(client, upstream, severed), daemon=True
                ).start()
                threading.Thread(
                    target=self._answer, args=(upstream, client, self.cut, severed), daemon=True
                ).start()

    def _relay(
        self, client: socket.socket, upstream: socket.socket, severed: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while (chunk := client.recv(65536)) and not severed.is_set():
                # imaplib writes some commands in pieces: ACK each at once, or Nagle holds the
                # rest for the 40 ms of a delayed ACK (dovecot itself gets no such pause).
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                upstream.sendall(chunk)
        _drop(client, upstream)

    def _answer(
        self,
        upstream: socket.socket,
        client: socket.socket,
        cut: Cut | None,
        severed: threading.Event,
    ) -> None:
        answers = 0
        with contextlib.suppress(OSError):
            while cut is None or cut.half_of_next or answers < cut.answers:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                if cut is not None and cut.half_of_next and answers == cut.answers:
                    client.sendall(chunk[: len(chunk) // 2])
                    break
                answers += 1
                self.last_answers = answers
                if cut is not None and not cut.half_of_next and answers == cut.answers:
                    severed.set()  # before the client can read it and send its next command
                client.sendall(chunk)
        severed.set()
        _drop(client, upstream)


def _drop(*ends: socket.socket) -> None:
    """Both ends see the connection go, as when a NAT or the server's host drops it."""
    for end in ends:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[CuttingProxy]:
    relay = CuttingProxy(dovecot.port)
    yield relay
    relay.down()


@pytest.mark.parametrize("after", ["delete", "move", "seen"])
def test_a_connection_cut_anywhere_loses_nothing_and_takes_nothing_in_twice(
    dovecot: Dovecot, proxy: CuttingProxy, after: str
) -> None:
    account = mailbox(dovecot, port=proxy.port, after=after)
    receiver = Receiver()  # shared: its effects must end up as every message sent, in order
    with dovecot.client(account.username) as sender:
        sent = append(sender, 2)
        poll_account(account, receiver)  # the first poll also creates the archive folder
        sent += append(sender, 2)
        poll_account(account, receiver)
        answers = proxy.last_answers  # greeting, login, select, search, fetch, flag, ..., logout
        cuts = [Cut(n, half) for n in range(answers) for half in (False, True)]

        dropped = 0
        for cut in cuts:
            sent += append(sender, 2)
            proxy.cut = cut
            try:
                poll_account(account, receiver)
            except MAILBOX_ERRORS:
                dropped += 1  # what was in flight must still be there
            proxy.cut = None

            assert poll_account(account, receiver).ok, cut
            assert receiver.effects == sent, cut

    assert dropped >= len(cuts) - 2  # all but cuts in the LOGOUT answer fail the poll
    redelivered = receiver.calls - len(sent)
    # Cut after a FETCH answer: committed but never flagged, so delivered again - once.
    assert 0 < redelivered <= dropped
    left = contents(dovecot, account)
    if after == "seen":
        assert left == [(mid, {"\\Seen"}) for mid in sent]
    else:
        assert left == []
    if after == "move":
        assert [mid for mid, _ in contents(dovecot, account, "Processed")] == sent


def test_wrong_password_backs_off_and_recovers_once_it_is_fixed(dovecot: Dovecot) -> None:
    account = mailbox(dovecot, interval_seconds=10.0)
    sent = deliver(dovecot, account, 1)
    dovecot.add_user(account.username, "changed-by-the-mail-admin")
    clock = FakeClock()
    receiver = Receiver()
    poller = MailPoller(account, receiver, clock)

    delays = []
    for _ in range(2):
        assert poller.run_once() == 0  # never raises: the runner thread goes on
        delays.append(poller.delay_seconds)
        assert poller.due_in_seconds == pytest.approx(poller.delay_seconds)
        clock.advance(timedelta(seconds=poller.delay_seconds - 1))
        poller.run_once()  # not due yet: no attempt
        clock.advance(timedelta(seconds=1))

    assert delays == [20.0, 40.0]  # doubling
    assert poller.consecutive_failures == 2
    assert "LoginError" in (poller.last_failure or "")
    assert "secret" not in (poller.last_failure or "")

    dovecot.add_user(account.username, "secret")
    assert poller.run_once() == 1
    assert receiver.effects == sent
    assert (poller.consecutive_failures, poller.delay_seconds) == (0, 10.0)


def test_server_down_backs_off_and_recovers_when_it_is_back(
    dovecot: Dovecot, proxy: CuttingProxy
) -> None:
    account = mailbox(dovecot, port=proxy.port, interval_seconds=5.0)
    sent = deliver(dovecot, account, 2)
    clock = FakeClock()
    receiver = Receiver()
    poller = MailPoller(account, receiver, clock, max_backoff_seconds=30.0)
    proxy.down()

    for expected in (10.0, 20.0, 30.0, 30.0):  # doubling, capped at max_backoff_seconds
        assert poller.run_once() == 0
        assert poller.delay_seconds == expected
        clock.advance(timedelta(seconds=expected))
    assert "ConnectionRefusedError" in (poller.last_failure or "")

    proxy.up()
    assert poller.run_once() == 2
    assert receiver.effects == sent
    assert (poller.consecutive_failures, poller.due_in_seconds) == (0, 5.0)


# -- into a real platform -------------------------------------------------------------------


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    with open_platform(desk_settings(tmp_path, database_url)) as platform:
        yield platform


def ticket_events(platform: Platform) -> list[tuple[str, str]]:
    return [
        (e.stream_id, e.type)
        for e in platform.store.read_all(0, 100_000)
        if e.stream_id.startswith("ticket-") and e.type in ("TicketCreated", "MessageAppended")
    ]


def test_polled_mail_becomes_tickets_and_a_reply_threads_into_its_ticket(
    dovecot: Dovecot, platform: Platform
) -> None:
    account = mailbox(dovecot, after="delete")
    first = compose(subject="Printer on fire", message_id="<fire-1@mail.example.com>")
    reply = compose(subject="Re: Printer on fire", in_reply_to="<fire-1@mail.example.com>")
    with dovecot.client(account.username) as imap:
        imap.append("INBOX", first)
        imap.append("INBOX", reply)
    receive = functools.partial(receive_email, platform, channel="email")

    result = poll_account(account, receive)

    assert (result.received, result.waiting, result.ok) == (2, 0, True)
    (created, appended) = ticket_events(platform)
    assert created[1] == "TicketCreated" and appended == (created[0], "MessageAppended")
    opened = next(e for e in platform.store.read_all(0, 100) if e.type == "TicketCreated")
    assert (opened.data["subject"], opened.data["channel"]) == ("Printer on fire", "email")
    assert contents(dovecot, account) == []

    with dovecot.client(account.username) as imap:
        imap.append("INBOX", first)  # the same message again (a resend, a restored mailbox)
    assert poll_account(account, receive).received == 1
    assert len(ticket_events(platform)) == 2  # taken in, changing nothing
    assert contents(dovecot, account) == []


def test_mail_waits_in_the_mailbox_while_the_database_is_down(
    dovecot: Dovecot, sqlite_url: str, tmp_path: Path
) -> None:
    account = mailbox(dovecot, after="delete")
    with dovecot.client(account.username) as imap:
        imap.append("INBOX", compose(message_id="<while-down@mail.example.com>"))
    gone = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    down = Platform.build(Settings(database_url=gone, data_dir=tmp_path))
    up = build_platform(desk_settings(tmp_path, sqlite_url))
    try:
        failed = poll_account(account, functools.partial(receive_email, down, channel="email"))
        assert (failed.received, failed.waiting) == (0, 1)
        assert "OperationalError" in (failed.failure or "")
        assert contents(dovecot, account) == [("<while-down@mail.example.com>", set())]

        back = poll_account(account, functools.partial(receive_email, up, channel="email"))
        assert (back.received, back.ok) == (1, True)
        assert [t for _, t in ticket_events(up)] == ["TicketCreated"]
        assert contents(dovecot, account) == []
    finally:
        down.close()
        up.close()


def write_mail_config(path: Path, *accounts: tuple[str, int, str]) -> None:
    path.write_text(
        "".join(
            f'[[imap]]\nname = "{name}"\nhost = "{LOOPBACK}"\nport = {port}\nssl = false\n'
            f'username = "{username}"\npassword_env = "DESK_IMAP_PASSWORD"\nafter = "delete"\n'
            "timeout_seconds = 5\ninterval_seconds = 0.2\n\n"
            for name, port, username in accounts
        )
    )


@pytest.fixture
def embedded_desk(tmp_path: Path) -> Iterator[Platform]:
    """An embedded platform in tmp_path/var, migrated and seeded as `deskstream migrate` does."""
    with open_platform(desk_settings(tmp_path / "var")) as platform:
        yield platform


def test_fetch_mail_polls_every_account_once_and_exits_75_when_one_could_not_be(
    dovecot: Dovecot, embedded_desk: Platform, tmp_path: Path
) -> None:
    good = mailbox(dovecot)
    deliver(dovecot, good, 2)
    config = tmp_path / "mail.toml"
    write_mail_config(config, ("support", dovecot.port, good.username), ("sales", free_port(), "x"))
    env = base_env(data_dir=str(embedded_desk.settings.data_dir), mail_config=str(config))
    env["DESK_IMAP_PASSWORD"] = "secret"

    def fetch_mail() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "fetch-mail"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    partly = fetch_mail()

    assert partly.returncode == 75, partly.stderr
    support, sales = partly.stdout.splitlines()
    assert support == "support: 2 taken in, 0 waiting"
    assert sales.startswith("sales: not polled: ConnectionRefusedError")
    assert "secret" not in partly.stdout + partly.stderr
    assert contents(dovecot, good) == []
    assert [t for _, t in ticket_events(embedded_desk)] == ["TicketCreated", "TicketCreated"]

    write_mail_config(config, ("support", dovecot.port, good.username))
    deliver(dovecot, good, 1)
    complete = fetch_mail()

    assert complete.returncode == 0, complete.stderr
    assert complete.stdout.splitlines() == ["support: 1 taken in, 0 waiting"]
    assert len(ticket_events(embedded_desk)) == 3


@pytest.mark.parametrize("command", [["run"], ["serve", "intake"]], ids=["run", "serve-intake"])
def test_the_running_platform_polls_its_accounts(
    dovecot: Dovecot, embedded_desk: Platform, tmp_path: Path, command: list[str]
) -> None:
    account = mailbox(dovecot)
    config = tmp_path / "mail.toml"
    write_mail_config(config, ("support", dovecot.port, account.username))
    env = base_env(mail_config=str(config))
    env["DESK_IMAP_PASSWORD"] = "secret"
    deployment = Deployment(env, tmp_path)
    deployment.start("deskstream", [*command, "--data-dir", str(embedded_desk.settings.data_dir)])
    try:
        sent = deliver(dovecot, account, 2)  # after start: taken by a later poll, not the first
        deadline = time.monotonic() + 30
        while contents(dovecot, account):
            assert time.monotonic() < deadline, log_tail(deployment.processes["deskstream"].log)
            time.sleep(0.1)
    finally:
        deployment.stop()

    created = [e for e in embedded_desk.store.read_all(0, 10_000) if e.type == "TicketCreated"]
    assert [e.data["message_id"] for e in created] == sent
