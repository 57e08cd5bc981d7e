"""CloudEvents in: correlation values and the ticket they append to

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_correlations",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("correlation", sa.Text(), nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index("ix_event_correlations_ticket_id", "event_correlations", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_event_correlations_ticket_id", table_name="event_correlations")
    op.drop_table("event_correlations")
