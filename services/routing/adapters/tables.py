"""routing's own state, built from config events."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table

from libs.events.tables import metadata

routing_departments = Table(
    "routing_departments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("status", String(20), nullable=False),
    Column("is_default", Boolean, nullable=False),
)

routing_help_topics = Table(
    "routing_help_topics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("department_id", Integer, nullable=True),
    Column("priority", String(20), nullable=True),
    Column("sla_plan_id", Integer, nullable=True),
    Column("status", String(20), nullable=False),
    Column("auto_assign_agent_id", Integer, nullable=True),
    Column("auto_assign_team_id", Integer, nullable=True),
)
