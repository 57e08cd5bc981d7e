"""Routing and SLA configured through the admin API, watched through the events, on both
backends (embedded on SQLite; Kafka on PostgreSQL + a Kafka-protocol broker)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from libs.platform.database import as_utc, reading
from services.replay import replay
from services.routing.adapters.tables import routing_tickets
from services.sla.adapters.tables import sla_tickets
from services.sla.timer import OverdueTimer
from tests.integration.routing_sla_desk import START, Desk

BERLIN_OFFICE = {
    "name": "Berlin office",
    "timezone": "Europe/Berlin",
    "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-01-12"],
}


@pytest.fixture(params=["embedded", "kafka"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Desk]:
    if request.param == "embedded":
        desk = Desk("embedded", request.getfixturevalue("sqlite_url"), tmp_path, None)
    else:
        broker = request.getfixturevalue("broker")
        desk = Desk("kafka", request.getfixturevalue("postgres_url"), tmp_path, broker)
    try:
        yield desk
    finally:
        desk.close()


def test_filters_route_reject_and_business_hours_set_the_due_date(desk: Desk) -> None:
    schedule = desk.define("schedules", BERLIN_OFFICE)
    plan = desk.define(
        "sla-plans", {"name": "4 office hours", "grace_hours": 4, "schedule_id": schedule}
    )
    vip = desk.define("departments", {"name": "VIP desk"})
    vip_filter = desk.define(
        "filters",
        {
            "name": "VIP customers",
            "order": 1,
            "rules": [{"field": "email", "op": "ends_with", "value": "@VIP.example"}],
            "actions": [
                {"type": "department", "value": vip},
                {"type": "priority", "value": "high"},
                {"type": "sla_plan", "value": plan},
            ],
        },
    )
    spam_filter = desk.define(
        "filters",
        {
            "name": "No newsletters",
            "order": 2,
            "match": "any",
            "rules": [
                {"field": "subject", "op": "match", "value": r"un-?subscribe"},
                {"field": "email", "op": "starts_with", "value": "newsletter@"},
            ],
            "actions": [{"type": "reject"}],
        },
    )
    desk.settle()
    # Friday 9 January 2026, 16:00 in Berlin: one office hour left that day, then the weekend
    # and Monday's holiday; the remaining three hours run Tuesday 09:00-12:00.
    desk.clock.advance(datetime(2026, 1, 9, 15, 0, tzinfo=UTC) - START)

    vip_ticket = desk.open_ticket("bo@vip.example")
    plain_ticket = desk.open_ticket("cy@example.com")
    spam = {"name": "Ada", "email": "newsletter@shop.example", "subject": "Weekly deals"}
    refused = desk.client.post(
        "/api/tickets.json", json={**spam, "message": "Deals"}, headers={"X-API-Key": desk.api_key}
    )  # osTicket's answer to a reject filter: 403, and no ticket
    assert refused.status_code == 403, refused.text
    assert refused.text == f"Unable to create new ticket: rejected by filter {spam_filter}"
    desk.settle()

    [routed] = desk.events(vip_ticket, "TicketRouted")
    assert (routed["department_id"], routed["priority"], routed["sla_plan_id"]) == (
        vip,
        "high",
        plan,
    )
    assert routed["filter_ids"] == [vip_filter]
    [applied] = desk.events(vip_ticket, "SlaApplied")
    assert applied["due_at"] == "2026-01-13T11:00:00+00:00"  # Tuesday 12:00 in Berlin

    [routed] = desk.events(plain_ticket, "TicketRouted")
    assert (routed["department_id"], routed["filter_ids"]) == (1, [])
    [applied] = desk.events(plain_ticket, "SlaApplied")  # Default SLA: 18 h around the clock
    assert applied["due_at"] == "2026-01-10T09:00:00+00:00"

    queue = desk.client.get(
        "/api/v1/queues/open/tickets", headers={"Authorization": f"Bearer {desk.token}"}
    ).json
    numbers = {t["number"] for t in queue["tickets"]}
    assert numbers == {vip_ticket, plain_ticket}


def test_round_robin_and_fewest_open_hold_across_a_restart(desk: Desk) -> None:
    field = desk.define(
        "departments", {"name": "Field service", "auto_assign": {"strategy": "round_robin"}}
    )
    topic = desk.define("help-topics", {"name": "On-site visit", "department_id": field})
    ann = desk.agent("Ann", field)
    ben = desk.agent("Ben", field)
    desk.agent("Cat", field, on_vacation=True)
    desk.agent("Dan", 1)  # another department
    desk.settle()

    def owner(number: str) -> int:
        return int(desk.events(number, "TicketAssigned")[-1]["agent_id"])

    def next_ticket() -> str:
        # One at a time: on Kafka, tickets in different partitions may be routed in any order.
        number = desk.open_ticket(topicId=topic)
        desk.settle()
        return number

    first = [next_ticket() for _ in range(3)]
    desk.restart("routing")
    later = [next_ticket() for _ in range(2)]
    assert [owner(n) for n in first + later] == [ann, ben, ann, ben, ann]

    # Ann closes two of her three; by fewest open tickets the next two go to her, then Ben.
    desk.replace(
        "departments",
        field,
        {"name": "Field service", "auto_assign": {"strategy": "fewest_open"}},
    )
    for number in (first[0], first[2]):
        desk.command(number, "status", {"status": "closed"})
    desk.settle()
    desk.restart("routing")
    newest = [next_ticket() for _ in range(3)]
    assert [owner(n) for n in newest] == [ann, ann, ben]


def test_transfer_reroutes_without_overriding_an_agents_choice(desk: Desk) -> None:
    transient = desk.define("sla-plans", {"name": "Triage", "grace_hours": 2, "transient": True})
    billing_plan = desk.define("sla-plans", {"name": "Billing", "grace_hours": 48})
    billing = desk.define(
        "departments",
        {
            "name": "Billing",
            "sla_plan_id": billing_plan,
            "auto_assign": {"strategy": "round_robin"},
        },
    )
    triage = desk.define(
        "help-topics", {"name": "Triage", "department_id": 1, "sla_plan_id": transient}
    )
    eve = desk.agent("Eve", billing)
    support_agent = desk.agent("Sam", 1)
    desk.settle()

    chosen = desk.open_ticket(topicId=triage)
    left_alone = desk.open_ticket()
    desk.settle()
    assert desk.events(chosen, "SlaApplied")[0]["grace_hours"] == 2
    desk.command(chosen, "assign", {"agent_id": support_agent})
    desk.settle()
    desk.clock.advance(timedelta(minutes=30))
    for number in (chosen, left_alone):
        desk.command(number, "transfer", {"department_id": billing})
    desk.settle()

    for number in (chosen, left_alone):
        assert desk.events(number, "TicketRouted")[-1]["reason"] == "transfer"
        assert desk.events(number, "TicketRouted")[-1]["department_id"] == billing
    # The agent's choice stands; the unowned ticket gets the department's rotation.
    assert [a["agent_id"] for a in desk.events(chosen, "TicketAssigned")] == [support_agent]
    assert [a["agent_id"] for a in desk.events(left_alone, "TicketAssigned")] == [eve]
    # A transient plan yields to the new department's; a fixed one (Default SLA) stays.
    last = desk.events(chosen, "SlaApplied")[-1]
    assert (last["sla_plan_id"], last["reason"]) == (billing_plan, "transfer")
    assert last["due_at"] == (START + timedelta(hours=48)).isoformat()  # from creation
    assert len(desk.events(left_alone, "SlaApplied")) == 1


def test_overdue_once_per_due_date_first_response_and_reopen(desk: Desk) -> None:
    plan = desk.define("sla-plans", {"name": "Urgent", "grace_hours": 8, "first_response_hours": 1})
    urgent = desk.define("help-topics", {"name": "Outage", "department_id": 1, "sla_plan_id": plan})
    desk.settle()
    number = desk.open_ticket(topicId=urgent)
    desk.settle()
    [first] = desk.events(number, "SlaApplied")
    assert (first["target"], first["due_at"]) == ("first_response", "2026-01-05T10:00:00+00:00")

    timers = [desk.timer, OverdueTimer(desk.platform.store, desk.clock)]  # two replicas
    desk.clock.advance(timedelta(minutes=59))
    assert sum(t.run_once() for t in timers) == 0
    desk.clock.advance(timedelta(minutes=2))
    assert sum(t.run_once() for t in timers) == 1
    assert sum(t.run_once() for t in timers) == 0
    desk.settle()
    assert desk.ticket(number)["sla"]["overdue"] is True

    # The agent's first response meets that target: the resolution target takes over.
    desk.command(number, "replies", {"body": "On it.", "reply_to": "requester"})
    desk.settle()
    second = desk.events(number, "SlaApplied")[-1]
    assert (second["target"], second["due_at"]) == ("resolution", "2026-01-05T17:00:00+00:00")
    assert desk.ticket(number)["sla"]["overdue"] is False

    desk.clock.advance(timedelta(hours=7))
    assert desk.timer.run_once() == 1
    desk.command(number, "status", {"status": "closed"})
    desk.clock.advance(timedelta(hours=1))
    desk.command(number, "status", {"status": "open"})
    desk.settle()
    reopened = desk.events(number, "SlaApplied")[-1]
    assert reopened["reason"] == "reopen"
    assert reopened["due_at"] == (desk.clock.now() + timedelta(hours=8)).isoformat()
    assert [o["target"] for o in desk.events(number, "TicketOverdue")] == [
        "first_response",
        "resolution",
    ]


def test_restart_marks_what_fell_due_and_replay_changes_nothing(desk: Desk) -> None:
    field = desk.define(
        "departments", {"name": "Field service", "auto_assign": {"strategy": "round_robin"}}
    )
    topic = desk.define("help-topics", {"name": "On-site visit", "department_id": field})
    desk.agent("Ann", field)
    desk.agent("Ben", field)
    desk.settle()
    numbers = [desk.open_ticket(topicId=topic) for _ in range(3)]
    desk.settle()
    desk.command(numbers[2], "status", {"status": "closed"})
    desk.settle()
    # Down for a day: two open tickets fall due meanwhile; a fresh timer marks them at once.
    desk.clock.advance(timedelta(hours=24))
    assert OverdueTimer(desk.platform.store, desk.clock).run_once() == 2
    desk.settle()

    def sla_state() -> list[tuple[object, ...]]:
        t = sla_tickets.c
        with reading(desk.platform.engine) as conn:
            rows = conn.execute(
                select(
                    t.stream_id, t.sla_plan_id, t.due_at, t.is_open, t.overdue, t.target
                ).order_by(t.stream_id)
            ).all()
        return [(*r[:2], as_utc(r[2]) if r[2] else None, *r[3:]) for r in rows]

    def log_length() -> int:
        return desk.platform.store.head_position()

    def routing_state() -> list[tuple[object, ...]]:
        with reading(desk.platform.engine) as conn:
            return [tuple(r) for r in conn.execute(select(routing_tickets).order_by("stream_id"))]

    before, owners, appended = sla_state(), routing_state(), log_length()
    assert replay(desk.platform, "sla") > 0
    assert replay(desk.platform, "routing") > 0
    assert sla_state() == before
    assert routing_state() == owners
    assert log_length() == appended  # nothing decided twice
    assert OverdueTimer(desk.platform.store, desk.clock).run_once() == 0  # no second mark


def test_filter_actions_become_events_and_a_reopen_reassigns(desk: Desk) -> None:
    template = desk.define(
        "templates", {"name": "Known outage", "subject": "Outage", "body": "We are on it."}
    )
    desk.define(
        "filters",
        {
            "name": "Outage reports",
            "rules": [{"field": "subject", "op": "contains", "value": "outage"}],
            "actions": [
                {"type": "add_collaborator", "value": "noc@example.com"},
                {"type": "canned_response", "value": template},
            ],
        },
    )
    desk.define(
        "filters",
        {
            "name": "Thank-you notes",
            "rules": [{"field": "body", "op": "equal", "value": "thanks!"}],
            "actions": [{"type": "status", "value": "closed"}],
        },
    )
    field = desk.define(
        "departments", {"name": "Field service", "auto_assign": {"strategy": "round_robin"}}
    )
    topic = desk.define("help-topics", {"name": "On-site visit", "department_id": field})
    away = desk.agent("Ann", field, on_vacation=True)
    desk.settle()

    outage = desk.open_ticket(subject="Outage in Hall 3")
    thanks = desk.open_ticket(message="Thanks!")
    nobody_free = desk.open_ticket(topicId=topic)
    desk.settle()

    assert desk.events(outage, "CollaboratorAdded")[0]["email"] == "noc@example.com"
    [canned] = desk.events(outage, "MessageAppended")
    assert (canned["kind"], canned["body"]) == ("response", "We are on it.")
    assert desk.events(outage, "TicketRouted")[0]["autorespond"] is False
    assert desk.events(thanks, "TicketStatusChanged")[0]["status"] == "closed"
    assert desk.ticket(thanks)["status"] == "closed"
    assert desk.events(nobody_free, "TicketAssigned") == []  # everyone is on vacation

    # Ann is back; the unowned ticket is closed and reopened: the rotation picks her up.
    body = {
        "email": "ann@desk.example",
        "name": "Ann",
        "username": "ann",
        "department_id": field,
        "on_vacation": False,
    }
    desk.replace("agents", away, body)
    desk.command(nobody_free, "status", {"status": "closed"})
    desk.settle()
    desk.command(nobody_free, "status", {"status": "open"})
    desk.settle()
    assert [a["agent_id"] for a in desk.events(nobody_free, "TicketAssigned")] == [away]


def test_a_help_topic_change_reroutes_and_replaces_only_a_transient_plan(desk: Desk) -> None:
    triage = desk.define("sla-plans", {"name": "Triage", "grace_hours": 2, "transient": True})
    hardware = desk.define("sla-plans", {"name": "Hardware", "grace_hours": 72})
    unsorted = desk.define(
        "help-topics", {"name": "Unsorted", "department_id": 1, "sla_plan_id": triage}
    )
    printers = desk.define(
        "help-topics", {"name": "Printers", "department_id": 1, "sla_plan_id": hardware}
    )
    desk.settle()
    number = desk.open_ticket(topicId=unsorted)
    desk.settle()
    desk.command(number, "fields", {"field": "help_topic", "value": printers})
    desk.settle()
    routed = desk.events(number, "TicketRouted")[-1]
    assert (routed["reason"], routed["help_topic_id"], routed["department_id"]) == (
        "help_topic",
        printers,
        1,
    )
    applied = desk.events(number, "SlaApplied")[-1]
    assert (applied["sla_plan_id"], applied["reason"]) == (hardware, "help_topic")
    # Hardware is not transient: a change back to the triage topic keeps it.
    desk.command(number, "fields", {"field": "help_topic", "value": unsorted})
    desk.settle()
    assert desk.events(number, "TicketRouted")[-1]["help_topic_id"] == unsorted
    assert desk.events(number, "SlaApplied")[-1]["sla_plan_id"] == hardware
