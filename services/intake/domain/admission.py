"""Whether a new ticket may open: the ban list, reject filters and the open-ticket limit.

One decision for every channel (osTicket checks them for every origin: reference
osticket-behaviour.md, "Loop and abuse controls"). Every ticket is created through
`handlers.create_ticket`, which calls `admit` before anything is written; each channel turns
the refusal into its own answer — 403 or 422 for the APIs, a recorded refusal for mail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.platform.errors import DeskstreamError
from services.routing.domain.filters import Filter, evaluate, ticket_facts

BANNED, REJECTED, OVER_LIMIT = "banned", "rejected", "over_limit"
# osTicket applies the open-ticket limit to every origin but staff.
EXEMPT_FROM_LIMIT = ("agent",)


class TicketRefused(DeskstreamError):
    """A new ticket the desk's rules refuse; nothing is written. `reason` is the rule,
    `detail` says why without the osTicket prefix (mail records it as the refusal's reason)."""

    def __init__(self, reason: str, detail: str, **details: Any) -> None:
        super().__init__(f"Unable to create new ticket: {detail}", reason=reason, **details)
        self.reason = reason
        self.detail = detail


class TicketDenied(TicketRefused):
    """The ban list or a reject filter (osTicket: 403 "Ticket denied")."""

    status = 403
    code = "ticket_denied"


class OpenTicketLimit(TicketRefused):
    status = 422
    code = "open_ticket_limit"


@dataclass(frozen=True)
class Policy:
    """The rules as configured when the ticket arrives."""

    ban_list: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    max_open_tickets: int = 0  # per requester; 0 = unlimited


def admit(policy: Policy, created: Mapping[str, Any], *, open_tickets: Callable[[], int]) -> None:
    """Raise a TicketRefused if the ticket `created` (TicketCreated's data) may not open.
    `open_tickets` counts the requester's open tickets; it is called only when the limit
    applies (counting reads the requester's streams)."""
    requester = created["requester"]["email"]
    if is_banned(requester, policy.ban_list):
        raise TicketDenied(BANNED, f"{requester} is banned")
    outcome = evaluate(policy.filters, ticket_facts(created))
    if outcome.rejected_by is not None:
        filter_id = outcome.rejected_by
        raise TicketDenied(REJECTED, f"rejected by filter {filter_id}", filter_id=filter_id)
    limit = policy.max_open_tickets
    if created["channel"] not in EXEMPT_FROM_LIMIT and limit > 0 and open_tickets() >= limit:
        raise OpenTicketLimit(
            OVER_LIMIT, f"{requester} has reached the maximum of {limit} open tickets"
        )


def is_banned(address: str, ban_list: Iterable[str]) -> bool:
    """Ban entries are addresses (`spam@example.com`) or domains (`example.com`, `@example.com`);
    a domain bans its subdomains too."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    for entry in ban_list:
        entry = entry.strip().lower()
        if not entry:
            continue
        if "@" in entry and not entry.startswith("@"):
            if address == entry:
                return True
            continue
        banned = entry.lstrip("@")
        if domain == banned or domain.endswith("." + banned):
            return True
    return False
