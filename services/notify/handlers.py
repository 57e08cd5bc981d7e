"""notify's subscription: remember tickets, send the new-ticket autoresponse once routed, and
the over-limit notice for an email refused for that reason — each at most once per recipient
per autoresponse window (the mail-loop guard). Mail goes only to an address that is one plain
addr-spec (domain/headers.py); for any other the log says why nothing was sent."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import DBAPIError

from libs.events.envelope import NewEvent, RecordedEvent
from libs.events.subscription import Subscription, TransientError, UnitOfWork
from libs.platform.database import as_utc, insert_if_absent, upsert
from services.notify.adapters.mail import Mailer
from services.notify.adapters.tables import (
    mail_deliveries,
    notifications_sent,
    notify_departments,
    notify_tickets,
)
from services.notify.domain.autoresponder import held_back_because, may_autorespond
from services.notify.domain.headers import UnsafeAddress, safe_address
from services.notify.domain.messages import (
    Outgoing,
    TicketSummary,
    message_id,
    new_ticket_autoresponse,
    over_limit_notice,
)

AUTORESPONSE = "ticket.autoresponse"
OVER_LIMIT = "email.over_limit"
# Mail a robot could answer: one of these per recipient per window, whichever it is.
AUTORESPONSES = (AUTORESPONSE, OVER_LIMIT)
ACCEPTED_IN_MEMORY = 10_000
AUTORESPONDER_LOCK_SPACE = 0x6E746679  # "ntfy": advisory locks keyed by recipient (PostgreSQL)

log = logging.getLogger(__name__)


class NotifyHandlers:
    def __init__(
        self,
        mailer: Mailer,
        helpdesk_email: str,
        helpdesk_name: str,
        secret_key: str,
        *,
        autoresponse_window_s: float,
    ) -> None:
        self.mailer = mailer
        self.secret_key = secret_key
        self.helpdesk_email = helpdesk_email
        self.helpdesk_name = helpdesk_name
        self.autoresponse_window = timedelta(seconds=autoresponse_window_s)
        # Message-IDs SMTP accepted lately (oldest first): a retry in this process never resends.
        self._accepted: dict[str, None] = {}

    def on_department(self, event: RecordedEvent, uow: UnitOfWork) -> None:
        responder = event.data.get("autoresponder") or {}
        upsert(
            uow.conn,
            notify_departments,
            {"id": event.data["id"], "autorespond_new_ticket": responder.get("new_ticket", True)},
            ["id"],
        )

    def on_ticket_created(self, event: RecordedEvent, uow: UnitOfWork) -> None:
        d = event.data
        upsert(
            uow.conn,
            notify_tickets,
            {
                "stream_id": event.stream_id,
                "ticket_id": d["ticket_id"],
                "number": d["number"],
                "subject": d["subject"],
                "requester_email": d["requester"]["email"],
                "requester_name": d["requester"].get("name"),
                "autorespond": d.get("autorespond", True),
            },
            ["stream_id"],
        )

    def on_routed(self, event: RecordedEvent, uow: UnitOfWork) -> None:
        if event.data.get("reason", "new") != "new" or not event.data.get("autorespond", True):
            return
        ticket = (
            uow.conn.execute(
                select(notify_tickets).where(notify_tickets.c.stream_id == event.stream_id)
            )
            .mappings()
            .first()
        )
        if ticket is None or not ticket["autorespond"]:
            return
        department = uow.conn.execute(
            select(notify_departments.c.autorespond_new_ticket).where(
                notify_departments.c.id == event.data["department_id"]
            )
        ).scalar_one_or_none()
        if department is None:
            raise TransientError("the ticket's department has not arrived yet")
        if department:
            summary = TicketSummary(
                ticket["number"],
                ticket["subject"],
                ticket["requester_email"],
                ticket["requester_name"],
            )
            ticket_id = uuid.UUID(event.stream_id.removeprefix("ticket-"))

            def compose(msg_id: str) -> Outgoing:
                return new_ticket_autoresponse(
                    summary,
                    helpdesk_email=self.helpdesk_email,
                    helpdesk_name=self.helpdesk_name,
                    msg_id=msg_id,
                    sent_at=uow.clock.now(),
                )

            self._send_once(event, uow, summary.requester_email, AUTORESPONSE, ticket_id, compose)

    def on_email_refused(self, event: RecordedEvent, uow: UnitOfWork) -> None:
        """osTicket's over-limit notice: the sender learns why no ticket was opened. Never for
        an auto-reply (it would answer a robot) and never for the other refusals (loops,
        bounces and banned senders get no mail at all)."""
        d = event.data
        if d["reason"] != "over_limit" or not d.get("autorespond", True) or not d.get("sender"):
            return
        recipient = d["sender"]

        def compose(msg_id: str) -> Outgoing:
            return over_limit_notice(
                recipient,
                d.get("sender_name"),
                d.get("subject") or "",
                helpdesk_email=self.helpdesk_email,
                helpdesk_name=self.helpdesk_name,
                msg_id=msg_id,
                sent_at=uow.clock.now(),
            )

        self._send_once(event, uow, recipient, OVER_LIMIT, None, compose)

    def _send_once(
        self,
        event: RecordedEvent,
        uow: UnitOfWork,
        recipient: str,
        template: str,
        ticket_id: uuid.UUID | None,
        compose: Callable[[str], Outgoing],
    ) -> None:
        recipient = recipient.lower()
        key = {"cause_event_id": str(event.event_id), "recipient": recipient, "template": template}
        already = uow.conn.execute(
            select(notifications_sent.c.message_id).where(
                *(notifications_sent.c[k] == v for k, v in key.items())
            )
        ).first()
        if already is not None:
            return
        msg_id = message_id(
            str(event.event_id),
            recipient,
            template,
            self.helpdesk_email.split("@")[-1],
            ticket_id=ticket_id,
            secret=self.secret_key,
        )
        notification_id = uuid.uuid5(uuid.NAMESPACE_URL, msg_id)
        about = {
            "ticket_id": str(ticket_id) if ticket_id else None,
            "cause_event_id": str(event.event_id),
            "template": template,
            "recipient": recipient,
        }
        try:
            safe_address(recipient)
        except UnsafeAddress as exc:
            # Intake's check (marshmallow's Email) lets through quoted local parts and other
            # forms a header could be confused by: refuse here, with a record, rather than raise.
            log.warning("no %s sent for event %s: %s", template, event.event_id, exc)
            uow.append(
                f"notification-{notification_id}",
                [NewEvent("NotificationSuppressed", {**about, "reason": str(exc)})],
                0,
            )
            return
        if template in AUTORESPONSES:
            _serialise_recipient(uow.conn, recipient)
            last = _last_autoresponse(uow.conn, recipient)
            now = uow.clock.now()
            if last is not None and not may_autorespond(last, now, self.autoresponse_window):
                reason = held_back_because(last, now, self.autoresponse_window)
                suppressed = {**about, "reason": reason, "last_sent_at": last.isoformat()}
                uow.append(
                    f"notification-{notification_id}",
                    [NewEvent("NotificationSuppressed", suppressed)],
                    0,
                )
                return
        now = uow.clock.now()
        if msg_id in self._accepted or _accepted_before(uow.conn, msg_id):
            # An earlier attempt's mail went out and its transaction then failed: record it now.
            log.info("%s %s was accepted by SMTP before; not sent again", template, msg_id)
        else:
            self.mailer.send(compose(msg_id))
            # Left to this transaction alone, a failed commit would resend the batch's mail (seen
            # with terminated backends: one autoresponse three times). So the acceptance is kept
            # in memory at once and committed on a connection of its own; what is left is a
            # crash of this process between SMTP's answer and that commit, where DESIGN.md
            # allows a resend with the same Message-ID.
            self._accepted[msg_id] = None
            while len(self._accepted) > ACCEPTED_IN_MEMORY:
                self._accepted.pop(next(iter(self._accepted)))
            _remember_accepted(uow.conn, msg_id, now)
        # And with this transaction, for when the early commit could not be made.
        insert_if_absent(
            uow.conn, mail_deliveries, {"message_id": msg_id, "accepted_at": now}, ["message_id"]
        )
        uow.conn.execute(
            insert(notifications_sent).values(**key, message_id=msg_id, sent_at=uow.clock.now())
        )
        uow.append(
            f"notification-{notification_id}",
            [NewEvent("NotificationSent", {**about, "message_id": msg_id})],
            0,
        )

    def subscription(self) -> Subscription:
        return Subscription(
            "notify",
            {
                "DepartmentDefined": self.on_department,
                "TicketCreated": self.on_ticket_created,
                "TicketRouted": self.on_routed,
                "EmailRefused": self.on_email_refused,
            },
            categories=frozenset({"ticket", "config", "email"}),
        )


def _accepted_before(conn: Connection, msg_id: str) -> bool:
    found = conn.execute(
        select(mail_deliveries.c.message_id).where(mail_deliveries.c.message_id == msg_id)
    ).first()
    return found is not None


def _remember_accepted(conn: Connection, msg_id: str, now: datetime, attempts: int = 3) -> None:
    """Commit at once that SMTP accepted `msg_id`, on a connection of its own (PostgreSQL). On
    SQLite one writer holds the file: the handler's transaction records it, and the desk is one
    process, where a crash loses both alike."""
    if conn.dialect.name != "postgresql":
        return
    row = {"message_id": msg_id, "accepted_at": now}
    for attempt in range(1, attempts + 1):
        try:
            with conn.engine.begin() as own:
                insert_if_absent(own, mail_deliveries, row, ["message_id"])
            return
        except DBAPIError as exc:
            # A terminated pooled connection: a fresh one usually works at once. If the database
            # stays away, the memory of this process and the handler's own commit remain.
            log.warning("recording that %s was accepted (try %d): %s", msg_id, attempt, exc)


def _last_autoresponse(conn: Connection, recipient: str) -> datetime | None:
    """When the recipient last got autoresponse-type mail (ix_notifications_sent_recipient)."""
    last = conn.execute(
        select(notifications_sent.c.sent_at)
        .where(
            notifications_sent.c.recipient == recipient,
            notifications_sent.c.template.in_(AUTORESPONSES),
        )
        .order_by(notifications_sent.c.sent_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if last is None else as_utc(last)


def _serialise_recipient(conn: Connection, recipient: str) -> None:
    """Two notify replicas answering one robot (its tickets sit in different partitions) would
    both find no recent autoresponse and both send: on PostgreSQL a transaction-scoped lock on
    the recipient makes the second wait and see the first's. SQLite: every writing transaction
    begins IMMEDIATE (libs.platform.database), which already serialises them."""
    if conn.dialect.name == "postgresql":
        # The two-int4 key space never overlaps the event store's single-bigint append lock.
        conn.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), hashtext(:recipient))"),
            {"space": AUTORESPONDER_LOCK_SPACE, "recipient": recipient},
        )
