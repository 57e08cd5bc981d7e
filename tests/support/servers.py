"""Real servers for integration and end-to-end tests.

Plain Python (no pytest) so that fixtures, ``python -m tests.support.selfcheck`` and ad-hoc
debugging share one implementation. Every helper binds to a free loopback port, sends subprocess
output to a log file, waits a bounded time for readiness and otherwise raises ``RuntimeError``
carrying the server's log tail, so a broken environment fails loudly instead of hanging.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import email
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from psycopg import sql

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_BYTES = 4000
_PROBE_TIMEOUT_MS = 2000  # one readiness probe; the loop around it enforces the real deadline


def free_port() -> int:
    """Return a loopback TCP port the kernel considered free a moment ago.

    Another process could grab it before our server binds; that race is acceptable in tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, limit: int = _LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a log file, for error messages."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"(no log file at {path})"
    return data[-limit:].decode("utf-8", errors="replace")


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _venv_executable(name: str) -> str:
    # Console scripts live next to the interpreter; the venv's bin dir is often not on PATH.
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise RuntimeError(f"{name} not found next to {sys.executable}")
    return str(candidate)


class _ManagedProcess:
    """One long-running child process whose output is appended to a log file.

    Children are killed when the interpreter exits, so a test run that skips its teardown
    (an exception in a fixture, Ctrl-C) does not leave brokers behind. A SIGKILLed test
    process still leaks them: PR_SET_PDEATHSIG would need preexec_fn, unsafe with threads.
    """

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def launch(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Restarts append to the same file; the marker shows where each run begins.
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            # The child inherits its own copy of the descriptor, so ours can close here.
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
            )
        _live_processes.add(self)

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> float:
        """Poll ``ready`` until true and return the seconds it took; raise if the child dies
        or the timeout passes."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.running:
                raise self.failure("exited before becoming ready")
            if ready():
                return time.monotonic() - started
            time.sleep(_POLL_INTERVAL_S)
        error = self.failure(f"not ready within {timeout:.0f}s")
        self.terminate(STOP_TIMEOUT_S)  # don't leave a half-started server behind
        raise error

    def failure(self, what: str) -> RuntimeError:
        code = None if self._popen is None else self._popen.poll()
        state = "still running" if code is None else f"exit code {code}"
        return RuntimeError(
            f"{self.name} {what} ({state}); log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def send_signal(self, signum: signal.Signals) -> None:
        if self._popen is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self._popen.send_signal(signum)

    def terminate(self, timeout: float) -> None:
        """SIGTERM, escalating to SIGKILL; a no-op when not running."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        popen.terminate()
        # A SIGSTOPped child keeps SIGTERM pending until it is continued.
        popen.send_signal(signal.SIGCONT)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(timeout)

    def kill(self, timeout: float) -> None:
        """SIGKILL and reap; a no-op when not running."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        popen.kill()
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise self.failure("survived SIGKILL") from exc


_live_processes: weakref.WeakSet[_ManagedProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftover_processes() -> None:
    for process in list(_live_processes):
        with contextlib.suppress(Exception):
            process.kill(STOP_TIMEOUT_S)


class _Server(abc.ABC):
    """Context-manager plumbing shared by the helpers with start()/stop()."""

    @abc.abstractmethod
    def start(self) -> float: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP sink saw it: SMTP envelope plus the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class _CollectingHandler:
    """aiosmtpd handler that parses each message and hands it to a callback."""

    def __init__(self, on_mail: Callable[[ReceivedMail], None]) -> None:
        self._on_mail = on_mail

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)  # guaranteed by policy.default
        mail_from = envelope.mail_from or ""
        self._on_mail(ReceivedMail(mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpSink(_Server):
    """A real SMTP server (aiosmtpd, in a thread) that keeps every message it receives."""

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.port = free_port()
        self._start_timeout = start_timeout
        self._mails: list[ReceivedMail] = []
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{LOOPBACK}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._arrived:
            return list(self._mails)

    def start(self) -> float:
        """Start the server thread and return the seconds until it answered."""
        started = time.monotonic()
        controller = Controller(
            _CollectingHandler(self._record),
            hostname=LOOPBACK,
            port=self.port,
            ready_timeout=self._start_timeout,
            # An explicit name avoids aiosmtpd's socket.getfqdn(), which can stall on DNS.
            server_hostname="deskstream-smtp-sink",
        )
        try:
            controller.start()
        except Exception as exc:
            raise RuntimeError(f"SMTP sink on {self.url} failed to start: {exc!r}") from exc
        self._controller = controller
        return time.monotonic() - started

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._arrived:
            self._mails.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; return all of them."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._mails) >= count, timeout):
                subjects = [mail.message["Subject"] for mail in self._mails]
                raise TimeoutError(
                    f"expected {count} mails on {self.url} within {timeout}s, "
                    f"got {len(self._mails)}: {subjects}"
                )
            return list(self._mails)

    def _record(self, mail: ReceivedMail) -> None:
        with self._arrived:
            self._mails.append(mail)
            self._arrived.notify_all()


class PostgresDatabase:
    """A throwaway, uuid-named database on the local PostgreSQL server (trust auth)."""

    maintenance_db = "postgres"
    _cluster_start_attempted = False  # per process: only one attempt to start PostgreSQL

    def __init__(
        self,
        *,
        log_dir: Path,
        host: str = LOOPBACK,
        port: int = 5432,
        users: Sequence[str] | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.name = f"deskstream_test_{uuid.uuid4().hex}"
        self.host = host
        self.port = port
        self._users = list(users) if users else list(dict.fromkeys([getpass.getuser(), "postgres"]))
        self._timeout = timeout
        self._log_path = log_dir / "pg_ctlcluster.log"
        self._user: str | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database."""
        return f"postgresql+psycopg://{self._created_user()}@{self.host}:{self.port}/{self.name}"

    @property
    def dsn(self) -> str:
        """libpq URL of the database, for psycopg directly."""
        return f"postgresql://{self._created_user()}@{self.host}:{self.port}/{self.name}"

    def create(self) -> str:
        """Create the database and return its SQLAlchemy URL."""
        user, conn = self._connect_any()
        with conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self._user = user
        return self.url

    def drop(self) -> None:
        """Drop the database, disconnecting any remaining sessions; a no-op if never created."""
        if self._user is None:
            return
        with self._connect(self._user) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
        self._user = None

    def __enter__(self) -> Self:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()

    def _created_user(self) -> str:
        if self._user is None:
            raise RuntimeError(f"database {self.name} has not been created")
        return self._user

    def _connect(self, user: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=user,
            dbname=self.maintenance_db,
            autocommit=True,  # CREATE/DROP DATABASE cannot run inside a transaction
            connect_timeout=5,
        )

    def _connect_any(self) -> tuple[str, psycopg.Connection[Any]]:
        """Connect as the first candidate user allowed to create databases, starting the
        local cluster once (per process) if nobody can connect."""
        errors: list[str] = []
        found = self._try_users(errors)
        if found is None and not PostgresDatabase._cluster_start_attempted:
            PostgresDatabase._cluster_start_attempted = True
            self._start_cluster()
            deadline = time.monotonic() + self._timeout
            while found is None and time.monotonic() < deadline:
                time.sleep(0.5)
                found = self._try_users(errors)
        if found is None:
            raise RuntimeError(
                f"PostgreSQL on {self.host}:{self.port} unusable; last errors: {errors[-2:]}; "
                f"pg_ctlcluster log {self._log_path}:\n{log_tail(self._log_path)}"
            )
        return found

    def _try_users(self, errors: list[str]) -> tuple[str, psycopg.Connection[Any]] | None:
        for user in self._users:
            try:
                conn = self._connect(user)
            except psycopg.OperationalError as exc:
                errors.append(f"{user}: {str(exc).strip()}")
                continue
            if self._may_create_databases(conn):
                return user, conn
            conn.close()
            errors.append(f"{user}: lacks CREATEDB")
        return None

    @staticmethod
    def _may_create_databases(conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        return bool(row and row[0])

    def _start_cluster(self) -> None:
        # Containers without systemd don't start PostgreSQL on boot; Debian's wrapper can.
        versions = _installed_postgres_versions()
        if not versions:
            return
        argv = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            log.write(f"\n=== {' '.join(argv)}\n".encode())
            log.flush()
            # Failure is reported by the connection retries that follow, with this log.
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=60,
                    check=False,
                )


