"""The mail-loop guard (RELIABILITY.md S4): a robot that writes to the desk, and answers every
mail it gets, must not keep a conversation of autoresponses going. Whatever it sends, it gets
at most one autoresponse-type mail (new-ticket autoresponse, over-limit notice) per window."""

from __future__ import annotations

from datetime import datetime, timedelta


def may_autorespond(last_sent_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """May the desk send this recipient an autoresponse now, given when it last sent one?

    A last send "in the future" (clocks of two notify replicas disagree) counts as recent: when
    in doubt, stay quiet rather than feed a loop."""
    if last_sent_at is None or window <= timedelta(0):
        return True
    return now - last_sent_at >= window


def held_back_because(last_sent_at: datetime, now: datetime, window: timedelta) -> str:
    """Why an autoresponse was held back, for the log (NotificationSuppressed.reason)."""
    ago = max(0, int((now - last_sent_at).total_seconds()))
    return (
        f"an autoresponse went to this address {ago} s ago; at most one per "
        f"{int(window.total_seconds())} s (DESKSTREAM_AUTORESPONSE_WINDOW_S)"
    )
