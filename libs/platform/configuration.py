"""Defining configuration: each change is a `<Thing>Defined` event with the thing's full state
on its `config-<thing>-<id>` stream. The one way config enters the log (CLI, admin API, seeds)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from libs.events.envelope import NewEvent
from libs.events.store import EventStore
from libs.events.tables import events
from libs.events.types.config import CONFIG_TYPES, config_stream_id


def next_id(conn: Connection, thing: str) -> int:
    prefix = f"config-{thing}-"
    streams = conn.execute(
        select(events.c.stream_id).where(
            events.c.stream_id.like(f"{prefix}%"), events.c.version == 1
        )
    ).scalars()
    return max((int(s.removeprefix(prefix)) for s in streams), default=0) + 1


def define(
    store: EventStore,
    thing: str,
    data: dict[str, Any],
    *,
    conn: Connection,
    expected_version: int | None = None,
    actor: str = "system",
) -> int:
    """Append the thing's full new definition; returns the stream's new version."""
    name = CONFIG_TYPES[thing][0]
    stream = config_stream_id(thing, data["id"])
    version = (
        store.stream_version(stream, conn=conn) if expected_version is None else expected_version
    )
    recorded = store.append(
        stream, [NewEvent(name, data, metadata={"actor": actor})], version, conn=conn
    )
    return recorded[-1].version
