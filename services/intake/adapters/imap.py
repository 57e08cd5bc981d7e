"""Email in by IMAP: a message leaves the mailbox only after its effect is committed.

One poll of an account connects, selects the folder, searches UNSEEN NOT DELETED and takes the
oldest `max_per_poll` in order. Each is fetched with BODY.PEEK[] (so it is not marked seen yet)
and handed to `receive`, which returns once the resulting events are committed; only then is
the account's `after` applied (flag seen / move to the archive folder / delete). `receive` is
idempotent by Message-ID, so the one remaining window (committed, connection lost before the
flag) redelivers a message that then changes nothing.

A `receive` that raises is a transient failure (database down): the message stays untouched
and the poll stops there, so the next poll retries it before anything newer.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from imapclient import IMAPClient
from imapclient.imapclient import SEEN

from libs.events.clock import Clock, SystemClock
from services.intake.mail_accounts import ImapAccount

log = logging.getLogger(__name__)

Receive = Callable[[bytes], object]

# The server refused, dropped or timed out the connection, or answered NO/BAD.
MAILBOX_ERRORS = (OSError, imaplib.IMAP4.error)
MAX_BACKOFF_SECONDS = 300.0


@dataclass(frozen=True)
class PollResult:
    account: str
    received: int  # messages taken in, and then flagged / moved / deleted
    waiting: int  # unseen messages still in the folder (beyond max_per_poll, or after a failure)
    failure: str | None = None  # why `receive` refused the next message; it stays for next time

    @property
    def ok(self) -> bool:
        return self.failure is None

    def summary(self) -> str:
        line = f"{self.account}: {self.received} taken in, {self.waiting} waiting"
        return line if self.ok else f"{line}; stopped: {self.failure}"


def poll_account(account: ImapAccount, receive: Receive) -> PollResult:
    """One poll. Raises (an `MAILBOX_ERRORS` member, usually) when the server cannot be used;
    a message in flight then keeps its flags and is delivered again by a later poll."""
    client = _connect(account)
    try:
        client.select_folder(account.folder)
        if account.after == "move":
            _ensure_folder(client, account.archive_folder or "")
        unseen = sorted(client.search(["UNSEEN", "NOT", "DELETED"]))  # UID order = arrival order
        received, failure = 0, None
        for uid in unseen[: account.max_per_poll]:
            raw = _fetch(client, uid)
            if raw is None:
                continue  # removed by another client meanwhile
            try:
                receive(raw)
            except Exception as exc:
                failure = describe(exc)
                log.warning(
                    "imap %s: message uid %s not taken in, left in %s for the next poll: %s",
                    account.name,
                    uid,
                    account.folder,
                    failure,
                )
                break
            _after(client, account, uid)
            received += 1
        if account.after != "seen":
            client.expunge()  # removes what this poll (or an interrupted one) marked deleted
    except BaseException:
        _close(client, logout=False)
        raise
    _close(client, logout=True)
    if received:
        log.info("imap %s: %d messages taken in", account.name, received)
    return PollResult(account.name, received, len(unseen) - received, failure)


def describe(exc: BaseException) -> str:
    """A log-safe one-liner: the type and the message's first line only (database errors go on
    with the SQL parameters, which may hold the message body)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _connect(account: ImapAccount) -> IMAPClient:
    # imaplib's DEBUG trace carries whole messages; bodies are never logged.
    logging.getLogger("imapclient.imaplib").setLevel(logging.INFO)
    client = IMAPClient(
        account.host,
        port=account.port,
        ssl=account.ssl,
        ssl_context=ssl.create_default_context() if account.ssl else None,
        timeout=account.timeout_seconds,
    )
    try:
        if account.starttls:
            client.starttls(ssl.create_default_context())
        client.login(account.username, account.password)
    except BaseException:
        _close(client, logout=False)
        raise
    return client


def _close(client: IMAPClient, *, logout: bool) -> None:
    # After a failure, LOGOUT on a dead connection would only wait out the timeout.
    with contextlib.suppress(*MAILBOX_ERRORS):
        if logout:
            client.logout()
            return
    with contextlib.suppress(*MAILBOX_ERRORS):
        client.shutdown()


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)


def _fetch(client: IMAPClient, uid: int) -> bytes | None:
    # BODY.PEEK[] leaves \Seen alone: until `receive` has committed, the message is as it was.
    response = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
    raw = response.get(b"BODY[]")
    return bytes(raw) if raw is not None else None


def _after(client: IMAPClient, account: ImapAccount, uid: int) -> None:
    if account.after == "seen":
        client.add_flags([uid], [SEEN], silent=True)
    elif account.after == "move" and client.has_capability("MOVE"):
        client.move([uid], account.archive_folder or "")
    else:
        if account.after == "move":
            client.copy([uid], account.archive_folder or "")
        client.delete_messages([uid], silent=True)  # \Deleted now, expunged at the poll's end


class MailPoller:
    """A runner worker that polls one IMAP account every `interval_seconds`.

    One worker per account, so the runner gives each its own thread and a slow or dead server
    never delays another account. After a failure (server refuses or drops the connection,
    login refused, `receive` failing) the wait doubles each time, up to `max_backoff_seconds`,
    and is back to the interval after the next success.
    """

    def __init__(
        self,
        account: ImapAccount,
        receive: Receive,
        clock: Clock | None = None,
        *,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        self.account = account
        self.max_backoff_seconds = max_backoff_seconds
        self.consecutive_failures = 0
        self.last_failure: str | None = None
        self._receive = receive
        self._clock = clock or SystemClock()
        self._due = self._clock.now()  # the first poll runs at once
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return f"imap-{self.account.name}"

    @property
    def delay_seconds(self) -> float:
        """The wait between the last poll and the next one."""
        interval = self.account.interval_seconds
        if not self.consecutive_failures:
            return interval
        backoff = interval * 2 ** min(self.consecutive_failures, 30)
        return min(backoff, max(self.max_backoff_seconds, interval))

    @property
    def due_in_seconds(self) -> float:
        return max(0.0, (self._due - self._clock.now()).total_seconds())

    def run_once(self) -> int:
        if self.due_in_seconds > 0:
            return 0
        try:
            result = poll_account(self.account, self._receive)
        except Exception as exc:
            self._record(describe(exc))
            # A refused or dropped connection is expected now and then; anything else is a bug.
            report = log.warning if isinstance(exc, MAILBOX_ERRORS) else log.error
            report(
                "imap %s: poll failed (%d in a row), next try in %.0fs: %s",
                self.account.name,
                self.consecutive_failures,
                self.delay_seconds,
                self.last_failure,
            )
            return 0
        self._record(result.failure)  # poll_account logged a refused message itself
        return result.received

    def wait_for_work(self, timeout: float) -> None:
        """The runner's idle wait: sleep until the account is due (or `timeout`)."""
        self._closed.wait(min(timeout, self.due_in_seconds))

    def close(self) -> None:
        self._closed.set()

    def _record(self, failure: str | None) -> None:
        self.consecutive_failures = self.consecutive_failures + 1 if failure else 0
        self.last_failure = failure
        self._due = self._clock.now() + timedelta(seconds=self.delay_seconds)
