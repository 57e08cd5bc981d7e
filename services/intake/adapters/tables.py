"""Intake's own command-side tables, written in the same transaction as the events they back."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table, Text

from libs.events.tables import metadata

# Unique human-facing numbers; the PK makes a duplicate number impossible.
ticket_numbers = Table(
    "ticket_numbers",
    metadata,
    Column("number", String(20), primary_key=True),
    Column("ticket_id", String(36), nullable=False, unique=True),
)

# A client retrying with the same Idempotency-Key gets the first ticket back, not a second one.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("ticket_number", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# Every Message-ID intake received, and the ticket it went to: a redelivered email is a
# duplicate (no effect twice), and a reply whose In-Reply-To/References names one of these
# threads into that ticket. Keyed by a digest because Message-IDs may be up to 998 bytes.
email_messages = Table(
    "email_messages",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("message_id", Text, nullable=False),
    Column("ticket_id", String(36), nullable=False, index=True),
    Column("entry_id", String(36), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

# Ticket ids by requester address, so the open-ticket limit reads only that user's streams.
requester_tickets = Table(
    "requester_tickets",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("ticket_id", String(36), primary_key=True),
)

# CloudEvents in: an event mapping's correlation value (an alert id, ...) and the ticket the
# first event with it opened; later events with the same value append there. Keyed by a digest
# because the values come from external systems, unbounded.
event_correlations = Table(
    "event_correlations",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("correlation", Text, nullable=False),
    Column("ticket_id", String(36), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
