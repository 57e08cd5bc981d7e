"""merge and link in the query projection; agents' role permissions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
# After 0005 (which revises 0003 and was written alongside): one line of revisions, one head.
down_revision = "0004"
branch_labels = None
depends_on = None

# The default role as of this revision (libs.platform.access.DEFAULT_PERMISSIONS): every agent
# defined so far was defined with no permissions.
DEFAULT_PERMISSIONS = ["ticket.assign", "ticket.release", "ticket.transfer"]


def upgrade() -> None:
    op.add_column("agents", sa.Column("permissions", sa.JSON(), nullable=True))
    agents = sa.table("agents", sa.column("permissions", sa.JSON()))
    op.execute(agents.update().values(permissions=DEFAULT_PERMISSIONS))

    op.add_column("tickets", sa.Column("merged_into", sa.String(length=20), nullable=True))
    op.add_column("tickets", sa.Column("merge_mode", sa.String(length=20), nullable=True))
    op.add_column(
        "tickets",
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("tickets", sa.Column("links", sa.JSON(), nullable=True))
    tickets = sa.table("tickets", sa.column("links", sa.JSON()))
    op.execute(tickets.update().values(links=[]))
    op.create_index("ix_tickets_merged_into", "tickets", ["merged_into"])


def downgrade() -> None:
    op.drop_index("ix_tickets_merged_into", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        for column in ("links", "deleted", "merge_mode", "merged_into"):
            batch.drop_column(column)
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("permissions")
