"""Message-IDs of the mail Deskstream sends, signed so a reply threads back to its ticket.

`<ds.<ticket hex>.<token>.<signature>@<domain>>`: the ticket is readable from the id alone, so
intake needs no table of sent mail, and the HMAC (keyed by DESKSTREAM_SECRET_KEY) means a
stranger cannot forge an In-Reply-To into someone else's ticket. osTicket signs its ids the
same way. An incoming message whose *own* Message-ID verifies is our mail coming back: a loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

_SIGNED = re.compile(r"^<?ds\.([0-9a-f]{32})\.([0-9a-f]{1,64})\.([0-9a-f]{16})@[^>]+>?$")


def _signature(secret: str, ticket_hex: str, token: str) -> str:
    digest = hmac.new(secret.encode(), f"{ticket_hex}.{token}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


def signed_message_id(ticket_id: uuid.UUID, token: str, domain: str, secret: str) -> str:
    """`token` (hex) makes the id unique per message; the same token gives the same id."""
    ticket_hex = ticket_id.hex
    return f"<ds.{ticket_hex}.{token}.{_signature(secret, ticket_hex, token)}@{domain}>"


def ticket_of(message_id: str, secret: str) -> uuid.UUID | None:
    """The ticket a signed id was sent for; None for any other id or a bad signature."""
    match = _SIGNED.match(message_id.strip().lower())
    if match is None:
        return None
    ticket_hex, token, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(secret, ticket_hex, token)):
        return None
    return uuid.UUID(ticket_hex)