def _installed_postgres_versions(config_root: Path = Path("/etc/postgresql")) -> list[str]:
    """Debian cluster config versions, oldest first (e.g. ["15"])."""
    if not config_root.is_dir():
        return []
    names = [entry.name for entry in config_root.iterdir() if entry.is_dir()]
    return sorted(names, key=lambda name: tuple(int(p) for p in name.split(".") if p.isdigit()))


# Debian's dovecot-imapd, configured as /work/shared/reference/dovecot-test-server.md describes,
# with changes for speed. Refused logins: `auth_failure_delay = 0` (otherwise each is held 2 s)
# and no auth penalty socket (otherwise every later login from 127.0.0.1, good ones too, waits
# up to 15 s). `mail_fsync = never`: a throwaway mailbox needs no fsync (5x faster APPEND).
# Login and imap processes are reused (`service_count = 0`): a connection then takes 1 ms, not
# the 15 ms of two process spawns.
# One passwd-file per account (`users.d/%u`): dovecot stats a passwd-file
# at most once a second, so an account added to a shared file just after a login would stay
# unknown for up to a second, while a new account's own file is read on its first login.
_DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/run
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{dir}/mail/%u
mail_fsync = never
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap {{
  service_count = 0
  process_min_avail = 2
}}
service imap-login {{
  service_count = 0
  process_min_avail = 1
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users.d/%u
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/mail/%u
}}
"""


def _dovecot_binary(name: str) -> str:
    # /usr/sbin is not on every PATH (sudo-less shells, CI images).
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise RuntimeError(f"{name} not found: install dovecot-imapd (scripts/system-deps.sh)")
    return found


class Dovecot(_Server):
    """A throwaway IMAP server (Debian dovecot, plain text on loopback), run as root.

    Everything lives in a fresh world-readable directory (dovecot's unprivileged login
    processes must reach it), removed on stop. Each account is a one-line passwd-file;
    tests place messages with IMAP APPEND.
    """

    def __init__(self, *, start_timeout: float = START_TIMEOUT_S) -> None:
        self.host = LOOPBACK
        self.port = free_port()
        self._start_timeout = start_timeout
        self._passwords: dict[str, str] = {}
        self.directory = Path(tempfile.gettempdir()) / f"deskstream-dovecot-{uuid.uuid4().hex[:12]}"

    @property
    def config_path(self) -> Path:
        return self.directory / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "dovecot.log"

    def start(self) -> float:
        """Start the daemon and return the seconds until it greeted an IMAP client."""
        started = time.monotonic()
        dovecot = _dovecot_binary("dovecot")
        mail = self.directory / "mail"
        mail.mkdir(parents=True)
        self.config_path.write_text(_DOVECOT_CONF.format(dir=self.directory, port=self.port))
        (self.directory / "users.d").mkdir(exist_ok=True)
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(mail)], check=True, timeout=30)
        self.directory.chmod(0o755)
        # dovecot daemonises; its own output goes to the log, and no pipe is left open.
        with (self.directory / "start.log").open("ab") as out:
            result = subprocess.run(
                [dovecot, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=30,
                check=False,
            )
        if result.returncode != 0:
            error = self._failure(f"dovecot exited with {result.returncode}")
            shutil.rmtree(self.directory, ignore_errors=True)
            raise error
        atexit.register(self.stop)
        while time.monotonic() - started < self._start_timeout:
            if self._greets():
                return time.monotonic() - started
            time.sleep(_POLL_INTERVAL_S)
        error = self._failure(f"not answering IMAP within {self._start_timeout:.0f}s")
        self.stop()
        raise error

    def stop(self) -> None:
        """Stop the daemon (waiting for its master to exit) and remove its directory."""
        if not self.directory.exists():
            return
        pid_file = self.directory / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            subprocess.run(
                [_dovecot_binary("doveadm"), "-c", str(self.config_path), "stop"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=STOP_TIMEOUT_S,
                check=False,
            )
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _process_exists(pid) and time.monotonic() < deadline:
                time.sleep(_POLL_INTERVAL_S)
        shutil.rmtree(self.directory, ignore_errors=True)
        atexit.unregister(self.stop)

    def add_user(self, username: str, password: str) -> None:
        """Create (or re-password) an account; its mailbox appears on first login. Returns once
        dovecot accepts the password."""
        known = username in self._passwords
        self._passwords[username] = password
        users = self.directory / "users.d" / username
        temporary = users.with_name(f".{username}.new")
        temporary.write_text(f"{username}:{{PLAIN}}{password}\n")
        os.replace(temporary, users)
        if known:  # dovecot may hold the old file for the rest of this second
            deadline = time.monotonic() + 3
            while not self._accepts(username) and time.monotonic() < deadline:
                time.sleep(_POLL_INTERVAL_S)

    def client(self, username: str) -> IMAPClient:
        """A logged-in IMAP client for `username` (the caller logs out)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(username, self._passwords[username])
        return client

    def _accepts(self, username: str) -> bool:
        try:
            self.client(username).logout()
            return True
        except IMAPClientError:
            return False

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"dovecot on {self.host}:{self.port} {what}; log {self.log_path}:\n"
            f"{log_tail(self.log_path)}\n{log_tail(self.directory / 'start.log')}"
        )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
