"""The projection tables analysts query (docs/projections.md)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from libs.events.tables import metadata

tickets = Table(
    "tickets",
    metadata,
    Column("ticket_id", String(36), primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("stream_id", String(200), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("subject", String(255), nullable=False),
    Column("status", String(40), nullable=False),
    Column("priority", String(20), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("requester_email", String(254), nullable=False),
    Column("requester_name", String(200), nullable=True),
    Column("department_id", Integer, nullable=True),
    Column("help_topic_id", Integer, nullable=True),
    Column("agent_id", Integer, nullable=True),
    Column("team_id", Integer, nullable=True),
    Column("sla_plan_id", Integer, nullable=True),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("overdue", Boolean, nullable=False),
    Column("rejected", Boolean, nullable=False),
    Column("collaborators", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Merge and link (0004): a merged child names its parent; the parent finds its children.
    Column("merged_into", String(20), nullable=True, index=True),
    Column("merge_mode", String(20), nullable=True),
    Column("deleted", Boolean, nullable=False, server_default=false()),
    Column("links", JSON, nullable=True),
    # Custom statuses (0006): the status's state (open, closed, archived, deleted); queues and
    # SLA go by it, whatever the status is called.
    Column("state", String(20), nullable=False, server_default="open"),
    Index("ix_tickets_queue", "status", "department_id", "created_at"),
    Index("ix_tickets_state_queue", "state", "department_id", "created_at"),
)

thread_entries = Table(
    "thread_entries",
    metadata,
    Column("entry_id", String(36), primary_key=True),
    Column("ticket_id", String(36), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("author_kind", String(20), nullable=False),
    Column("author_id", Integer, nullable=True),
    Column("author_name", String(200), nullable=True),
    Column("author_email", String(254), nullable=True),
    Column("body", Text, nullable=False),
    Column("body_html", Text, nullable=True),
    Column("attachments", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Names for the read API, from config events.
query_names = Table(
    "query_names",
    metadata,
    Column(
        "thing", String(20), primary_key=True
    ),  # department | help-topic | sla-plan | agent | team
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
)
