"""Hostile input for the intake property tests (tests/integration/test_hostile_*.py): values
that broke or could break a channel, and the checks every example of every channel must pass —
no stuck subscription, no injected header or recipient in outgoing mail.

The sizes come from the projections' columns (services/migrations/versions/): 20 (status,
priority, channel), 40 (tickets.status), 200 (names, content types), 254 (emails), 255
(subjects, filenames); text past them must be refused or cut, never stored to fail later."""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import json
import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from libs.events.clock import FakeClock
from libs.events.embedded import EmbeddedSubscriber, load_checkpoint
from libs.events.tables import dead_letters
from libs.platform.access import create_agent, create_api_key
from libs.platform.database import reading
from services.embedded import embedded_app
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform, pipeline, settle

_counter = itertools.count()


def unique(prefix: str = "h") -> str:
    """A fresh id per example: state is shared across a test's examples, ids never are."""
    return f"{prefix}{next(_counter)}x{id(_counter) % 9973}"


def encoded_word(text: str, encoding: str = "B") -> str:
    """RFC 2047: how CR/LF or a whole header block hides inside one header value."""
    raw = text.encode("utf-8", "surrogatepass")
    if encoding == "B":
        return f"=?utf-8?B?{base64.b64encode(raw).decode()}?="
    quoted = "".join(
        f"={b:02X}" if not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else chr(b)
        for b in raw
    )
    return f"=?utf-8?Q?{quoted}?="


INJECTION = "x\r\nBcc: attacker@evil.example\r\nX-Injected: yes\r\n\r\n<html>owned</html>"

