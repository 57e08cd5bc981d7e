"""custom ticket statuses: each ticket's state in the query projection

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
# Written alongside 0007 (which revises 0005): chained after it, so there is one head.
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tickets",
        sa.Column("state", sa.String(length=20), nullable=False, server_default="open"),
    )
    # Until now only the built-in statuses existed: each one's state (and a rejected ticket's,
    # which leaves every queue, closed).
    tickets = sa.table("tickets", sa.column("status", sa.String()), sa.column("state", sa.String()))
    op.execute(
        tickets.update().values(
            state=sa.case(
                (tickets.c.status.in_(("open", "archived", "deleted")), tickets.c.status),
                else_="closed",
            )
        )
    )
    op.create_index("ix_tickets_state_queue", "tickets", ["state", "department_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_state_queue", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("state")
