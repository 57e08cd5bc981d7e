"""Email in: one raw message becomes a ticket, a message on a ticket, a note, or a refusal.

Every channel (IMAP, `deskstream pipe`, `POST /api/tickets.email`) calls `receive_email`. It
returns only after the outcome is committed, so the caller may then delete the message (or
exit 0); any exception means nothing was committed and the caller must keep the message for a
retry. A Message-ID already received has no second effect: that makes IMAP's crash window
(committed, not yet deleted) and an MTA's redelivery harmless.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, insert, select

from libs.events.envelope import NewEvent
from libs.events.store import ANY_VERSION, EventStore
from libs.platform.configuration import definitions
from libs.platform.message_ids import ticket_of
from libs.platform.settings import Settings
from services.intake import handlers
from services.intake.adapters.tables import email_messages, ticket_numbers
from services.intake.domain import admission, tickets
from services.intake.domain.mail import rules
from services.intake.domain.mail.limits import MimeLimits
from services.intake.domain.mail.parsed import Mailbox, ParsedEmail, Unparseable
from services.intake.domain.mail.parser import parse_email
from services.intake.domain.mail.rules import Placement, Refusal
from services.intake.domain.tickets import EmailFacts, OpenTicket, Requester, TicketState
from services.platform import Platform

log = logging.getLogger(__name__)

SYSTEM = {"kind": "system", "id": None, "name": "Deskstream", "email": None}


@dataclass(frozen=True)
class MailOutcome:
    """What became of an email. `refused` carries a reason; everything else a ticket number."""

    action: str  # created | appended | noted | duplicate | refused
    number: str | None = None
    refused: Refusal | None = None
    reason: str | None = None


def receive_email(platform: Platform, raw: bytes, *, channel: str = "email") -> MailOutcome:
    settings = platform.settings
    try:
        email = parse_email(
            raw, max_attachment_bytes=settings.max_attachment_bytes, limits=mime_limits(settings)
        )
    except Unparseable as exc:
        return _refuse(Refusal.UNPARSEABLE, str(exc), None, channel)
    if email.defects:
        log.info("email %s parsed with defects: %s", email.message_id, "; ".join(email.defects))
    return Intake(platform.store, settings, channel).receive(email)


class Intake:
    """One email's trip through the rules, inside one transaction."""

    def __init__(self, store: EventStore, settings: Settings, channel: str) -> None:
        self.store = store
        self.settings = settings
        self.channel = channel
        self.numbers = rules.subject_number_pattern(settings.subject_number_format)

    def receive(self, email: ParsedEmail) -> MailOutcome:
        sender = rules.requester(email)
        if sender is None:
            return _refuse(Refusal.UNPARSEABLE, "no valid sender address", email, self.channel)
        with self.store.transaction() as conn:
            seen = _ticket_for_message_id(conn, email.message_id)
            if seen is not None:
                return MailOutcome("duplicate", _number(conn, seen))
            refused_before = self.store.read_stream(_refusal_stream(email.message_id), conn=conn)
            if refused_before:  # the same answer as the first time; nothing recorded or sent
                first = refused_before[0].data
                return _refuse(Refusal(first["reason"]), first["detail"], email, self.channel)
            config = _MailConfig.read(conn, self.store, self.settings)
            refusal = self._refusal(email, sender, config)
            if refusal is not None:
                return _refuse(*refusal, email, self.channel, record=(conn, self.store))
            if rules.is_delivery_report(email):
                return self._bounce(conn, email)
            found = self._thread(conn, email, sender)
            if found is None:
                return self._open(conn, email, sender, config, previous=None)
            stream, state = found
            department, topic = config.statuses(state)
            placement = rules.place_reply(
                state,
                department_status=department,
                help_topic_status=topic,
                automatic=email.auto_reply,
            )
            if placement is Placement.NEW_TICKET:
                return self._open(conn, email, sender, config, previous=state.number)
            return self._append(conn, email, sender, stream, state, placement, config)

    def _refusal(
        self, email: ParsedEmail, sender: Mailbox, config: _MailConfig
    ) -> tuple[Refusal, str] | None:
        """Loop and abuse controls, in osTicket's order, before any threading."""
        if ticket_of(email.message_id, self.settings.secret_key) is not None:
            return Refusal.LOOP, "our own outgoing message came back"
        if sender.email.lower() in config.system_addresses:
            return Refusal.LOOP, "sent from one of the help desk's own addresses"
        # Checked before threading, so a banned sender's replies are refused too; a new ticket
        # meets the ban again with the other rules every channel applies (create_ticket).
        # Both From and Reply-To: a banned sender must not get in by naming a clean Reply-To.
        for mailbox in (email.sender, sender):
            if mailbox is None or rules.is_delivery_report(email):
                continue
            if admission.is_banned(mailbox.email, config.ban_list):
                return Refusal.BANNED, f"{mailbox.email} is banned"
        return None

    # -- threading ---------------------------------------------------------------------------

    def _thread(
        self, conn: Connection, email: ParsedEmail, sender: Mailbox
    ) -> tuple[str, TicketState] | None:
        """The ticket this email answers, followed to its merge parent."""
        ticket_id: uuid.UUID | str | None = None
        for candidate in rules.reply_candidates(email):
            ticket_id = ticket_of(candidate, self.settings.secret_key) or _ticket_for_message_id(
                conn, candidate
            )
            if ticket_id is not None:
                break
        if ticket_id is not None:
            return self._follow(conn, f"ticket-{ticket_id}")
        for number in rules.subject_numbers(email.subject, self.numbers):
            stream = handlers.find_ticket(conn, number)
            found = self._follow(conn, stream) if stream else None
            if found is not None and rules.may_write(found[1], sender.email):
                return found
        return None

    def _follow(self, conn: Connection, stream: str) -> tuple[str, TicketState] | None:
        stream, state = handlers.follow_merges(conn, self.store, stream)
        return (stream, state) if state.exists and not state.rejected else None

    # -- outcomes ----------------------------------------------------------------------------

    def _append(
        self,
        conn: Connection,
        email: ParsedEmail,
        sender: Mailbox,
        stream: str,
        state: TicketState,
        placement: Placement,
        config: _MailConfig,
    ) -> MailOutcome:
        assert state.ticket_id is not None and state.number is not None
        entry_id = uuid.uuid4()
        stored = [handlers.store_attachment(conn, state.ticket_id, a) for a in _attachments(email)]
        author = {"kind": "user", "id": None, "name": sender.name, "email": sender.email}
        new_events = [
            NewEvent(
                "MessageAppended",
                {
                    "entry_id": str(entry_id),
                    "kind": "message",
                    "author": author,
                    "body": email.body,
                    "body_html": email.body_html,
                    "attachments": stored,
                    "channel": "email",
                    "message_id": email.message_id,
                    "autorespond": not email.auto_reply,
                },
            )
        ]
        if placement is Placement.REOPEN:
            new_events.append(tickets.reopened(state, "reopened by the requester's email", author))
        on_ticket = {state.requester_email or "", *state.collaborators}
        joining = [sender] if sender.email.lower() not in on_ticket else []
        recipients = rules.split_recipients(email, config.system_addresses)
        copied, left_out = rules.cap_collaborators(
            rules.new_collaborators(
                recipients,
                on_ticket=on_ticket | {sender.email},
                enabled=self.settings.email_collaborators,
            ),
            self.settings.max_collaborators_per_message,
        )
        new_events += _collaborators_added(joining + copied)
        new_events += self._left_out_note(left_out)
        new_events += _refused_attachment_notes(email) + _cut_notes(email)
        self.store.append(stream, self._stamped(new_events), state.version, conn=conn)
        _remember(conn, self.store, email.message_id, state.ticket_id, entry_id)
        log.info("email %s appended to ticket %s", email.message_id, state.number)
        return MailOutcome("appended", state.number)

    def _open(
        self,
        conn: Connection,
        email: ParsedEmail,
        sender: Mailbox,
        config: _MailConfig,
        *,
        previous: str | None,
    ) -> MailOutcome:
        recipients = rules.split_recipients(email, config.system_addresses)
        command = OpenTicket(
            subject=email.subject,
            body=(email.body.strip() and email.body) or "-",
            body_html=email.body_html,
            requester=Requester(sender.email, sender.name),
            channel="email",
            priority=email.priority,
            autorespond=not (email.auto_reply or email.bounce),
            attachments=tuple(_attachments(email)),
            email=EmailFacts(
                message_id=email.message_id,
                to=tuple(m.email for m in email.to),
                cc=tuple(m.email for m in email.cc),
                reply_to=email.reply_to.email if email.reply_to else None,
                headers=email.headers,
                department_id=rules.department_for(recipients.system, config.department_emails),
                previous_ticket=previous,
            ),
        )
        ticket_id = uuid.uuid4()
        joining, left_out = rules.cap_collaborators(
            rules.new_collaborators(
                recipients, on_ticket={sender.email}, enabled=self.settings.email_collaborators
            ),
            self.settings.max_collaborators_per_message,
        )
        follow = (
            _collaborators_added(joining)
            + self._left_out_note(left_out)
            + _refused_attachment_notes(email)
            + _cut_notes(email)
        )
        try:
            with conn.begin_nested():  # a refused ticket leaves no number behind
                number = handlers.allocate_number(conn, ticket_id)
                entry_id = handlers.create_ticket(
                    conn,
                    self.store,
                    command,
                    ticket_id=ticket_id,
                    number=number,
                    max_open_tickets=self.settings.max_open_tickets,
                    metadata={"actor": f"email:{self.channel}"},
                    followed_by=follow,
                )
        except admission.TicketRefused as refused:
            refusal = Refusal(refused.reason)
            return _refuse(refusal, refused.detail, email, self.channel, record=(conn, self.store))
        _remember(conn, self.store, email.message_id, ticket_id, entry_id)
        log.info("email %s opened ticket %s", email.message_id, number)
        return MailOutcome("created", number)

    def _bounce(self, conn: Connection, email: ParsedEmail) -> MailOutcome:
        """A delivery report never opens a ticket: it becomes a note on the ticket whose mail
        bounced, when we can tell which one that was."""
        for candidate in email.bounced_message_ids:
            ticket_id = ticket_of(candidate, self.settings.secret_key) or _ticket_for_message_id(
                conn, candidate
            )
            if ticket_id is None:
                continue
            stream = f"ticket-{ticket_id}"
            state = handlers.load_ticket(conn, self.store, stream)
            if not state.exists:
                continue
            assert state.ticket_id is not None
            entry_id = uuid.uuid4()
            note = NewEvent(
                "MessageAppended",
                {
                    "entry_id": str(entry_id),
                    "kind": "note",
                    "author": SYSTEM,
                    "body": f"{_report_kind(email)} ({email.subject}):\n\n{email.body}".strip(),
                    "body_html": None,
                    "attachments": [],
                    "channel": "email",
                    "message_id": email.message_id,
                    "autorespond": False,
                },
            )
            self.store.append(stream, self._stamped([note]), state.version, conn=conn)
            _remember(conn, self.store, email.message_id, state.ticket_id, entry_id)
            return MailOutcome("noted", state.number)
        return _refuse(
            Refusal.BOUNCE,
            f"a {_report_kind(email).lower()} for no known ticket",
            email,
            self.channel,
            record=(conn, self.store),
        )

    def _left_out_note(self, left_out: int) -> list[NewEvent]:
        if not left_out:
            return []
        limit = self.settings.max_collaborators_per_message
        return [
            _system_note(
                f"{left_out} more To/Cc addresses were not added as collaborators: at most "
                f"{limit} join from one email (DESKSTREAM_MAX_COLLABORATORS_PER_MESSAGE)."
            )
        ]

    def _stamped(self, new_events: list[NewEvent]) -> list[NewEvent]:
        return [replace(e, metadata={"actor": f"email:{self.channel}"}) for e in new_events]


