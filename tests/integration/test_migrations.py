"""The migrations build exactly the tables the code declares (on both dialects)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import services.schema  # noqa: F401  (registers every service's tables)
from libs.events.tables import metadata


def test_migrated_schema_matches_the_declared_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
