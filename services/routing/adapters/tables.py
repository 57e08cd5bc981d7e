"""routing's own state, built from config and ticket events (so it is right after a restart)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text

from libs.events.tables import metadata

routing_departments = Table(
    "routing_departments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("status", String(20), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("auto_assign", JSON, nullable=True),
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
    Column("auto_assign_strategy", String(20), nullable=True),
)

# The FilterDefined data, and that event's id: compiled (regexes and all) once per definition
# in-process (an event id, unlike a version, names one definition in any database).
routing_filters = Table(
    "routing_filters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("definition", JSON, nullable=False),
)

routing_agents = Table(
    "routing_agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("department_ids", JSON, nullable=False),  # primary + extended access
    Column("available", Boolean, nullable=False),  # active and not on vacation
)

routing_templates = Table(
    "routing_templates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
)

# Who owns each ticket and whether an agent chose it (routing never overrides that).
routing_tickets = Table(
    "routing_tickets",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("department_id", Integer, nullable=True),
    Column("help_topic_id", Integer, nullable=True),
    Column("priority", String(20), nullable=True),
    Column("sla_plan_id", Integer, nullable=True),
    Column("status", String(40), nullable=False),
    Column("agent_id", Integer, nullable=True),
    Column("team_id", Integer, nullable=True),
    Column("assigned_manually", Boolean, nullable=False),
    Index("ix_routing_tickets_load", "agent_id", "status"),
)

# The last agent each round-robin scope ("department-3", "help-topic-2") chose.
routing_rotations = Table(
    "routing_rotations",
    metadata,
    Column("scope", String(40), primary_key=True),
    Column("last_agent_id", Integer, nullable=False),
)
