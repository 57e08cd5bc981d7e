"""Agent ticket commands: `POST /api/v1/tickets/<number>/<action>`.

Each body names the version the agent saw (`expected_version`, or an `If-Match` header); the
answer is the new version, or 409 with the events appended since.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from libs.platform.auth import require_agent
from libs.platform.errors import ValidationFailed
from libs.platform.http import json_response
from libs.platform.http_input import expected_version, json_body, trace_metadata
from services.intake import commands
from services.intake.domain import tickets
from services.intake.domain.payloads import html_to_text, sanitize_html
from services.platform import current_platform

bp = Blueprint("intake_tickets", __name__)

Body = dict[str, Any]


def _assign(body: Body) -> commands.Command:
    _only(body, "agent_id", "team_id", "reason")
    return tickets.Assign(
        agent_id=_id(body, "agent_id", required=False),
        team_id=_id(body, "team_id", required=False),
        reason=_text(body, "reason"),
    )


def _release(body: Body) -> commands.Command:
    _only(body, "agent", "team", "reason")
    return tickets.Release(
        agent=_flag(body, "agent"), team=_flag(body, "team"), reason=_text(body, "reason")
    )


def _transfer(body: Body) -> commands.Command:
    _only(body, "department_id", "reason")
    department_id = _id(body, "department_id", required=True)
    assert department_id is not None
    return tickets.Transfer(department_id, reason=_text(body, "reason"))


def _status(body: Body) -> commands.Command:
    _only(body, "status", "reason")
    return tickets.ChangeStatus(_required_text(body, "status"), reason=_text(body, "reason"))


def _priority(body: Body) -> commands.Command:
    _only(body, "priority")
    return tickets.ChangePriority(_required_text(body, "priority"))


def _fields(body: Body) -> commands.Command:
    _only(body, "field", "value", "reason")
    if "value" not in body:
        raise ValidationFailed("value is required", field="value")
    return tickets.UpdateField(
        _required_text(body, "field"), body["value"], reason=_text(body, "reason")
    )


def _reply(body: Body) -> commands.Command:
    _only(body, "body", "body_html", "reply_to")
    text, html = _message(body)
    return tickets.Reply(text, html, reply_to=_text(body, "reply_to") or "all")


def _note(body: Body) -> commands.Command:
    _only(body, "body", "body_html")
    text, html = _message(body)
    return tickets.AddNote(text, html)


ACTIONS: dict[str, Callable[[Body], commands.Command]] = {
    "assign": _assign,
    "release": _release,
    "transfer": _transfer,
    "status": _status,
    "priority": _priority,
    "fields": _fields,
    "replies": _reply,
    "notes": _note,
}


@bp.post(f"/api/v1/tickets/<number>/<any({', '.join(ACTIONS)}):action>")
def ticket_command(number: str, action: str) -> Response:
    platform = current_platform()
    agent = require_agent(platform.engine, request.headers.get("Authorization"))
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    expected = expected_version(body.pop("expected_version", None))
    if expected is None:
        raise ValidationFailed(
            "expected_version is required: the ticket version you saw (or send If-Match)",
            field="expected_version",
        )
    version = commands.handle(
        platform.store,
        number=number,
        agent=agent,
        command=ACTIONS[action](body),
        expected_version=expected,
        metadata={"actor": f"agent:{agent.id}", **trace_metadata()},
    )
    return json_response({"number": number, "version": version}, headers={"ETag": f'"{version}"'})


# -- body fields --------------------------------------------------------------------------------


def _only(body: Body, *allowed: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {', '.join(unknown)}; expected {', '.join(allowed)}",
            field=unknown[0],
        )


def _id(body: Body, key: str, *, required: bool) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed(f"{key} must be a positive integer id", field=key)
    return value


def _text(body: Body, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{key} must be a string", field=key)
    return value


def _required_text(body: Body, key: str) -> str:
    value = _text(body, key)
    if value is None:
        raise ValidationFailed(f"{key} is required", field=key)
    return value


def _flag(body: Body, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValidationFailed(f"{key} must be true or false", field=key)
    return value


def _message(body: Body) -> tuple[str, str | None]:
    """(text, sanitised HTML); without a text body the HTML's text stands in."""
    html = _text(body, "body_html")
    clean = sanitize_html(html) if html and html.strip() else None
    text = _text(body, "body")
    if text is None:
        if clean is None:
            raise ValidationFailed("body is required", field="body")
        text = html_to_text(clean)
    return text, clean
