"""Alembic for every service's tables, driven from code: `deskstream migrate` upgrades; /readyz reports pending revisions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPTS = Path(__file__).parent


def config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    command.upgrade(config(engine), "head")


def pending(engine: Engine) -> str | None:
    """None when the database is at head, else what is missing."""
    heads = set(ScriptDirectory.from_config(config()).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return (
        None
        if current == heads
        else f"database at {sorted(current) or 'nothing'}, code at {sorted(heads)}"
    )
