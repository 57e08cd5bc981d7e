"""Rebuild a service's state from position 0: clear its tables and tracking, then catch up from
the store with the embedded subscriber (the same code path in either backend).

Services that append events (routing, sla) replay with their appends dropped: every event they
decide was appended the first time and is read back from the log in its place.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete

from libs.events.embedded import EmbeddedSubscriber
from libs.events.tables import subscription_checkpoints, subscription_streams
from services.notify.adapters import tables as notify_tables
from services.platform import Platform
from services.query.adapters import tables as query_tables
from services.routing.adapters import tables as routing_tables
from services.sla.adapters import tables as sla_tables
from services.workers import subscription_for

TABLES = {
    "query": [query_tables.tickets, query_tables.thread_entries, query_tables.query_names],
    "routing": [
        routing_tables.routing_departments,
        routing_tables.routing_help_topics,
        routing_tables.routing_filters,
        routing_tables.routing_agents,
        routing_tables.routing_templates,
        routing_tables.routing_tickets,
        routing_tables.routing_rotations,
    ],
    "sla": [
        sla_tables.sla_plans,
        sla_tables.sla_schedules,
        sla_tables.sla_departments,
        sla_tables.sla_tickets,
    ],
    # notifications_sent is kept: a rebuild must never resend mail.
    "notify": [notify_tables.notify_tickets, notify_tables.notify_departments],
}


def replay(platform: Platform, projection: str) -> int:
    subscription = dataclasses.replace(subscription_for(platform, projection), replaying=True)
    with platform.store.transaction() as conn:
        for table in TABLES[projection]:
            conn.execute(delete(table))
        for table in (subscription_streams, subscription_checkpoints):
            conn.execute(delete(table).where(table.c.subscription == subscription.name))
    return EmbeddedSubscriber(subscription, platform.store, platform.clock).run_until_idle()