INTS = [10**23, -(10**23), 2**63, 2**63 - 1, 2**64, -(2**63) - 1, 2**31, 2**31 - 1, -1, 0]
NON_INTS: list[Any] = [1.5, 1e23, -0.0, 1e308, True, False, None, [], {}, [1], {"a": 1}, "1", ""]
TEXTS = [
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x07\x08\x0b\x0c\x1b[31mred\x1f",
    "\x7f\x80\x85\x9f",
    "line\r\nBcc: attacker@evil.example",
    "\r\n\r\n<html>body</html>",
    "\n",
    "\r",
    "x\u2028y\u2029z",
    "\u202eexe.txt\u202c\u2066\u2069",
    "\u200b\ufeff\u00ad",
    "\ud800",
    "a\udfffb",
    INJECTION,
    encoded_word(INJECTION),
    encoded_word(encoded_word(INJECTION)),
    encoded_word(INJECTION, "Q"),
    "=?utf-8?B?////?=",
    "=?x-unknown?Q?=00?=",
    "../../../../tmp/x",
    "..\\..\\..\\windows\\system32\\x",
    "/etc/passwd",
    "CON",
    "<script>alert(1)</script>",
    "'; DROP TABLE tickets; --",
    "{data.summary}{{}}{",
    "%00%0d%0a",
    "é" * 256,
    "\U0001f642" * 256,
    "A" * 21,
    "A" * 41,
    "A" * 201,
    "A" * 255,
    "A" * 256,
    "B" * 70_000,
]
DATA_URLS = [
    "data:text/plain;base64,@@@",
    "data:text/plain;base64,aGk",
    "data:text/plain;base64,",
    "data:,",
    "data:",
    "data:text/plain,%00%ff%fe",
    "data:text/plain;charset=x-no-such,hi",
    "data:text/plain;charset=unicode_escape,%5Cud800",
    "data:text/html;base64," + base64.b64encode(b"<div>" * 2000 + b"x").decode(),
    "data:text/html," + "<b>" * 40 + "deep",
    f"data:{'a' * 150}/{'b' * 150};base64,aGk=",
    "data:text/plain\r\nX: y;base64,aGk=",
    "javascript:alert(1)",
    "http://169.254.169.254/latest/meta-data/",
]
EMAILS = [
    "ada@example.com\r\nBcc: attacker@evil.example",
    "ada@example.com, attacker@evil.example",
    "Ada <ada@example.com>",
    '"a\r\nb"@example.com',
    "a\x00@example.com",
    "@example.com",
    "ada@",
    "a" * 250 + "@example.com",
    "ada@" + "a" * 300 + ".com",
    "ada@exam\u202eple.com",
    "=?utf-8?B?YUBiLmM=?=@example.com",
]


def atoms() -> st.SearchStrategy[Any]:
    return st.sampled_from([*INTS, *NON_INTS, *TEXTS])


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Generated text from every plane: controls, format characters, lone surrogates."""
    return st.text(
        st.one_of(
            st.characters(codec=None),
            st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Cs"]),
            st.sampled_from("\r\n\x00"),
        ),
        max_size=max_size,
    )


def hostile_strings() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(TEXTS), texts(), texts().map(encoded_word))


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def hostile_values() -> st.SearchStrategy[Any]:
    """Any JSON-ish value a field might be sent instead of the one it expects."""
    scalar = st.one_of(atoms(), texts(), st.integers(), st.floats())
    return st.one_of(
        scalar,
        st.sampled_from([nested(40), nested(256), nested(300)]),  # orjson writes 255 deep
        st.lists(scalar, max_size=3),
        st.dictionaries(hostile_strings(), scalar, max_size=2),
    )


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 5, 160, 160
_SHORT.maxlist, _SHORT.maxdict = 6, 12


def short(value: Any) -> str:
    """A failing example in a line: the pretty printer gives up on 900-deep values."""
    return _SHORT.repr(value)


def dumps(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN, Infinity, \\ud800 escapes, 10**23 literals."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def header_safe(value: str) -> str:
    """What can travel in an HTTP header at all (the test client refuses CR/LF; a real server
    hands the handler latin-1): the bytes of the value, controls past the framing kept."""
    raw = value.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
    return raw.decode("latin-1")


# -- the checks ---------------------------------------------------------------------------------


ALLOWED_HEADERS = {
    "from", "to", "subject", "message-id", "date", "auto-submitted", "x-deskstream-ticket",
    "content-type", "content-transfer-encoding", "mime-version", "in-reply-to", "references",
}  # fmt: skip


@dataclass
class Watch:
    """What one example may not leave behind: a dead letter, a subscription behind the head,
    a mail with a header or recipient nobody asked for."""

    platform: Platform
    subscribers: list[EmbeddedSubscriber]
    agent_token: str
    client: FlaskClient
    api_key: str
    checked_mail: set[str] = field(default_factory=set)

    def dead_letters(self) -> int:
        with reading(self.platform.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())

    def ticket(self, number: str) -> TestResponse:
        return self.client.get(
            f"/api/v1/tickets/{number}", headers={"Authorization": f"Bearer {self.agent_token}"}
        )

    def settled(self, before_dead_letters: int, *, follow_up: bool = True) -> None:
        """Run the pipeline until idle: no subscription failed, stopped or dead-lettered, all
        are at the head, and a normal ticket opened after the hostile input (so behind it in
        every subscription) reaches the read model."""
        number = self._follow_up() if follow_up else None
        settle(self.subscribers)
        assert self.dead_letters() == before_dead_letters, self._last_dead_letter()
        head = self.platform.store.head_position()
        with reading(self.platform.engine) as conn:
            behind = {s.name: load_checkpoint(conn, s.name) for s in self.subscribers}
        assert all(p == head for p in behind.values()), (head, behind)
        if number is not None:
            seen = self.ticket(number)
            assert seen.status_code == 200, (
                "the follow-up ticket is not in the read model",
                seen.text,
            )

    def _follow_up(self) -> str:
        response = self.client.post(
            "/api/tickets.json",
            json={
                "name": "Ada",
                "email": f"{unique('follow')}@example.com",
                "subject": "After the hostile one",
                "message": "Still working?",
            },
            headers={"X-API-Key": self.api_key},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.status_code == 201, response.text
        return response.text

    def _last_dead_letter(self) -> str:
        with reading(self.platform.engine) as conn:
            row = conn.execute(
                select(dead_letters.c.subscription, dead_letters.c.type, dead_letters.c.error)
                .order_by(dead_letters.c.id.desc())
                .limit(1)
            ).first()
        return f"dead-lettered: {tuple(row) if row else None}"

    def outgoing_mail_is_clean(self) -> None:
        """Every new outgoing message: one To, an address intake validated, only the headers
        an autoresponse has, one text part."""
        validated = self._validated_addresses()
        drop = self.platform.settings.maildrop_dir
        for path in sorted(drop.glob("*.eml")) if drop.exists() else []:
            if path.name in self.checked_mail:
                continue
            self.checked_mail.add(path.name)
            raw = path.read_bytes()
            message: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)
            names = {k.lower() for k in message}
            assert names <= ALLOWED_HEADERS, (sorted(names - ALLOWED_HEADERS), raw[:2000])
            assert len(message.get_all("To") or []) == 1, raw[:2000]
            recipients = [a.addr_spec.lower() for a in message["To"].addresses]
            assert len(recipients) == 1 and recipients[0] in validated, (recipients, raw[:2000])
            assert not message.is_multipart() and message.get_content_type() == "text/plain"
            for name in names:
                for value in message.get_all(name) or []:
                    assert not set(str(value)) & {"\r", "\n", "\x00"}, (name, str(value))

    def _validated_addresses(self) -> set[str]:
        found = set()
        for event in self.platform.store.read_all(0, 1_000_000):
            if event.type == "TicketCreated":
                found.add(str(event.data["requester"]["email"]).lower())
            elif event.type == "EmailRefused" and event.data.get("sender"):
                found.add(str(event.data["sender"]).lower())
        return found


@contextmanager
def watched_desk(database_url: str, tmp_path: Path, **changes: Any) -> Iterator[Watch]:
    """The in-process desk on `database_url`, its pipeline, an admin agent and an API key.
    The clock is fake so a failing handler's retries cost no wall time; autoresponses have no
    window so every accepted ticket is answered (and its mail checked)."""
    settings = desk_settings(tmp_path, database_url, autoresponse_window_s=0, **changes)
    with open_platform(settings, FakeClock()) as platform:
        _, token = create_agent(
            platform.store, email="root@example.com", name="Root", password=None, admin=True
        )
        yield Watch(
            platform=platform,
            subscribers=pipeline(platform),
            agent_token=token,
            client=embedded_app(platform).test_client(),
            api_key=create_api_key(platform.store, ["127.0.0.1"])[1],
        )


def answered_sanely(response: TestResponse) -> None:
    """A success or the caller's fault with a reason: never a 5xx, never an empty refusal."""
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    assert 200 <= response.status_code < 300 or response.text.strip(), response.status_code
