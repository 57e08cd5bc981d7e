"""sla's own state, built from events."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, Index, Integer, String, Table

from libs.events.tables import metadata

sla_plans = Table(
    "sla_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("grace_hours", Float, nullable=False),
    Column("schedule_id", Integer, nullable=True),
    Column("transient", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
)

sla_departments = Table(
    "sla_departments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sla_plan_id", Integer, nullable=True),
)

sla_tickets = Table(
    "sla_tickets",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("sla_plan_id", Integer, nullable=True),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("is_open", Boolean, nullable=False),
    Column("overdue", Boolean, nullable=False),
    # The timer asks for the earliest due open tickets not yet marked: an index range, no scan.
    Index("ix_sla_tickets_timer", "is_open", "overdue", "due_at"),
)
