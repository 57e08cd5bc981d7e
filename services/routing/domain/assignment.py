"""Pure auto-assignment: which rule applies, and which agent a strategy picks.

A rule names a fixed agent and/or team, or a strategy over the department's available members
(active, not on vacation). The state a strategy needs (open tickets per agent, the last agent a
round-robin scope chose) is passed in; the routing service keeps it in its own tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ROUND_ROBIN = "round_robin"
FEWEST_OPEN = "fewest_open"


@dataclass(frozen=True)
class AutoAssign:
    agent_id: int | None = None
    team_id: int | None = None
    strategy: str | None = None

    @classmethod
    def from_definition(cls, data: Mapping[str, object] | None) -> AutoAssign | None:
        if not data:
            return None
        rule = cls(
            agent_id=_int_or_none(data.get("agent_id")),
            team_id=_int_or_none(data.get("team_id")),
            strategy=str(data["strategy"]) if data.get("strategy") else None,
        )
        return rule if rule.agent_id or rule.team_id or rule.strategy else None


@dataclass(frozen=True)
class Assignment:
    agent_id: int | None
    team_id: int | None
    reason: str


def choose_agent(
    strategy: str,
    members: Sequence[int],
    *,
    last_agent_id: int | None,
    open_tickets: Mapping[int, int],
) -> int | None:
    """The member a strategy picks, or None when nobody is available.

    Round-robin takes the next member id after the last one chosen in this scope (wrapping), so
    a member joining or leaving does not reset the rotation. Fewest-open takes the member with
    the fewest open tickets, the lower id on a tie.
    """
    candidates = sorted(set(members))
    if not candidates:
        return None
    if strategy == ROUND_ROBIN:
        if last_agent_id is None:
            return candidates[0]
        later = [m for m in candidates if m > last_agent_id]
        return later[0] if later else candidates[0]
    if strategy == FEWEST_OPEN:
        return min(candidates, key=lambda m: (open_tickets.get(m, 0), m))
    raise ValueError(f"unknown assignment strategy {strategy!r}")


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
