"""The overdue timer as a real process (`deskstream serve sla`), SIGKILLed and restarted:
tickets that fell due while it was down are marked at once, and no ticket is marked twice."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from libs.events.clock import SystemClock
from libs.events.embedded import EmbeddedSubscriber
from libs.events.tables import events
from libs.platform.configuration import define
from libs.platform.database import as_utc, reading
from libs.platform.settings import Settings
from services.intake.config import seed_defaults
from services.intake.domain.tickets import OpenTicket, Requester
from services.intake.handlers import open_ticket
from services.platform import Platform
from services.routing import handlers as routing_handlers
from services.sla import handlers as sla_handlers
from tests.support.kafka_broker import KafkaBroker
from tests.support.platform import Deployment, base_env, deskstream

GRACE_HOURS = 0.002  # 7.2 seconds


def test_a_killed_timer_catches_up_at_restart_and_marks_once(
    postgres_url: str, broker: KafkaBroker, tmp_path: Path
) -> None:
    env = base_env(database_url=postgres_url, kafka_bootstrap=broker.bootstrap)
    deskstream("migrate", env=env, cwd=tmp_path)
    settings = replace(Settings().with_data_dir(tmp_path), database_url=postgres_url)
    platform = Platform.build(settings, SystemClock())
    store = platform.store
    seed_defaults(store)
    with store.transaction() as conn:
        define(store, "sla-plan", {"id": 2, "name": "Blink", "grace_hours": GRACE_HOURS}, conn=conn)
        topic = {"id": 2, "name": "Blink", "department_id": 1, "sla_plan_id": 2}
        define(store, "help-topic", topic, conn=conn)
    # routing and sla's subscription run here; the process under test runs the timer.
    subscribers = [
        EmbeddedSubscriber(s, store, store.clock)
        for s in (routing_handlers.subscription(), sla_handlers.subscription())
    ]

    def wave(count: int) -> list[str]:
        numbers = [
            open_ticket(
                store,
                OpenTicket("Down", "Help", Requester("ada@example.com"), "api", help_topic_id=2),
                max_open_tickets=0,
            )
            for _ in range(count)
        ]
        while sum(s.run_until_idle() for s in subscribers):
            pass
        return numbers

    def overdue_count() -> int:
        with reading(platform.engine) as conn:
            return int(
                conn.execute(
                    select(func.count()).where(events.c.type == "TicketOverdue")
                ).scalar_one()
            )

    def wait_for(count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while overdue_count() < count:
            assert time.monotonic() < deadline, f"{overdue_count()} of {count} marked"
            time.sleep(0.05)

    deployment = Deployment(env, tmp_path)
    try:
        deployment.start("sla", ["serve", "sla"])
        wave(10)
        time.sleep(3)
        second_wave_at = time.monotonic()
        wave(10)  # falls due while the timer is down
        wait_for(10)
        deployment.processes["sla"].kill()
        time.sleep(max(0.0, second_wave_at + GRACE_HOURS * 3600 + 0.5 - time.monotonic()))
        assert overdue_count() == 10  # the second wave is overdue now, and unmarked
        wave(10)  # falls due a few seconds after the restart
        restarted_at = datetime.now(UTC)
        deployment.start("sla", ["serve", "sla"])
        wait_for(20, timeout=3)  # at once: the first run after the start finds them
        wait_for(30)
        time.sleep(1)
        with reading(platform.engine) as conn:
            marks = conn.execute(
                select(events.c.stream_id, events.c.time, events.c.data).where(
                    events.c.type == "TicketOverdue"
                )
            ).all()
    finally:
        deployment.stop()
        platform.close()
    assert len(marks) == len({m.stream_id for m in marks}) == 30  # once each
    late = sorted(
        (as_utc(m.time) - datetime.fromisoformat(m.data["due_at"])).total_seconds()
        for m in marks
        if as_utc(m.time) > restarted_at
    )
    # The third wave fell due while the timer ran: marked within a second of the due time.
    assert len(late) == 20 and late[9] < 1.0, late