@dataclass(frozen=True)
class _MailConfig:
    """The parts of the desk's configuration that email intake reads, once per email."""

    system_addresses: frozenset[str]
    department_emails: dict[str, int]
    department_status: dict[int, str]
    help_topic_status: dict[int, str]
    ban_list: tuple[str, ...]

    @classmethod
    def read(cls, conn: Connection, store: EventStore, settings: Settings) -> _MailConfig:
        departments = [data for _, data in definitions(conn, store, "department")]
        emails = {d["email"].lower(): d["id"] for d in departments if d.get("email")}
        topics = definitions(conn, store, "help-topic")
        return cls(
            system_addresses=frozenset({settings.helpdesk_email.lower(), *emails}),
            department_emails=emails,
            department_status={d["id"]: d.get("status", "active") for d in departments},
            help_topic_status={t["id"]: t.get("status", "active") for _, t in topics},
            ban_list=handlers.ban_list(conn, store),
        )

    def statuses(self, state: TicketState) -> tuple[str | None, str | None]:
        department = self.department_status.get(state.department_id or 0)
        topic = self.help_topic_status.get(state.help_topic_id or 0)
        return department, topic


def _digest(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().lower().encode()).hexdigest()


def _refusal_stream(message_id: str) -> str:
    return f"email-{_digest(message_id)}"


