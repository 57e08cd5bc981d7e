"""Admin configuration commands and the first start's default help desk."""

from __future__ import annotations

from sqlalchemy import func, select

from libs.events.store import EventStore
from libs.events.tables import events
from libs.platform.configuration import define


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
