"""A help desk for routing and SLA tests: the HTTP API in-process (config and tickets), routing,
sla and query consuming over either backend, and a clock the test moves."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from kafka import KafkaConsumer
from sqlalchemy import and_, func, or_, select

from libs.events.clock import FakeClock
from libs.events.embedded import EmbeddedSubscriber
from libs.events.envelope import RecordedEvent
from libs.events.kafka import (
    KafkaSubscriber,
    Relay,
    RelayWorker,
    consumer_options,
    make_producer,
)
from libs.events.runner import Runner
from libs.events.tables import events, subscription_streams
from libs.platform.access import create_agent, create_api_key
from libs.platform.database import reading
from services.embedded import embedded_app
from services.query import handlers as query_handlers
from services.routing import handlers as routing_handlers
from services.sla import handlers as sla_handlers
from services.sla.timer import OverdueTimer
from tests.support.desk import build_platform, desk_settings
from tests.support.kafka_broker import KafkaBroker

# Monday 5 January 2026, 09:00 UTC (10:00 in Berlin).
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

SUBSCRIPTIONS: dict[str, Callable[[], Any]] = {
    "routing": routing_handlers.subscription,
    "sla": sla_handlers.subscription,
    "query": query_handlers.subscription,
}


class Desk:
    def __init__(self, backend: str, database_url: str, tmp_path: Path, broker: KafkaBroker | None):
        self.backend = backend
        self.broker = broker
        self.clock = FakeClock(START)
        self.platform = build_platform(desk_settings(tmp_path, database_url), self.clock)
        self.client: FlaskClient = embedded_app(self.platform).test_client()
        _, self.token = create_agent(
            self.platform.store, email="root@example.com", name="Root", password=None, admin=True
        )
        self.api_key = create_api_key(self.platform.store, [])[1]
        self.relay = Relay(self.platform.store, self._producer) if broker else None
        self.subscribers = {name: self._subscriber(name) for name in SUBSCRIPTIONS}
        self.timer = OverdueTimer(self.platform.store, self.clock)
        self.runner = None
        self._start_runner()

    # -- driving ------------------------------------------------------------------------------

    def _producer(self) -> Any:
        assert self.broker is not None
        return make_producer([self.broker.bootstrap])

    def _subscriber(self, name: str) -> Any:
        subscription = SUBSCRIPTIONS[name]()
        store = self.platform.store
        if self.broker is None:
            return EmbeddedSubscriber(subscription, store, self.clock, batch_size=100)
        options = {
            **consumer_options([self.broker.bootstrap], f"{name}-{uuid.uuid4().hex[:6]}", 50),
            "session_timeout_ms": 6000,
            "max_poll_interval_ms": 10000,
        }
        return KafkaSubscriber(
            subscription, store, self.clock, lambda: KafkaConsumer(**options), self._producer
        )

    def restart(self, name: str) -> None:
        """Stop a service's consumer and start a new one (its state lives in the database)."""
        self._stop_runner()
        self.subscribers[name].close()
        self.subscribers[name] = self._subscriber(name)
        self._start_runner()

    def _start_runner(self) -> None:
        # On Kafka each consumer runs in its own thread, as in a deployment: kafka-python makes
        # progress (group joins, fetches) only while its consumer is polled.
        if self.relay is not None:
            workers = [RelayWorker(self.relay), *self.subscribers.values()]
            self.runner: Runner | None = Runner(workers, poll_interval=0.05, idle_wait=0.1)
            self.runner.start()

    def _stop_runner(self) -> None:
        if self.relay is not None and self.runner is not None:
            self.runner.stop()
            self.runner = None

    def settle(self, timeout: float = 60) -> None:
        """Deliver until every consumer has applied every ticket and config event in the store
        (including the events the consumers append meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.relay is None:
                while sum(s.run_until_idle() for s in self.subscribers.values()):
                    pass
            else:
                time.sleep(0.2)
            if self._caught_up():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"delivery did not converge: {self._behind()}")

    def _caught_up(self) -> bool:
        return not self._behind()

    def _behind(self) -> list[tuple[str, str, int, int | None]]:
        """(subscription, stream, head version, applied version) for streams not yet applied."""
        e, t = events.c, subscription_streams.c
        heads = (
            select(e.stream_id, func.max(e.version).label("version"))
            .where(or_(e.stream_id.like("ticket-%"), e.stream_id.like("config-%")))
            .group_by(e.stream_id)
            .subquery()
        )
        behind = []
        with reading(self.platform.engine) as conn:
            for name in SUBSCRIPTIONS:
                rows = conn.execute(
                    select(heads.c.stream_id, heads.c.version, t.version)
                    .select_from(heads)
                    .outerjoin(
                        subscription_streams,
                        and_(t.subscription == name, t.stream_id == heads.c.stream_id),
                    )
                    .where(or_(t.version.is_(None), t.version < heads.c.version))
                ).all()
                behind += [(name, *row) for row in rows]
        return behind

    def close(self) -> None:
        self._stop_runner()
        for subscriber in self.subscribers.values():
            subscriber.close()
        if self.relay:
            self.relay.close()
        self.platform.close()

    # -- the API ------------------------------------------------------------------------------

    def define(self, collection: str, body: dict[str, Any]) -> int:
        response = self.client.post(
            f"/api/v1/{collection}", json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 201, response.text
        return int(response.json["id"])

    def replace(self, collection: str, thing_id: int, body: dict[str, Any]) -> None:
        response = self.client.put(
            f"/api/v1/{collection}/{thing_id}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text

    def agent(self, name: str, department_id: int, **extra: Any) -> int:
        body = {
            "email": f"{name.lower()}@desk.example",
            "name": name,
            "username": name.lower(),
            "password": "correct horse battery",
            "department_id": department_id,
            **extra,
        }
        return self.define("agents", body)

    def open_ticket(self, email: str = "ada@example.com", **fields: Any) -> str:
        body = {"name": "Ada", "email": email, "subject": "Help", "message": "Please", **fields}
        response = self.client.post(
            "/api/tickets.json", json=body, headers={"X-API-Key": self.api_key}
        )
        assert response.status_code == 201, response.text
        return response.text

    def command(self, number: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(
            f"/api/v1/tickets/{number}/{action}",
            json={"expected_version": self.stream_version(number), **body},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json)

    # -- what happened ------------------------------------------------------------------------

    def ticket(self, number: str) -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/tickets/{number}", headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200, response.text
        return dict(response.json)

    def stream(self, number: str) -> list[RecordedEvent]:
        created = next(
            e
            for e in self.platform.store.read_all(0, 100_000)
            if e.type == "TicketCreated" and e.data["number"] == number
        )
        return self.platform.store.read_stream(created.stream_id)

    def stream_version(self, number: str) -> int:
        return self.stream(number)[-1].version

    def events(self, number: str, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.stream(number) if e.type == event_type]