def _ticket_for_message_id(conn: Connection, message_id: str) -> str | None:
    found = conn.execute(
        select(email_messages.c.ticket_id).where(email_messages.c.digest == _digest(message_id))
    ).scalar_one_or_none()
    return str(found) if found is not None else None


def _remember(
    conn: Connection, store: EventStore, message_id: str, ticket_id: uuid.UUID, entry_id: uuid.UUID
) -> None:
    conn.execute(
        insert(email_messages).values(
            digest=_digest(message_id),
            message_id=message_id,
            ticket_id=str(ticket_id),
            entry_id=str(entry_id),
            received_at=store.clock.now(),
        )
    )


def _number(conn: Connection, ticket_id: str) -> str | None:
    return conn.execute(
        select(ticket_numbers.c.number).where(ticket_numbers.c.ticket_id == ticket_id)
    ).scalar_one_or_none()


def _attachments(email: ParsedEmail) -> list[tickets.Attachment]:
    return [
        tickets.Attachment(a.filename, a.content_type, a.data, a.content_id, a.inline)
        for a in email.attachments
    ]


def _collaborators_added(people: list[Mailbox]) -> list[NewEvent]:
    return [
        NewEvent("CollaboratorAdded", {"email": p.email, "name": p.name, "by": SYSTEM})
        for p in people
    ]


