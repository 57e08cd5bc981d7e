"""Field shapes shared by several event schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

PRIORITIES = ("low", "normal", "high", "emergency")
CHANNELS = ("email", "web", "api", "agent", "event", "phone", "other")
STATUSES = ("open", "resolved", "closed", "archived", "deleted")
# osTicket's states: every status, built-in or an admin's (TicketStatusDefined), is in one.
STATES = ("open", "closed", "archived", "deleted")
_BUILT_IN_STATES = {
    "open": "open", "resolved": "closed", "closed": "closed", "archived": "archived",
    "deleted": "deleted",
}  # fmt: skip
FILTER_OPS = (
    "equal", "not_equal", "contains", "not_contains", "starts_with", "ends_with", "match", "not_match",
)  # fmt: skip
FILTER_ACTIONS = (
    "reject", "department", "priority", "sla_plan", "assign_agent", "assign_team", "help_topic",
    "status", "disable_autoresponse", "add_collaborator", "canned_response",
)  # fmt: skip


def state_of(status: str, state: str | None = None) -> str:
    """The state a TicketStatusChanged leaves the ticket in: its `state`, else (events written
    before custom statuses) the built-in status's. Every consumer reads old events this way.
    A name no built-in status has and no state came with counts as open: still in view."""
    return state or _BUILT_IN_STATES.get(status, "open")


Priority = lambda **kw: fields.String(validate=validate.OneOf(PRIORITIES), **kw)  # noqa: E731
TicketId = lambda **kw: fields.UUID(**kw)  # noqa: E731
ConfigId = lambda **kw: fields.Integer(strict=True, validate=validate.Range(min=1), **kw)  # noqa: E731


class Person(Schema):
    email = fields.Email(required=True)
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class Author(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("user", "agent", "system")))
    id = fields.Integer(allow_none=True, load_default=None)
    name = fields.String(allow_none=True, load_default=None)
    email = fields.String(allow_none=True, load_default=None)


class Attachment(Schema):
    id = fields.String(required=True)
    filename = fields.String(required=True, validate=validate.Length(max=255))
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    # An email's inline image: its Content-ID (no angle brackets), which the HTML body names
    # as `cid:<content_id>`. Absent in events written before it was kept.
    content_id = fields.String(allow_none=True, load_default=None)
    inline = fields.Boolean(load_default=False)
