"""Field shapes shared by several event schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

PRIORITIES = ("low", "normal", "high", "emergency")
CHANNELS = ("email", "web", "api", "agent", "event", "phone", "other")
STATUSES = ("open", "resolved", "closed", "archived", "deleted")
FILTER_OPS = (
    "equal", "not_equal", "contains", "not_contains", "starts_with", "ends_with", "match", "not_match",
)  # fmt: skip
FILTER_ACTIONS = (
    "reject", "department", "priority", "sla_plan", "assign_agent", "assign_team", "help_topic",
    "status", "disable_autoresponse", "add_collaborator", "canned_response",
)  # fmt: skip

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
