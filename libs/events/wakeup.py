"""Waking idle readers of the store when something was appended, instead of polling it.

In one process (embedded), a commit on the engine sets an event. Across processes on
PostgreSQL, every append sends NOTIFY (delivered at commit) and a waiter LISTENs. A waiter
still wakes on its timeout, so a missed signal costs latency, never an event.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event, text

CHANNEL = "deskstream_appended"


class CommitSignal:
    """In-process: set after any transaction on the engine commits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._event = threading.Event()
        event.listen(engine, "commit", self._committed)

    def _committed(self, _conn: Any) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def close(self) -> None:
        event.remove(self.engine, "commit", self._committed)


def notify_appended(conn: Any) -> None:
    """Called inside an appending transaction; PostgreSQL delivers it only if that commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class PostgresListener:
    """Across processes: LISTEN on a connection of its own, reopened after a failure."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None

    def wait(self, timeout: float) -> None:
        import psycopg

        try:
            if self._conn is None:
                url = self.engine.url.set(drivername="postgresql")
                self._conn = psycopg.connect(
                    url.render_as_string(hide_password=False), autocommit=True
                )
                self._conn.execute(f"LISTEN {CHANNEL}")
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            self.close()
            threading.Event().wait(min(timeout, 1.0))

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def waiter_for(engine: Engine) -> CommitSignal | PostgresListener:
    return PostgresListener(engine) if engine.dialect.name == "postgresql" else CommitSignal(engine)
