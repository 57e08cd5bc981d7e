"""An in-process desk for tests: a Platform migrated and seeded as `deskstream migrate` leaves
it (department 1, help topic 1, SLA plan 1). The fixtures in tests/conftest.py build on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from libs.events.clock import Clock
from libs.events.embedded import EmbeddedSubscriber
from libs.platform.settings import Settings
from services import migrations
from services.intake.config import seed_defaults
from services.platform import Platform
from services.workers import WORKER_SERVICES, subscription_for


def desk_settings(data_dir: Path, database_url: str | None = None, **changes: Any) -> Settings:
    """Settings rooted at `data_dir`: the embedded mode's SQLite file in it, or `database_url`."""
    settings = Settings().with_data_dir(data_dir)
    if database_url is not None:
        changes["database_url"] = database_url
    return replace(settings, **changes)


def build_platform(settings: Settings, clock: Clock | None = None) -> Platform:
    """A migrated, seeded Platform; the caller closes it."""
    platform = Platform.build(settings, clock)
    migrations.upgrade(platform.engine)
    seed_defaults(platform.store)
    return platform


@contextmanager
def open_platform(settings: Settings, clock: Clock | None = None) -> Iterator[Platform]:
    """`build_platform` for the length of a with block (a fixture's yield)."""
    platform = build_platform(settings, clock)
    try:
        yield platform
    finally:
        platform.close()


def pipeline(platform: Platform) -> list[EmbeddedSubscriber]:
    """routing, sla, notify and query as embedded subscribers, assembled as `deskstream run`
    assembles them (notify mails to the settings' SMTP URL, else the maildrop)."""
    return [
        EmbeddedSubscriber(subscription_for(platform, service), platform.store, platform.clock)
        for service in WORKER_SERVICES
    ]


def settle(subscribers: list[EmbeddedSubscriber]) -> None:
    """Run every subscriber until none has anything left (handlers append more events)."""
    while sum(s.run_until_idle() for s in subscribers):
        pass
