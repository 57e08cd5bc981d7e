"""The composition root: the only place that builds adapters (engine, store, broker clients,
mailer) from settings. Nothing is wired at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from libs.events.clock import Clock, SystemClock
from libs.events.store import EventStore
from libs.events.types import CATALOG
from libs.platform.database import make_engine, reading
from libs.platform.settings import Settings
from libs.platform.throttle import FailureLedger, Policy

if TYPE_CHECKING:
    from flask import Flask


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    store: EventStore
    clock: Clock
    # name -> reason: workers that stopped themselves (reported by /readyz)
    failures: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Platform:
        clock = clock or SystemClock()
        engine = make_engine(settings.database_url)
        return cls(settings, engine, EventStore(engine, CATALOG, clock), clock)

    def close(self) -> None:
        self.engine.dispose()

    def auth_ledger(self) -> FailureLedger:
        """Failed authentications per client address, for one HTTP app (RELIABILITY.md S12)."""
        s = self.settings
        policy = Policy(
            s.auth_failure_limit, s.auth_failure_window_s, s.auth_lockout_s, s.auth_lockout_max_s
        )
        return FailureLedger(policy, self.clock, s.auth_tracked_addresses)

    def readiness(self) -> dict[str, Any]:
        checks = {
            "database": self._database,
            "migrations": self._migrations,
            "workers": self._workers,
        }
        if self.settings.backend == "kafka":
            checks["broker"] = self._broker
        return checks

    def _database(self) -> str | None:
        with reading(self.engine) as conn:
            conn.execute(text("SELECT 1"))
        return None

    def _migrations(self) -> str | None:
        from services import migrations  # alembic: ~0.1 s that `deskstream pipe` never needs

        return migrations.pending(self.engine)

    def _workers(self) -> str | None:
        return "; ".join(f"{k}: {v}" for k, v in self.failures.items()) or None

    def _broker(self) -> str | None:
        from libs.events.kafka import broker_reachable

        return None if broker_reachable(self.settings.kafka_bootstrap) else "broker unreachable"

    def kafka_producer(self) -> Any:
        from libs.events.kafka import make_producer

        return make_producer(
            self.settings.kafka_bootstrap, idempotent=self.settings.kafka_idempotence
        )

    def kafka_consumer(self, group: str) -> Any:
        from kafka import KafkaConsumer

        from libs.events.kafka import consumer_options

        return KafkaConsumer(
            **consumer_options(
                self.settings.kafka_bootstrap, group, self.settings.kafka_fetch_max_wait_ms
            )
        )


def install(app: Flask, platform: Platform) -> None:
    # Flask is imported by the HTTP entrypoints; the CLI's one-shot commands do without it.
    from libs.platform.auth_guard import install_auth_guard

    app.extensions["deskstream"] = platform
    install_auth_guard(app, platform.auth_ledger())


def current_platform() -> Platform:
    from flask import current_app

    platform: Platform = current_app.extensions["deskstream"]
    return platform