def _refused_attachment_notes(email: ParsedEmail) -> list[NewEvent]:
    """The ticket is created, the oversized file is not kept, and the thread says so."""
    if not email.refused_attachments:
        return []
    lines = [f"- {a.filename} ({a.size} bytes): {a.reason}" for a in email.refused_attachments]
    return [_system_note("Attachments not kept:\n" + "\n".join(lines))]


def _cut_notes(email: ParsedEmail) -> list[NewEvent]:
    """The content limits cut or simplified part of the email: the thread says what, and the
    message as received is attached (or listed as not kept when it is too large)."""
    if not email.cut:
        return []
    lines = "\n".join(f"- {line}" for line in email.cut)
    return [_system_note(f"Part of this email is not shown as sent:\n{lines}")]


def _report_kind(email: ParsedEmail) -> str:
    return "Read receipt" if email.read_receipt else "Delivery report"


def mime_limits(settings: Settings) -> MimeLimits:
    return MimeLimits(
        max_parts=settings.max_mime_parts,
        max_depth=settings.max_mime_depth,
        max_html_bytes=settings.max_html_bytes,
        max_html_depth=settings.max_html_depth,
    )


def _system_note(body: str) -> NewEvent:
    """A note on the thread saying what the desk left out of an email."""
    data: dict[str, Any] = {
        "entry_id": str(uuid.uuid4()),
        "kind": "note",
        "author": SYSTEM,
        "body": body,
        "body_html": None,
        "attachments": [],
        "autorespond": False,
    }
    return NewEvent("MessageAppended", data)


def _refuse(
    refusal: Refusal,
    reason: str,
    email: ParsedEmail | None,
    channel: str,
    *,
    record: tuple[Connection, EventStore] | None = None,
) -> MailOutcome:
    """A refusal is logged (bounce-safe: no body, no reply) and is final for this message.
    With `record`, it is also an EmailRefused event: in the log, deduplicated, and the cause
    of the over-limit notice."""
    if record is not None and email is not None:
        conn, store = record
        sender = rules.requester(email)
        refused = NewEvent(
            "EmailRefused",
            {
                "message_id": email.message_id,
                "reason": refusal.value,
                "detail": reason,
                "sender": sender.email if sender else None,
                "sender_name": sender.name if sender else None,
                "subject": email.subject,
                "channel": channel,
                "autorespond": not (email.auto_reply or email.bounce),
            },
            metadata={"actor": f"email:{channel}"},
        )
        store.append(_refusal_stream(email.message_id), [refused], ANY_VERSION, conn=conn)
    log.warning(
        "email refused (%s) via %s: %s; message-id=%s from=%s",
        refusal.value,
        channel,
        reason,
        email.message_id if email else "-",
        email.sender.email if email and email.sender else "-",
    )
    return MailOutcome("refused", refused=refusal, reason=reason)
