"""The rules a new ticket meets on every channel, as functions of their inputs."""

from __future__ import annotations

from typing import Any

import pytest

from services.intake.domain import admission
from services.intake.domain.admission import OpenTicketLimit, Policy, TicketDenied, admit
from services.routing.domain.filters import Filter

NEWSLETTERS_DEFINITION: dict[str, Any] = {
    "id": 7,
    "name": "No newsletters",
    "rules": [{"field": "email", "op": "starts_with", "value": "newsletter@"}],
    "actions": [{"type": "reject"}],
}
NEWSLETTERS = Filter.from_definition(NEWSLETTERS_DEFINITION)


def created(email: str = "ada@example.com", channel: str = "api", **data: Any) -> dict[str, Any]:
    """TicketCreated's data, as far as the rules read it."""
    return {
        "channel": channel,
        "requester": {"email": email, "name": "Ada"},
        "subject": "Help",
        "body": "Please",
        **data,
    }


def no_count() -> int:
    raise AssertionError("the open tickets were counted where the limit does not apply")


@pytest.mark.parametrize(
    ("address", "banned"),
    [
        ("spam@example.org", True),
        ("SPAM@Example.org", True),
        ("ham@example.org", False),
        ("x@evil.example", True),
        ("x@mail.evil.example", True),
        ("x@notevil.example", False),
        ("x@other.example", True),
    ],
)
def test_ban_list_matches_addresses_and_domains(address: str, banned: bool) -> None:
    entries = ["spam@example.org", "evil.example", "@other.example", ""]
    assert admission.is_banned(address, entries) is banned


@pytest.mark.parametrize("channel", ["api", "web", "email", "event", "agent"])
def test_a_banned_requester_is_denied_on_every_channel(channel: str) -> None:
    policy = Policy(ban_list=("evil.example",))
    with pytest.raises(TicketDenied) as denied:
        admit(policy, created("x@evil.example", channel), open_tickets=no_count)
    assert (denied.value.status, denied.value.details["reason"]) == (403, "banned")
    assert denied.value.detail == "x@evil.example is banned"
    admit(policy, created("ada@example.com", channel), open_tickets=no_count)


def test_a_reject_filter_denies_and_names_itself() -> None:
    policy = Policy(filters=(NEWSLETTERS,))
    with pytest.raises(TicketDenied) as denied:
        admit(policy, created("newsletter@shop.example"), open_tickets=no_count)
    assert denied.value.details == {"reason": "rejected", "filter_id": 7}
    admit(policy, created("ada@example.com"), open_tickets=no_count)


def test_a_reject_filter_applies_only_on_its_channels() -> None:
    email_only = Filter.from_definition({**NEWSLETTERS_DEFINITION, "channels": ["email"]})
    policy = Policy(filters=(email_only,))
    admit(policy, created("newsletter@shop.example", "api"), open_tickets=no_count)
    with pytest.raises(TicketDenied):
        admit(policy, created("newsletter@shop.example", "email"), open_tickets=no_count)


def test_a_stop_on_match_filter_before_it_keeps_the_reject_from_running() -> None:
    vip = Filter.from_definition(
        {
            "id": 1,
            "name": "VIP",
            "order": -1,
            "stop_on_match": True,
            "rules": [{"field": "subject", "op": "contains", "value": "vip"}],
            "actions": [{"type": "priority", "value": "high"}],
        }
    )
    policy = Policy(filters=(NEWSLETTERS, vip))
    admit(policy, created("newsletter@shop.example", subject="VIP"), open_tickets=no_count)


@pytest.mark.parametrize(
    ("open_tickets", "refused"), [(0, False), (1, False), (2, True), (9, True)]
)
def test_the_open_ticket_limit(open_tickets: int, refused: bool) -> None:
    policy = Policy(max_open_tickets=2)
    if not refused:
        admit(policy, created(), open_tickets=lambda: open_tickets)
        return
    with pytest.raises(OpenTicketLimit) as over:
        admit(policy, created(), open_tickets=lambda: open_tickets)
    assert (over.value.status, over.value.details["reason"]) == (422, "over_limit")
    assert over.value.detail == "ada@example.com has reached the maximum of 2 open tickets"


def test_no_limit_is_counted_for_agents_or_when_unset() -> None:
    admit(Policy(max_open_tickets=0), created(), open_tickets=no_count)
    admit(Policy(max_open_tickets=1), created(channel="agent"), open_tickets=no_count)
