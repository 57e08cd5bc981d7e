"""Intake's own command-side tables, written in the same transaction as the events they back."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table

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
