"""Admin configuration commands: each change is a `<Thing>Defined` event with the full state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

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


def seed_defaults(store: EventStore) -> bool:
    """The first start's help desk: Support, General Inquiry, Default SLA (18 h, around the clock).
    Returns False when configuration already exists (idempotent)."""
    with store.transaction() as conn:
        store.lock_appends(conn)
        exists = conn.execute(
            select(func.count()).select_from(events).where(events.c.type == "DepartmentDefined")
        ).scalar_one()
        if exists:
            return False
        define(
            store,
            "sla-plan",
            {
                "id": 1,
                "name": "Default SLA",
                "grace_hours": 18,
                "schedule_id": None,
                "transient": False,
                "alerts_enabled": True,
                "default": True,
            },
            conn=conn,
        )
        define(
            store,
            "department",
            {
                "id": 1,
                "name": "Support",
                "status": "active",
                "sla_plan_id": 1,
                "default": True,
                "autoresponder": {"new_ticket": True, "new_message": True},
                "alert_recipients": "members_and_extended",
            },
            conn=conn,
        )
        define(
            store,
            "help-topic",
            {
                "id": 1,
                "name": "General Inquiry",
                "department_id": 1,
                "priority": "normal",
                "sla_plan_id": None,
                "auto_assign": None,
                "status": "active",
                "public": True,
            },
            conn=conn,
        )
        return True
