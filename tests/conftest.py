"""Fixtures that start or find real servers. A missing server fails loudly; nothing is skipped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from libs.events.catalog import all_topics
from libs.events.clock import SystemClock
from libs.events.store import EventStore
from libs.events.types import CATALOG
from libs.platform.access import create_api_key
from libs.platform.database import make_engine
from services import migrations
from services.embedded import embedded_app
from services.platform import Platform
from tests.support.desk import desk_settings, open_platform
from tests.support.kafka_broker import KafkaBroker
from tests.support.servers import Dovecot, PostgresDatabase, SmtpSink


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with PostgresDatabase(log_dir=tmp_path) as database:
        yield database.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:8]}.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on both dialects (one store, two dialects, one contract)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine, CATALOG, SystemClock())


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """The embedded desk (SQLite in tmp_path), migrated and seeded. A module that runs on both
    dialects overrides it with `open_platform(desk_settings(tmp_path, database_url))`."""
    with open_platform(desk_settings(tmp_path)) as platform:
        yield platform


@pytest.fixture
def client(platform: Platform) -> FlaskClient:
    """The HTTP API of `platform` (the module's own where it overrides that fixture)."""
    return embedded_app(platform).test_client()


@pytest.fixture
def api_key(platform: Platform) -> str:
    """An API key for requests from 127.0.0.1, the test client's address."""
    return create_api_key(platform.store, ["127.0.0.1"])[1]


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


ALL_TOPICS = all_topics()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A fresh Apache Kafka node per test, with every topic: topics and groups never leak. Its
    data lives in tmp_path, so it survives kill -9 and restart like a production broker."""
    kafka = KafkaBroker(log_dir=tmp_path)
    kafka.start()
    try:
        kafka.create_topics(ALL_TOPICS, partitions=3)
        yield kafka
    finally:
        kafka.discard()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One real IMAP server for the session; tests isolate themselves by uuid-named accounts."""
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.stop()
