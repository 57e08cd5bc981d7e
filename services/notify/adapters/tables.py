"""notify's own state, built from events."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table

from libs.events.tables import metadata

notify_tickets = Table(
    "notify_tickets",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
    Column("number", String(20), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("requester_email", String(254), nullable=False),
    Column("requester_name", String(200), nullable=True),
    Column("autorespond", Boolean, nullable=False),
)

notify_departments = Table(
    "notify_departments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("autorespond_new_ticket", Boolean, nullable=False),
)

# (cause event, recipient, template) -> the message sent: the at-most-once record.
notifications_sent = Table(
    "notifications_sent",
    metadata,
    Column("cause_event_id", String(36), primary_key=True),
    Column("recipient", String(254), primary_key=True),
    Column("template", String(100), primary_key=True),
    Column("message_id", String(300), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    # The mail-loop guard's question: when did this recipient last get an autoresponse?
    Index("ix_notifications_sent_recipient", "recipient", "sent_at"),
)

# Message-IDs the SMTP server accepted, written the moment it did and outside the handler's
# transaction: when that transaction then fails (a terminated backend, a crash before commit),
# the redelivered event finds the mail already gone and does not send it again.
mail_deliveries = Table(
    "mail_deliveries",
    metadata,
    Column("message_id", String(300), primary_key=True),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
)
