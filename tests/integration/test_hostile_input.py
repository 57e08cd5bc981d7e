"""Hostile values in every field of the JSON and XML intake and of the agent commands, on both
dialects (PostgreSQL refuses NUL and over-long text where SQLite stores them): each request is
answered 2xx or 4xx, never 5xx; a refusal appends nothing; whatever is accepted reaches the read
model without failing, retrying or dead-lettering any subscription; and the autoresponse it
causes has exactly its requester as recipient and no header it should not have.

Mail and CloudEvents: test_hostile_mail_events.py. Values: tests/support/hostile.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from tests.integration.test_intake_api import GOOD
from tests.integration.test_intake_xml_api import GOOD as GOOD_XML
from tests.support.hostile import (
    DATA_URLS,
    EMAILS,
    Watch,
    answered_sanely,
    dumps,
    header_safe,
    hostile_strings,
    hostile_values,
    nested,
    short,
    unique,
    watched_desk,
)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    # No shrinking: examples share one desk, so a shrunk example is not independent anyway,
    # and each example notes its hostile values; a failure is reported in seconds, not minutes.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def desk(database_url: str, tmp_path: Path) -> Iterator[Watch]:
    with watched_desk(database_url, tmp_path) as desk:
        yield desk


def accepted_or_refused(desk: Watch, response: Any, head: int) -> str | None:
    """The ticket number when accepted; on a refusal, nothing may have been appended."""
    answered_sanely(response)
    if response.status_code >= 400:
        assert desk.platform.store.head_position() == head, "a refusal appended events"
        return None
    return str(response.json["number"] if response.is_json else response.text)


def settled_with(desk: Watch, number: str | None, dead_letters: int) -> None:
    desk.settled(dead_letters)
    if number:
        seen = desk.ticket(number)
        assert seen.status_code == 200, seen.text
    desk.outgoing_mail_is_clean()


# -- POST /api/tickets.json and /api/v1/tickets -----------------------------------------------------

JSON_FIELDS = [
    "name", "email", "subject", "message", "phone", "topicId", "priority", "priorityId",
    "source", "ip", "alert", "autorespond", "attachments", "asset_tag", "x" * 300, "\x00", "",
]  # fmt: skip
ATTACHMENT_NAMES = st.one_of(hostile_strings(), st.just("smoke.txt"))
ATTACHMENTS = st.lists(
    st.dictionaries(
        ATTACHMENT_NAMES, st.one_of(st.sampled_from(DATA_URLS), hostile_values()), max_size=2
    ),
    max_size=3,
)
FIELD_VALUES = {
    "email": st.one_of(st.sampled_from(EMAILS), hostile_values()),
    "message": st.one_of(st.sampled_from(DATA_URLS), hostile_values()),
    "attachments": st.one_of(ATTACHMENTS, hostile_values()),
}


@st.composite
def osticket_bodies(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["fields", "fields", "fields", "whole", "nested"]))
    if shape == "whole":  # the body itself is the wrong thing
        return draw(hostile_values())
    body: dict[str, Any] = {**GOOD, "email": f"{unique('ada')}@example.com"}
    if shape == "nested":
        body["asset_tag"] = nested(draw(st.sampled_from([100, 900])))
        return body
    for name in draw(st.lists(st.sampled_from(JSON_FIELDS), min_size=1, max_size=3, unique=True)):
        body[name] = draw(FIELD_VALUES.get(name, hostile_values()))
    return body


def _raw_nesting(depth: int) -> bytes:
    return b'{"name":"Ada","email":"a@example.com","subject":"s","message":"m","x":' + (
        b"[" * depth + b"]" * depth + b"}"
    )


@pytest.mark.parametrize("endpoint", ["/api/tickets.json", "/api/v1/tickets"])
@SETTINGS
@given(body=osticket_bodies(), raw_depth=st.sampled_from([None, None, None, 600, 100_000]))
@example(body={**GOOD, "topicId": 99999999999999999999999}, raw_depth=None)  # issue 10, item 1
@example(body={**GOOD, "attachments": [{"../../../../tmp/x": "data:,x"}]}, raw_depth=None)
def test_hostile_json_tickets(desk: Watch, endpoint: str, body: Any, raw_depth: int | None) -> None:
    note(f"{endpoint} body={short(body)} raw_depth={raw_depth}")
    head, dead = desk.platform.store.head_position(), desk.dead_letters()
    response = desk.client.post(
        endpoint,
        data=_raw_nesting(raw_depth) if raw_depth else dumps(body),
        content_type="application/json",
        headers={"X-API-Key": desk.api_key},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    settled_with(desk, accepted_or_refused(desk, response, head), dead)


# -- POST /api/tickets.xml --------------------------------------------------------------------------

XML_TRICKS = [
    # entity expansion and external entities: defusedxml must refuse each
    '<!DOCTYPE ticket [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<ticket><name>&b;</name></ticket>",
    '<!DOCTYPE ticket [<!ENTITY x SYSTEM "file:///etc/passwd">]><ticket><name>&x;</name></ticket>',
    '<!DOCTYPE ticket [<!ENTITY % p SYSTEM "http://169.254.169.254/">%p;]><ticket/>',
    '<!DOCTYPE ticket SYSTEM "http://169.254.169.254/ticket.dtd"><ticket/>',
    '<ticket xmlns:xi="http://www.w3.org/2001/XInclude"><name><xi:include href="/etc/passwd"'
    ' parse="text"/></name></ticket>',
    '<?xml version="1.0" encoding="UTF-16"?><ticket/>',
    "\ufeff<?xml version='1.0'?><ticket><name>x</name></ticket>",
    "<ticket><message><![CDATA[a]]>]]></message></ticket>",
    "<ticket>" + "<x>" * 5000 + "</x>" * 5000 + "</ticket>",
    "<a:ticket xmlns:a='urn:x'><a:name>n</a:name></a:ticket>",
    "<ticket><name>&#0;</name></ticket>",
    "<ticket><name>&#xD800;</name></ticket>",
]  # fmt: skip
XML_SLOTS = [
    "name", "email", "subject", "message", "message@type", "message@encoding", "priority",
    "phone", "@topicId", "@alert", "@source", "file@name", "file@type", "file@encoding",
    "file", "asset_tag",
]  # fmt: skip


def _xml(values: dict[str, str], raw: bool) -> str:
    """The good XML ticket with some slots given hostile values (escaped, or raw)."""

    def text(slot: str, default: str) -> str:
        value = values.get(slot, default)
        return value if raw else escape(value)

    def attr(slot: str, default: str) -> str:
        value = values.get(slot, default)
        return f'"{value}"' if raw else quoteattr(value)

    return (
        f"<ticket alert={attr('@alert', 'false')} source={attr('@source', 'API')}"
        f" topicId={attr('@topicId', '1')}>"
        f"<name>{text('name', 'Ada')}</name>"
        f"<email>{text('email', unique('ada') + '@example.com')}</email>"
        f"<subject>{text('subject', 'Printer on fire')}</subject>"
        f"<message type={attr('message@type', 'text/plain')}"
        f" encoding={attr('message@encoding', 'none')}>{text('message', 'Smoke')}</message>"
        f"<priority>{text('priority', 'high')}</priority><phone>{text('phone', '555')}</phone>"
        f"<attachments><file name={attr('file@name', 'smoke.txt')}"
        f" type={attr('file@type', 'text/plain')} encoding={attr('file@encoding', 'none')}>"
        f"{text('file', 'lots of smoke')}</file></attachments>"
        f"<asset_tag>{text('asset_tag', 'PRN-7')}</asset_tag></ticket>"
    )


@st.composite
def xml_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from([*XML_TRICKS, GOOD_XML[:200]])).encode("utf-8")
    slots = draw(st.lists(st.sampled_from(XML_SLOTS), min_size=1, max_size=3, unique=True))
    values = {s: draw(st.one_of(hostile_strings(), st.sampled_from(DATA_URLS))) for s in slots}
    if "email" in values and draw(st.booleans()):
        values["email"] = draw(st.sampled_from(EMAILS))
    return _xml(values, raw=draw(st.booleans())).encode("utf-8", "surrogatepass")


@SETTINGS
@given(body=xml_bodies())
def test_hostile_xml_tickets(desk: Watch, body: bytes) -> None:
    note(f"xml={short(body)}")
    head, dead = desk.platform.store.head_position(), desk.dead_letters()
    response = desk.client.post(
        "/api/tickets.xml",
        data=body,
        content_type="application/xml",
        headers={"X-API-Key": desk.api_key},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    settled_with(desk, accepted_or_refused(desk, response, head), dead)


# -- agent commands: POST /api/v1/tickets/<number>/<action> -------------------------------------


def command_bodies(other: str) -> dict[str, dict[str, Any]]:
    """A body each action accepts; `other` is a second ticket (merge, links)."""
    return {
        "assign": {"agent_id": 1, "team_id": None, "reason": "L2"},
        "release": {"agent": True, "team": None, "reason": "back"},
        "transfer": {"department_id": 1, "reason": "ours"},
        "status": {"status": "closed", "reason": "done"},
        "priority": {"priority": "high"},
        "fields": {"field": "asset_tag", "value": "PRN-7", "reason": "typo"},
        "replies": {"body": "On it", "body_html": "<p>On it</p>", "reply_to": "all"},
        "notes": {"body": "Checked", "body_html": None},
        "collaborators": {
            "add": [{"email": f"{unique('bob')}@example.com", "name": "Bob"}],
            "remove": [],
            "disable": [],
            "enable": [],
        },
        "merge": {"tickets": [other], "mode": "combine", "child_status": "closed"},
        "links": {"link": [other], "unlink": []},
    }


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (dotted; digits index lists) in `body` to `value`, unless an earlier
    hostile value replaced the container the path was in."""
    *parents, last = path.split(".")
    target: Any = body
    try:
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        elif isinstance(target, dict):
            target[last] = value
    except (IndexError, KeyError, TypeError, ValueError):
        return


