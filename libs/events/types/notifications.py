"""Notification-stream events (`notification-<uuid>`), published on deskstream.notifications.v1."""

from __future__ import annotations

from marshmallow import Schema, fields

from libs.events.catalog import EventCatalog


class NotificationSent(Schema):
    ticket_id = fields.UUID(allow_none=True, load_default=None)  # None: mail about no ticket
    cause_event_id = fields.UUID(required=True)
    template = fields.String(required=True)
    recipient = fields.Email(required=True)
    message_id = fields.String(required=True)


class NotificationFailed(Schema):
    ticket_id = fields.UUID(required=True)
    cause_event_id = fields.UUID(required=True)
    template = fields.String(required=True)
    recipient = fields.String(required=True)
    error = fields.String(required=True)


class NotificationSuppressed(Schema):
    """Deliberately not sent (no error): the log says why, e.g. the mail-loop guard."""

    ticket_id = fields.UUID(allow_none=True, load_default=None)  # None: mail about no ticket
    cause_event_id = fields.UUID(required=True)
    template = fields.String(required=True)
    recipient = fields.Email(required=True)
    reason = fields.String(required=True)
    last_sent_at = fields.DateTime(allow_none=True, load_default=None)  # the send that held it


def register(catalog: EventCatalog) -> None:
    catalog.register(
        "NotificationSent",
        NotificationSent,
        stream="notification",
        description="An email left Deskstream (SMTP accepted it or it was dropped in the maildrop).",
    )
    catalog.register(
        "NotificationFailed",
        NotificationFailed,
        stream="notification",
        description="An email could not be sent; the reason is recorded.",
    )
    catalog.register(
        "NotificationSuppressed",
        NotificationSuppressed,
        stream="notification",
        description="An email was deliberately not sent: the recipient got an autoresponse "
        "within the autoresponse window (mail-loop guard); the reason is recorded.",
    )
