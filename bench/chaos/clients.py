"""Nemeses that are clients: 50 racing commands on one ticket (F11) and `deskstream pipe`
killed mid-parse, then retried as an MTA would (F14). IMAP's half of F14 is not run here."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.chaos.nemeses import Nemesis
from bench.intake import post_ticket, ticket_payload

RACERS = 50


class RacingCommands(Nemesis):
    """Per batch: the ticket's current version, then 50 notes sent at once with it. Exactly
    one may win; the stream's version grows by the number of winners, never more."""

    fault, title = "F11", "50 parallel commands on one ticket"

    def start(self) -> None:
        deployment = self.stage.deployment
        tag = f"race{self.stage.rng.randrange(10**9)}"
        payload = ticket_payload(tag, 0)
        with requests.Session() as session:
            response = post_ticket(session, deployment, payload, idempotency_key=tag)
        response.raise_for_status()
        self.number = response.text.strip()
        self.stage.extra_acks[payload["email"]] = self.number
        self.engine = create_engine(self.stage.database.url, poolclass=NullPool)
        self.stream = self._wait_routed()
        self.outcomes: list[Counter[str]] = []
        start_version = self._version()
        for _ in range(2 if self.stage.quick else 5):
            self.outcomes.append(self._race(self._version()))
        self.added = self._version() - start_version
        self._note(f"{len(self.outcomes)} batches of {RACERS}: {[dict(c) for c in self.outcomes]}")

    def _wait_routed(self, timeout_s: float = 60) -> str:
        """The stream once routing and sla have added their events (no other writer races)."""
        query = text(
            "SELECT e.stream_id, count(*) FROM events e JOIN events c ON c.stream_id = e.stream_id "
            "WHERE c.type = 'TicketCreated' AND c.data->>'number' = :n "
            "AND e.type IN ('TicketRouted', 'SlaApplied') GROUP BY e.stream_id"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                row = conn.execute(query, {"n": self.number}).first()
            if row is not None and row[1] >= 2:
                return str(row[0])
            time.sleep(0.2)
        raise RuntimeError(f"ticket {self.number} never routed")

    def _version(self) -> int:
        with self.engine.connect() as conn:
            query = text("SELECT max(version) FROM events WHERE stream_id = :s")
            return int(conn.execute(query, {"s": self.stream}).scalar_one())

    def _race(self, version: int) -> Counter[str]:
        deployment = self.stage.deployment
        url = f"{deployment.intake_url}/api/v1/tickets/{self.number}/notes"
        gate = threading.Barrier(RACERS)

        def one(i: int) -> str:
            with requests.Session() as session:
                gate.wait(30)
                response = session.post(
                    url,
                    json={"body": f"racer {i}", "expected_version": version},
                    headers=deployment.headers(),
                    timeout=60,
                )
            return str(response.status_code)

        with ThreadPoolExecutor(RACERS) as pool:
            return Counter(pool.map(one, range(RACERS)))

    def verify(self) -> list[str]:
        problems = []
        winners = 0
        for batch in self.outcomes:
            won = sum(n for status, n in batch.items() if status.startswith("2"))
            winners += won
            if won != 1 or set(batch) - {"200", "201", "409"}:
                problems.append(f"batch {dict(batch)}: want one 2xx and 409s")
        if self.added != winners:
            problems.append(f"stream grew by {self.added} events for {winners} accepted commands")
        self.engine.dispose()
        return problems


def _mail(tag: str, i: int) -> tuple[str, bytes]:
    sender = f"pipe-{tag}-{i}@example.com"
    message = EmailMessage()
    message["From"] = f"Pipe Sender <{sender}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Piped {tag}-{i}"
    message["Message-ID"] = f"<{tag}-{i}@chaos.example>"
    message.set_content("The pipe was killed while reading this. " * 50)
    return sender, message.as_bytes()


class KillPipe(Nemesis):
    """`deskstream pipe` SIGKILLed at a random moment, then run again with the same message
    until it exits 0 (an MTA retries on anything else): one ticket per Message-ID."""

    fault, title = "F14", "pipe killed mid-parse (IMAP half not run)"

    def start(self) -> None:
        tag = f"p{self.stage.rng.randrange(10**9)}"
        self.exits: list[str] = []
        for i in range(2 if self.stage.quick else 6):
            sender, raw = _mail(tag, i)
            for attempt in range(8):
                code, out = self._pipe(
                    raw, kill_after=self.stage.rng.uniform(0.2, 2.5) if attempt < 2 else None
                )
                self.exits.append(str(code))
                if code == 0:
                    self.stage.extra_acks[sender] = out.split()[-1]
                    break
        killed = sum(1 for code in self.exits if code == "-9")
        if killed:
            self._note(f"{killed} pipe runs SIGKILLed; exits {self.exits}")

    def _pipe(self, raw: bytes, kill_after: float | None) -> tuple[int, str]:
        deployment = self.stage.deployment
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=deployment.env,
            cwd=deployment.workdir,
        )
        try:
            out, _ = process.communicate(raw, timeout=kill_after or 120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        return process.returncode, out.decode(errors="replace").strip()

    def verify(self) -> list[str]:
        if "0" not in self.exits:
            return ["no pipe run ever exited 0"]
        return []