def _paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)  # type: ignore[assignment]
    else:
        return []
    found = []
    for key, inner in items:
        path = f"{prefix}{key}"
        found.append(path)
        found += _paths(inner, path + ".")
    return found


@st.composite
def commands(draw: st.DrawFn) -> tuple[str, list[tuple[str, Any]], str | None]:
    """(action, [(path, hostile value)], a hostile If-Match or None); paths may be
    `expected_version` (the body's), `number` (the URL's) or one of the body's fields."""
    action = draw(st.sampled_from(sorted(command_bodies("0"))))
    paths = ["expected_version", "number", *_paths(command_bodies("0")[action]), "unknown"]
    chosen = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2, unique=True))
    values = [
        (p, draw(st.sampled_from(EMAILS) if "email" in p else hostile_values())) for p in chosen
    ]
    if_match = draw(st.one_of(st.none(), hostile_strings().map(header_safe)))
    return action, values, if_match


def _open(desk: Watch) -> tuple[str, int]:
    body = {**GOOD, "email": f"{unique('ada')}@example.com"}
    headers = {"Authorization": f"Bearer {desk.agent_token}"}
    created = desk.client.post("/api/v1/tickets", json=body, headers=headers)
    assert created.status_code == 201, created.text
    number = str(created.json["number"])  # type: ignore[index]
    desk.settled(desk.dead_letters(), follow_up=False)
    return number, int(desk.ticket(number).json["version"])  # type: ignore[index]


