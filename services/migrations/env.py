"""Alembic environment: the engine comes from the caller (libs.platform.migrations)."""

from __future__ import annotations

from alembic import context

from services.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` CLI use during development
    from libs.platform.database import make_engine
    from libs.platform.settings import Settings

    engine = make_engine(Settings.from_env().database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
