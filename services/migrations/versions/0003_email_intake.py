"""email intake: received Message-IDs and tickets by requester

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_messages",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("entry_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_email_messages_ticket_id", "email_messages", ["ticket_id"])
    op.create_table(
        "requester_tickets",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("email", "ticket_id"),
    )


def downgrade() -> None:
    op.drop_table("requester_tickets")
    op.drop_index("ix_email_messages_ticket_id", table_name="email_messages")
    op.drop_table("email_messages")
