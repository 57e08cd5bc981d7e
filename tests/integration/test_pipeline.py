"""The whole pipeline in-process on one store (both dialects): intake -> routing -> sla ->
notify -> query, with an injected clock for the overdue timer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from libs.events.clock import FakeClock
from libs.events.embedded import EmbeddedSubscriber
from libs.events.store import EventStore
from libs.events.types import CATALOG
from libs.platform.access import create_agent
from libs.platform.database import reading
from libs.platform.settings import Settings
from services.intake.config import seed_defaults
from services.intake.domain.tickets import OpenTicket, Requester
from services.intake.handlers import open_ticket
from services.notify.adapters.mail import MaildropMailer
from services.notify.handlers import NotifyHandlers
from services.query import handlers as query_handlers
from services.query import readers
from services.routing import handlers as routing_handlers
from services.sla import handlers as sla_handlers
from services.sla.timer import OverdueTimer

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def desk(engine: Engine, clock: FakeClock, tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(engine, CATALOG, clock)
    seed_defaults(store)
    yield store


def subscribers(store: EventStore, maildrop: Path) -> list[EmbeddedSubscriber]:
    settings = Settings()
    notify = NotifyHandlers(
        MaildropMailer(maildrop),
        settings.helpdesk_email,
        settings.helpdesk_name,
        settings.secret_key,
        autoresponse_window_s=settings.autoresponse_window_s,
    )
    subscriptions = [
        routing_handlers.subscription(),
        sla_handlers.subscription(),
        notify.subscription(),
        query_handlers.subscription(),
    ]
    return [EmbeddedSubscriber(s, store, store.clock) for s in subscriptions]


def settle(subs: list[EmbeddedSubscriber]) -> None:
    while sum(s.run_until_idle() for s in subs):
        pass


def new_ticket(store: EventStore) -> str:
    command = OpenTicket(
        subject="VPN down",
        body="since 9am",
        requester=Requester("bo@example.com", "Bo"),
        channel="api",
    )
    metadata = {"traceparent": TRACEPARENT, "actor": "test"}
    return open_ticket(store, command, max_open_tickets=0, metadata=metadata)


def test_events_carry_causation_correlation_and_trace(desk: EventStore, tmp_path: Path) -> None:
    subs = subscribers(desk, tmp_path / "maildrop")
    new_ticket(desk)
    settle(subs)
    stream = next(e.stream_id for e in desk.read_all(0, 100) if e.type == "TicketCreated")
    created, routed, sla = desk.read_stream(stream)
    assert [created.type, routed.type, sla.type] == ["TicketCreated", "TicketRouted", "SlaApplied"]
    assert routed.metadata["causation_id"] == str(created.event_id)
    assert sla.metadata["causation_id"] == str(routed.event_id)
    assert (
        routed.metadata["correlation_id"] == sla.metadata["correlation_id"] == str(created.event_id)
    )
    assert sla.metadata["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    sent = [e for e in desk.read_all(0, 100) if e.type == "NotificationSent"]
    assert len(sent) == 1 and sent[0].metadata["correlation_id"] == str(created.event_id)
    assert len(list((tmp_path / "maildrop").glob("*.eml"))) == 1


def test_overdue_is_marked_once_per_due_date(
    desk: EventStore, clock: FakeClock, tmp_path: Path
) -> None:
    subs = subscribers(desk, tmp_path / "maildrop")
    number = new_ticket(desk)
    settle(subs)
    timers = [OverdueTimer(desk, clock), OverdueTimer(desk, clock)]  # two replicas
    clock.advance(timedelta(hours=17, minutes=59))
    assert sum(t.run_once() for t in timers) == 0
    clock.advance(timedelta(minutes=2))
    assert sum(t.run_once() for t in timers) == 1
    clock.advance(timedelta(hours=5))
    assert sum(t.run_once() for t in timers) == 0
    settle(subs)
    overdue = [e for e in desk.read_all(0, 200) if e.type == "TicketOverdue"]
    assert len(overdue) == 1
    _, admin_token = create_agent(
        desk, email="root@example.com", name="Root", password=None, admin=True
    )
    with reading(desk.engine) as conn:
        from libs.platform.access import verify_agent_token

        admin = verify_agent_token(conn, admin_token)
        assert admin is not None
        ticket = readers.get_ticket(conn, number, admin)
    assert ticket["sla"]["overdue"] is True


def test_closed_ticket_never_goes_overdue(
    desk: EventStore, clock: FakeClock, tmp_path: Path
) -> None:
    from libs.events import ANY_VERSION, NewEvent

    subs = subscribers(desk, tmp_path / "maildrop")
    new_ticket(desk)
    settle(subs)
    stream = next(e.stream_id for e in desk.read_all(0, 100) if e.type == "TicketCreated")
    desk.append(
        stream,
        [NewEvent("TicketStatusChanged", {"status": "closed", "by": {"kind": "agent", "id": 1}})],
        ANY_VERSION,
    )
    settle(subs)
    clock.advance(timedelta(days=2))
    assert OverdueTimer(desk, clock).run_once() == 0


def test_replayed_query_projection_equals_the_live_one(desk: EventStore, tmp_path: Path) -> None:
    from services.platform import Platform
    from services.replay import replay

    subs = subscribers(desk, tmp_path / "maildrop")
    numbers = [new_ticket(desk) for _ in range(3)]
    settle(subs)
    _, token = create_agent(desk, email="root@example.com", name="Root", password=None, admin=True)
    settle(subs)

    def snapshot() -> list[dict[str, object]]:
        from libs.platform.access import verify_agent_token

        with reading(desk.engine) as conn:
            agent = verify_agent_token(conn, token)
            assert agent is not None
            return [readers.get_ticket(conn, n, agent) for n in numbers]

    live = snapshot()
    platform = Platform(Settings(), desk.engine, desk, desk.clock)
    assert replay(platform, "query") > 0
    assert snapshot() == live
    # One autoresponse (Bo's other two tickets fall in the autoresponse window), and replay
    # never re-sends mail.
    assert len(list((tmp_path / "maildrop").glob("*.eml"))) == 1


def test_agents_see_only_their_departments_tickets(desk: EventStore, tmp_path: Path) -> None:
    from libs.platform.access import verify_agent_token
    from libs.platform.errors import NotFound

    subs = subscribers(desk, tmp_path / "maildrop")
    number = new_ticket(desk)  # routed to department 1 (Support)
    _, outsider_token = create_agent(
        desk, email="o@example.com", name="O", password=None, department_id=2
    )
    _, member_token = create_agent(
        desk, email="m@example.com", name="M", password=None, department_id=1
    )
    settle(subs)
    with reading(desk.engine) as conn:
        outsider = verify_agent_token(conn, outsider_token)
        member = verify_agent_token(conn, member_token)
        assert outsider is not None and member is not None
        with pytest.raises(NotFound):
            readers.get_ticket(conn, number, outsider)
        with pytest.raises(NotFound):
            readers.ticket_events(conn, desk, number, outsider)
        assert (
            readers.queue(conn, "open", outsider, page=1, per_page=50, sort="-created")["total"]
            == 0
        )
        assert readers.get_ticket(conn, number, member)["number"] == number
        assert (
            readers.queue(conn, "open", member, page=1, per_page=50, sort="-created")["total"] == 1
        )


def test_a_run_of_dead_letters_stops_the_subscription(desk: EventStore) -> None:
    from libs.events import ANY_VERSION, NewEvent
    from libs.events.dead_letters import TableDeadLetters
    from libs.events.subscription import Subscription, SubscriptionProcessor, SubscriptionStopped

    def broken(_event: object, _uow: object) -> None:
        raise RuntimeError("bad deploy")

    for _ in range(3):
        desk.append(
            f"ticket-{uuid.uuid4()}",
            [NewEvent("TicketStatusChanged", {"status": "open", "by": {"kind": "system"}})],
            ANY_VERSION,
        )
    events = [e for e in desk.read_all(0, 100) if e.type == "TicketStatusChanged"]
    processor = SubscriptionProcessor(
        Subscription("broken", {"TicketStatusChanged": broken}),
        desk,
        TableDeadLetters(desk.clock),
        desk.clock,
        max_attempts=1,
        max_consecutive_dead_letters=3,
    )
    processor.process(events[:2])
    assert processor.stopped_reason is None
    with pytest.raises(SubscriptionStopped):
        processor.process(events[2:])
    assert "3 dead letters in a row" in (processor.stopped_reason or "")
