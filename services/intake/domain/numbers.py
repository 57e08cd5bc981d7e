"""Ticket numbers: short, human-friendly, unique (uniqueness is checked by the adapter)."""

from __future__ import annotations

import random


def candidate_number(rng: random.Random, attempt: int) -> str:
    """Six digits like osTicket's; one more digit for every few collisions, so it always ends."""
    digits = 6 + attempt // 5
    return str(rng.randint(10 ** (digits - 1), 10**digits - 1))
