"""Email intake's own facts (`email-<digest of Message-ID>`), on deskstream.email.v1.

An email that became a ticket or a message is recorded on that ticket. One that did not is
recorded here, so every refusal is in the log (and a redelivered copy is known), and notify
can send the over-limit notice.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from libs.events.catalog import EventCatalog

REFUSALS = ("loop", "bounce", "banned", "rejected", "over_limit")


class EmailRefused(Schema):
    message_id = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(REFUSALS))
    detail = fields.String(required=True)
    sender = fields.String(allow_none=True, load_default=None)
    sender_name = fields.String(allow_none=True, load_default=None)
    subject = fields.String(allow_none=True, load_default=None)
    channel = fields.String(required=True)
    # False for an auto-reply: nothing answers it (the over-limit notice included).
    autorespond = fields.Boolean(load_default=True)


def register(catalog: EventCatalog) -> None:
    catalog.register(
        "EmailRefused",
        EmailRefused,
        stream="email",
        description="An email made no ticket and no message: a loop, an unknown bounce, a "
        "banned sender, a filter's reject action or a requester over the open-ticket limit.",
    )
