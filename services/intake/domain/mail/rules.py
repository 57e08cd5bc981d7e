"""Email intake decisions, as functions of their inputs: which ticket a reply belongs to, who
may write to it, whether it reopens, who becomes a collaborator, what is refused.

osTicket's order (reference/osticket-behaviour.md §b): a Message-ID seen before is a
duplicate; a reply naming one of our Message-IDs (sent or received) threads into that ticket;
failing that, a ticket number in the subject threads it only when the sender is the requester
or a collaborator; otherwise the email opens a new ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from marshmallow import ValidationError, validate

from libs.events.types.fields import EMAIL_LENGTH
from services.intake.domain.mail.parsed import Mailbox, ParsedEmail
from services.intake.domain.tickets import OPEN, TicketState


class Refusal(Enum):
    """Why an email made no ticket and no message. The value is the log's reason code."""

    UNPARSEABLE = "unparseable"
    LOOP = "loop"  # our own outgoing mail, or mail from one of the desk's own addresses
    BOUNCE = "bounce"  # a delivery report for no ticket we know
    # The rules every channel applies to a new ticket (services.intake.domain.admission):
    BANNED = "banned"
    REJECTED = "rejected"  # a filter's reject action
    OVER_LIMIT = "over_limit"  # the requester has the maximum number of open tickets


def subject_number_pattern(number_format: str) -> re.Pattern[str]:
    """`[#{number}]` -> a regex finding `[#123456]` anywhere in a subject."""
    prefix, _, suffix = number_format.partition("{number}")
    return re.compile(
        re.escape(prefix) + r"\s*([A-Za-z0-9][A-Za-z0-9-]{0,19})\s*" + re.escape(suffix)
    )


def subject_numbers(subject: str, pattern: re.Pattern[str]) -> list[str]:
    """Ticket numbers in the subject, the last one first (a forward of a forward names the
    newest ticket last: `Fwd: Re: [#111111] ... [#222222]`)."""
    return [m.group(1) for m in reversed(list(pattern.finditer(subject)))]


def is_delivery_report(email: ParsedEmail) -> bool:
    """Bounces, and any delivery status report (a delay warning too), never open a ticket."""
    return email.bounce or email.delivery_report


def reply_candidates(email: ParsedEmail) -> list[str]:
    """Message-IDs this email answers, the most recent parent first."""
    seen: dict[str, None] = {}
    for token in (*reversed(email.in_reply_to), *reversed(email.references)):
        if token != email.message_id:
            seen.setdefault(token, None)
    return list(seen)


def requester(email: ParsedEmail) -> Mailbox | None:
    """Replies go to Reply-To when the sender set one; otherwise to From. An address a ticket
    could not store (nor mail) does not count."""
    for mailbox in (email.reply_to, email.sender):
        if mailbox is not None and valid_address(mailbox.email):
            return mailbox
    return None


_VALID_ADDRESS = validate.Email()


def valid_address(address: str) -> bool:
    """The same check the event schema applies to a requester (marshmallow's Email, at most
    EMAIL_LENGTH characters)."""
    if len(address) > EMAIL_LENGTH:
        return False
    try:
        _VALID_ADDRESS(address)
    except ValidationError:
        return False
    return True


def may_write(state: TicketState, sender: str) -> bool:
    """Threading by the subject's number alone needs the sender to be on the ticket; a stranger
    quoting a number gets a ticket of their own (osTicket does the same)."""
    sender = sender.lower()
    return sender == state.requester_email or sender in state.collaborators


class Placement(Enum):
    APPEND = "append"
    REOPEN = "reopen"  # append, and reopen the closed ticket
    NEW_TICKET = "new_ticket"  # the ticket cannot reopen: a new one that references it


def place_reply(
    state: TicketState,
    *,
    department_status: str | None,
    help_topic_status: str | None,
    automatic: bool,
) -> Placement:
    """Where a reply to `state` goes. An open-state ticket takes it. A closed one reopens,
    unless its status does not allow that or it is in an archived department or help topic:
    then the reply opens a new ticket, as it does for an archived ticket. A disabled
    department still reopens. Auto-replies and bounces never reopen anything."""
    if state.state == OPEN:
        return Placement.APPEND
    if not state.reopenable or "archived" in (department_status, help_topic_status):
        return Placement.NEW_TICKET
    return Placement.APPEND if automatic else Placement.REOPEN


@dataclass(frozen=True)
class Recipients:
    """The email's addressees split into the desk's own addresses and everyone else."""

    system: tuple[str, ...]  # desk addresses it was sent to, in header order
    others: tuple[Mailbox, ...]  # To/Cc people, not the desk and not delivered-to


def split_recipients(email: ParsedEmail, system_addresses: Iterable[str]) -> Recipients:
    own = {a.lower() for a in system_addresses}
    delivered = {m.email.lower() for m in email.delivered_to}
    system: dict[str, None] = {}
    others: dict[str, Mailbox] = {}
    for mailbox in (*email.to, *email.cc, *email.delivered_to):
        address = mailbox.email.lower()
        if address in own:
            system.setdefault(address, None)
        elif address not in delivered:
            others.setdefault(address, mailbox)
    return Recipients(tuple(system), tuple(others.values()))


def new_collaborators(
    recipients: Recipients, *, on_ticket: Iterable[str], enabled: bool
) -> list[Mailbox]:
    """To/Cc people who join the ticket: only when the setting is on and the email was sent to
    one of the desk's addresses (not merely copied to the desk by a stranger's list)."""
    if not enabled or not recipients.system:
        return []
    present = {a.lower() for a in on_ticket}
    return [m for m in recipients.others if m.email.lower() not in present]


def cap_collaborators(people: list[Mailbox], limit: int) -> tuple[list[Mailbox], int]:
    """The first `limit` people who join from one message, and how many were left out: one
    mail copied to thousands must not make thousands of collaborators (and mail them all).
    A limit of 0 leaves everyone in."""
    if limit <= 0:
        return people, 0
    return people[:limit], max(len(people) - limit, 0)


def department_for(system: Iterable[str], department_emails: dict[str, int]) -> int | None:
    """The department of the first desk address the email was sent to."""
    for address in system:
        if address in department_emails:
            return department_emails[address]
    return None
