"""sla's own state, built from events."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    and_,
    false,
    true,
)

from libs.events.tables import metadata

sla_plans = Table(
    "sla_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("grace_hours", Float, nullable=False),
    Column("schedule_id", Integer, nullable=True),
    Column("transient", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("first_response_hours", Float, nullable=True),
    Column("alerts_enabled", Boolean, nullable=False, server_default=true()),
)

sla_schedules = Table(
    "sla_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),  # its definition's: parsed once per event
    Column("definition", JSON, nullable=False),  # the ScheduleDefined data
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
    Column("clock_start", DateTime(timezone=True), nullable=True),  # created or last reopened
    Column("responded", Boolean, nullable=False, server_default=false()),
    Column("target", String(20), nullable=True),
)

# The timer asks for the earliest due dates not yet marked among open tickets: a range over a
# partial index that holds only those, however many tickets are open or closed.
Index(
    "ix_sla_tickets_pending",
    sla_tickets.c.due_at,
    postgresql_where=and_(sla_tickets.c.is_open, ~sla_tickets.c.overdue),
    sqlite_where=and_(sla_tickets.c.is_open, ~sla_tickets.c.overdue),
)
