"""What the parser hands to the rules: one email, decoded, with nothing left to interpret."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mailbox:
    """One address: `email` lower-cased in the domain part, `name` decoded (None if absent)."""

    email: str
    name: str | None = None


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None  # without the angle brackets
    inline: bool = False  # referenced by the HTML body as cid:<content_id>


@dataclass(frozen=True)
class RefusedAttachment:
    """An attachment the ticket does not keep; the thread gets a note saying so."""

    filename: str
    content_type: str
    size: int
    reason: str


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str  # "<local@domain>"; synthesised from the headers when missing
    subject: str  # decoded; "[No Subject]" when empty
    sender: Mailbox | None  # the first valid From address
    body: str  # plain text (from text/plain, or rendered from the HTML)
    body_html: str | None = None  # sanitised (nh3), cid: images kept
    reply_to: Mailbox | None = None
    to: tuple[Mailbox, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    delivered_to: tuple[Mailbox, ...] = ()
    in_reply_to: tuple[str, ...] = ()  # "<id>" tokens, as written
    references: tuple[str, ...] = ()  # "<id>" tokens, oldest first
    # Decoded header values, first occurrence of each name, names in canonical case; what
    # filters (header:<Name>) and the auto-reply rules read.
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[MailAttachment, ...] = ()
    refused_attachments: tuple[RefusedAttachment, ...] = ()
    priority: str | None = None  # low | normal | high | emergency, from X-Priority etc.
    auto_reply: bool = False  # Auto-Submitted, Precedence bulk/junk/list, X-Autoreply, ...
    bounce: bool = False  # a failed delivery: a DSN saying so, or a header-identified bounce
    # Any delivery status report (a delay warning too): it never opens a ticket.
    delivery_report: bool = False
    # For a bounce: the Message-IDs (and References) of the message that bounced.
    bounced_message_ids: tuple[str, ...] = ()
    # A read receipt (disposition notification): a delivery report too, never a ticket.
    read_receipt: bool = False
    # What the content limits (MIME parts, nesting, HTML size and depth) left out or showed as
    # text; the raw message is then attached and the ticket gets a note listing these.
    cut: tuple[str, ...] = ()
    # Problems the parser worked around (bad charset, broken MIME); logged, never raised.
    defects: tuple[str, ...] = ()


class Unparseable(ValueError):
    """Not an email at all (no usable headers, no sender): refused with this reason."""
