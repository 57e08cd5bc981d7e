"""Agent ticket commands: `POST /api/v1/tickets/<number>/<action>`.

Each body names the version the agent saw (`expected_version`, or an `If-Match` header); the
answer is the new version, or 409 with the events appended since.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from marshmallow import Schema, fields, validate

from libs.events.types.fields import ConfigId, Email
from libs.platform.auth import require_agent
from libs.platform.errors import ValidationFailed
from libs.platform.http import json_response
from libs.platform.http_input import expected_version, json_body, trace_metadata
from libs.platform.validation import load
from services.intake import commands
from services.intake.domain import tickets
from services.intake.domain.payloads import html_to_text, sanitize_html
from services.platform import current_platform

bp = Blueprint("intake_tickets", __name__)

Body = dict[str, Any]
_Text = lambda **kw: fields.String(allow_none=True, load_default=None, **kw)  # noqa: E731


class AssignBody(Schema):
    agent_id = ConfigId(allow_none=True, load_default=None)
    team_id = ConfigId(allow_none=True, load_default=None)
    reason = _Text()


class ReleaseBody(Schema):
    agent = fields.Boolean(allow_none=True, load_default=None)
    team = fields.Boolean(allow_none=True, load_default=None)
    reason = _Text()


class TransferBody(Schema):
    department_id = ConfigId(required=True)
    reason = _Text()


class StatusBody(Schema):
    status = fields.String(required=True, validate=validate.Length(max=40))  # tickets.status
    reason = _Text()


class PriorityBody(Schema):
    priority = fields.String(required=True)


class FieldsBody(Schema):
    field = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=True)
    reason = _Text()


class NoteBody(Schema):
    body = _Text()
    body_html = _Text()


class ReplyBody(NoteBody):
    reply_to = fields.String(load_default="all")


class NewCollaboratorBody(Schema):
    email = Email(required=True)
    name = _Text()


_Emails = lambda: fields.List(Email(), load_default=list)  # noqa: E731
# Ticket numbers another ticket names (merge, link): a request's worth, not a bulk job.
_Numbers = lambda **kw: fields.List(  # noqa: E731
    fields.String(validate=validate.Length(min=1, max=20)), validate=validate.Length(max=50), **kw
)


class CollaboratorsBody(Schema):
    """Add, remove, disable (no mail, still on the ticket) or enable collaborators by email."""

    add = fields.List(fields.Nested(NewCollaboratorBody), load_default=list)
    remove = _Emails()
    disable = _Emails()
    enable = _Emails()


class MergeBody(Schema):
    """Merge `tickets` into this one (needs ticket.merge): each is closed (or resolved) and
    its requester and collaborators join this ticket; `combine` interleaves the threads."""

    tickets = _Numbers(required=True)
    mode = fields.String(load_default="combine")
    child_status = fields.String(load_default="closed")
    delete_children = fields.Boolean(load_default=False)
    move_collaborators = fields.Boolean(load_default=True)


class LinksBody(Schema):
    """Link or unlink other tickets (needs ticket.link); both tickets record each change."""

    link = _Numbers(load_default=list)
    unlink = _Numbers(load_default=list)


def _assign(body: Body) -> commands.Command:
    return tickets.Assign(**body)


def _release(body: Body) -> commands.Command:
    return tickets.Release(**body)


def _transfer(body: Body) -> commands.Command:
    return tickets.Transfer(**body)


def _status(body: Body) -> commands.Command:
    return tickets.ChangeStatus(**body)


def _priority(body: Body) -> commands.Command:
    return tickets.ChangePriority(**body)


def _fields(body: Body) -> commands.Command:
    return tickets.UpdateField(**body)


def _reply(body: Body) -> commands.Command:
    text, html = _message(body)
    return tickets.Reply(text, html, reply_to=body["reply_to"])


def _note(body: Body) -> commands.Command:
    text, html = _message(body)
    return tickets.AddNote(text, html)


def _collaborators(body: Body) -> commands.Command:
    return tickets.ChangeCollaborators(
        add=tuple(tickets.Collaborator(p["email"], p["name"]) for p in body["add"]),
        remove=tuple(body["remove"]),
        disable=tuple(body["disable"]),
        enable=tuple(body["enable"]),
    )


def _merge(body: Body) -> commands.Command:
    return tickets.Merge(**{**body, "tickets": tuple(body["tickets"])})


def _links(body: Body) -> commands.Command:
    return tickets.ChangeLinks(tuple(body["link"]), tuple(body["unlink"]))


# action -> (its body, built once: schemas are stateless and costly to build; the command)
ACTIONS: dict[str, tuple[Schema, Callable[[Body], commands.Command]]] = {
    "assign": (AssignBody(), _assign),
    "release": (ReleaseBody(), _release),
    "transfer": (TransferBody(), _transfer),
    "status": (StatusBody(), _status),
    "priority": (PriorityBody(), _priority),
    "fields": (FieldsBody(), _fields),
    "replies": (ReplyBody(), _reply),
    "notes": (NoteBody(), _note),
    "collaborators": (CollaboratorsBody(), _collaborators),
    "merge": (MergeBody(), _merge),
    "links": (LinksBody(), _links),
}


@bp.post(f"/api/v1/tickets/<number:number>/<any({', '.join(ACTIONS)}):action>")
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
    schema, command = ACTIONS[action]
    version = commands.handle(
        platform.store,
        number=number,
        agent=agent,
        command=command(load(schema, body)),
        expected_version=expected,
        metadata={"actor": f"agent:{agent.id}", **trace_metadata()},
    )
    return json_response({"number": number, "version": version}, headers={"ETag": f'"{version}"'})


def _message(body: Body) -> tuple[str, str | None]:
    """(text, sanitised HTML); without a text body the HTML's text stands in."""
    html, text = body["body_html"], body["body"]
    clean = sanitize_html(html) if html and html.strip() else None
    if text is None:
        if clean is None:
            raise ValidationFailed("body is required", field="body")
        text = html_to_text(clean)
    return text, clean