@SETTINGS
@given(command=commands())
@example(command=("status", [("expected_version", 2**63 - 1)], None))
@example(command=("notes", [("body", "x" * 70_000 + "\x00")], None))
def test_hostile_agent_commands(
    desk: Watch, command: tuple[str, list[tuple[str, Any]], str | None]
) -> None:
    action, values, if_match = command
    note(f"{action} values={short(values)} If-Match={if_match!r}")
    number, version = _open(desk)
    other = _open(desk)[0] if action in ("merge", "links") else "000000"
    body: dict[str, Any] = {**command_bodies(other)[action], "expected_version": version}
    for path, value in values:
        if path == "number":
            number = header_safe(str(value)).replace("/", "%2F").replace("?", "%3F") or "x"
        else:
            _put(body, path, value)
    head, dead = desk.platform.store.head_position(), desk.dead_letters()
    headers = {"Authorization": f"Bearer {desk.agent_token}"}
    if if_match is not None:
        headers["If-Match"] = if_match
    response = desk.client.post(
        f"/api/v1/tickets/{number}/{action}",
        data=dumps(body),
        content_type="application/json",
        headers=headers,
    )
    answered_sanely(response)
    if response.status_code >= 400:
        assert desk.platform.store.head_position() == head, "a refusal appended events"
    settled_with(desk, number if response.status_code < 400 else None, dead)
