"""Defining configuration: each change is a `<Thing>Defined` event with the thing's full state
on its `config-<thing>-<id>` stream. The one way config enters the log (CLI, admin API, seeds),
and the one way the command side reads a thing's current definition back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

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


def definitions(
    conn: Connection, store: EventStore, thing: str, thing_id: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """The current definitions of a kind of thing (or of one of them), as (version, data) by id:
    the latest event of each `config-<thing>-<id>` stream."""
    streams = (
        events.c.stream_id.like(f"config-{thing}-%")
        if thing_id is None
        else events.c.stream_id == config_stream_id(thing, thing_id)
    )
    latest = (
        select(events.c.stream_id, func.max(events.c.version).label("version"))
        .where(streams)
        .group_by(events.c.stream_id)
        .subquery()
    )
    rows = conn.execute(
        select(events.c.version, events.c.type, events.c.schema_version, events.c.data).join(
            latest,
            and_(events.c.stream_id == latest.c.stream_id, events.c.version == latest.c.version),
        )
    )
    found = [
        (row.version, store.catalog.upcast(row.type, row.schema_version, row.data)[1])
        for row in rows
    ]
    return sorted(found, key=lambda item: int(item[1]["id"]))
