"""Field shapes shared by several event schemas, and the bounds every stored value meets.

The bounds are the projections' columns on both dialects (services/migrations/versions/): a value
intake accepts must fit all of them, or one request stops a read model. Intake's bodies, the
agent commands, the config schemas and this catalog use the same fields; what no schema field
can say (64-bit integers, NUL) is `libs.events.storable`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

# PostgreSQL INTEGER (32 bits) holds every id, version and size column of the projections.
MAX_ID = 2**31 - 1
SUBJECT_LENGTH = 255  # tickets.subject
NAME_LENGTH = 200  # tickets.requester_name, thread_entries.author_name, query_names.name
EMAIL_LENGTH = 254  # tickets.requester_email (RFC 5321's path limit)
FILENAME_LENGTH = 255  # attachments.filename
CONTENT_TYPE_LENGTH = 200  # attachments.content_type

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
ConfigId = lambda **kw: fields.Integer(  # noqa: E731
    strict=True, validate=validate.Range(min=1, max=MAX_ID), **kw
)
# An integer a column holds (orders, counts); an id a request names but that need not exist yet.
Int = lambda **kw: fields.Integer(validate=validate.Range(min=-MAX_ID - 1, max=MAX_ID), **kw)  # noqa: E731
Id = lambda **kw: fields.Integer(validate=validate.Range(min=1, max=MAX_ID), **kw)  # noqa: E731
Email = lambda **kw: fields.Email(validate=validate.Length(max=EMAIL_LENGTH), **kw)  # noqa: E731


class Person(Schema):
    email = Email(required=True)
    name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=NAME_LENGTH)
    )


class Author(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("user", "agent", "system")))
    id = Id(allow_none=True, load_default=None)
    name = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=NAME_LENGTH)
    )
    email = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=EMAIL_LENGTH)
    )


class Attachment(Schema):
    id = fields.String(required=True)
    filename = fields.String(required=True, validate=validate.Length(max=FILENAME_LENGTH))
    content_type = fields.String(required=True, validate=validate.Length(max=CONTENT_TYPE_LENGTH))
    size = Int(required=True)
    sha256 = fields.String(required=True)
    # An email's inline image: its Content-ID (no angle brackets), which the HTML body names
    # as `cid:<content_id>`. Absent in events written before it was kept.
    content_id = fields.String(allow_none=True, load_default=None)
    inline = fields.Boolean(load_default=False)
