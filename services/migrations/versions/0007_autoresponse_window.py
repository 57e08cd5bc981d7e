"""notify: index notifications_sent by recipient for the autoresponse window (mail-loop guard)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
# Written alongside 0006, which is chained after this one (0005 -> 0007 -> 0006): one head.
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_sent_recipient", "notifications_sent", ["recipient", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_sent_recipient", table_name="notifications_sent")
