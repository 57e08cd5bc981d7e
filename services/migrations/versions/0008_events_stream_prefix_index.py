"""events: an index for stream-id prefix lookups (config readers)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 01:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_stream_prefix",
        "events",
        ["stream_id"],
        postgresql_ops={"stream_id": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_events_stream_prefix", table_name="events")
