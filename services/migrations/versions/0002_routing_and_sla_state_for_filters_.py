"""routing and sla state for filters, strategies, schedules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:24:35.784146
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_agents",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("department_ids", sa.JSON(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "routing_filters",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "routing_rotations",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("last_agent_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "routing_templates",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "routing_tickets",
        sa.Column("stream_id", sa.String(length=200), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("help_topic_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.String(length=20), nullable=True),
        sa.Column("sla_plan_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assigned_manually", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id"),
    )
    op.create_index(
        "ix_routing_tickets_load", "routing_tickets", ["agent_id", "status"], unique=False
    )
    op.create_table(
        "sla_schedules",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.add_column("routing_departments", sa.Column("auto_assign", sa.JSON(), nullable=True))
    op.add_column(
        "routing_help_topics",
        sa.Column("auto_assign_strategy", sa.String(length=20), nullable=True),
    )
    op.add_column("sla_plans", sa.Column("first_response_hours", sa.Float(), nullable=True))
    op.add_column(
        "sla_plans",
        sa.Column("alerts_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column(
        "sla_tickets", sa.Column("clock_start", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "sla_tickets",
        sa.Column("responded", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("sla_tickets", sa.Column("target", sa.String(length=20), nullable=True))
    op.drop_index(op.f("ix_sla_tickets_timer"), table_name="sla_tickets")
    op.create_index(
        "ix_sla_tickets_pending",
        "sla_tickets",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("is_open AND NOT overdue"),
        sqlite_where=sa.text("is_open AND NOT overdue"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_sla_tickets_pending",
        table_name="sla_tickets",
        postgresql_where=sa.text("is_open AND NOT overdue"),
        sqlite_where=sa.text("is_open AND NOT overdue"),
    )
    op.create_index(
        op.f("ix_sla_tickets_timer"), "sla_tickets", ["is_open", "overdue", "due_at"], unique=False
    )
    op.drop_column("sla_tickets", "target")
    op.drop_column("sla_tickets", "responded")
    op.drop_column("sla_tickets", "clock_start")
    op.drop_column("sla_plans", "alerts_enabled")
    op.drop_column("sla_plans", "first_response_hours")
    op.drop_column("routing_help_topics", "auto_assign_strategy")
    op.drop_column("routing_departments", "auto_assign")
    op.drop_table("sla_schedules")
    op.drop_index("ix_routing_tickets_load", table_name="routing_tickets")
    op.drop_table("routing_tickets")
    op.drop_table("routing_templates")
    op.drop_table("routing_rotations")
    op.drop_table("routing_filters")
    op.drop_table("routing_agents")
