"""Tables the backbone owns. Service tables live with their services; Alembic sees all of them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Position = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")

events = Table(
    "events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("data", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    # The optimistic-concurrency guard: one event per (stream, version).
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    # Config readers ask for every stream of a kind (`stream_id LIKE 'config-department-%'`);
    # PostgreSQL uses an index for a prefix LIKE only with pattern ops (or the C collation), so
    # without this, email intake scanned the whole log for each message.
    Index(
        "ix_events_stream_prefix",
        "stream_id",
        postgresql_ops={"stream_id": "varchar_pattern_ops"},
    ),
)

# Where a reader of the store (embedded subscription, relay) has got to.
subscription_checkpoints = Table(
    "subscription_checkpoints",
    metadata,
    Column("subscription", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The last stream version each subscription applied: dedupes redelivery, holds out-of-order ones.
subscription_streams = Table(
    "subscription_streams",
    metadata,
    Column("subscription", String(100), primary_key=True),
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Embedded backend's dead-letter queue (Kafka mode uses `<topic>.dlq`, and records here too).
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("subscription", String(100), nullable=False),
    Column("event_id", String(36), nullable=True),
    Column("stream_id", String(200), nullable=True),
    Column("version", Integer, nullable=True),
    Column("type", String(100), nullable=True),
    Column("origin", String(200), nullable=False),  # position N, or topic/partition/offset
    Column("error", Text, nullable=False),
    Column("payload", Text, nullable=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Index("ix_dead_letters_subscription", "subscription"),
)
