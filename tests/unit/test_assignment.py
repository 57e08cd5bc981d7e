"""Auto-assignment: rule definitions, round robin and fewest-open strategies."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing.domain.assignment import (
    FEWEST_OPEN,
    ROUND_ROBIN,
    AutoAssign,
    choose_agent,
)


def round_robin(members: list[int], last: int | None) -> int | None:
    return choose_agent(ROUND_ROBIN, members, last_agent_id=last, open_tickets={})


def fewest_open(members: list[int], open_tickets: dict[int, int]) -> int | None:
    return choose_agent(FEWEST_OPEN, members, last_agent_id=None, open_tickets=open_tickets)


# --- round robin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "last", "expected"),
    [
        pytest.param([3, 1, 2], None, 1, id="first pick: the lowest id"),
        pytest.param([3, 1, 2], 1, 2, id="next id"),
        pytest.param([30, 10, 20], 10, 20, id="id order, not list order"),
        pytest.param([3, 1, 2], 3, 1, id="wraps after the highest"),
        pytest.param([1, 3, 5], 2, 3, id="last pick left: the next id after it"),
        pytest.param([1, 3, 5], 9, 1, id="last pick left, was the highest: wraps"),
        pytest.param([1, 3, 5], 0, 1, id="last pick below everyone"),
        pytest.param([4], 4, 4, id="a team of one"),
        pytest.param([2, 2, 1, 1], 1, 2, id="duplicates ignored"),
    ],
)
def test_round_robin(members: list[int], last: int | None, expected: int) -> None:
    assert round_robin(members, last) == expected


def test_round_robin_rotates_through_everyone_in_id_order() -> None:
    members = [7, 2, 5]
    picks: list[int] = []
    last: int | None = None
    for _ in range(7):
        last = round_robin(members, last)
        assert last is not None
        picks.append(last)
    assert picks == [2, 5, 7, 2, 5, 7, 2]


def test_round_robin_ignores_open_tickets() -> None:
    assert choose_agent(ROUND_ROBIN, [1, 2], last_agent_id=1, open_tickets={1: 0, 2: 50}) == 2


@given(
    members=st.sets(st.integers(min_value=1, max_value=50), min_size=1, max_size=8),
    picks=st.integers(min_value=0, max_value=60),
    last=st.none() | st.integers(min_value=0, max_value=60),
)
def test_round_robin_is_fair(members: set[int], picks: int, last: int | None) -> None:
    """From wherever the rotation stands, over N picks every member gets N/len or one more."""
    counts = Counter({m: 0 for m in members})
    for _ in range(picks):
        last = round_robin(list(members), last)
        assert last in members
        counts[last] += 1
    assert max(counts.values()) - min(counts.values()) <= 1


# --- fewest open ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "open_tickets", "expected"),
    [
        pytest.param([1, 2, 3], {1: 5, 2: 1, 3: 4}, 2, id="least loaded"),
        pytest.param([1, 2, 3], {1: 5, 2: 3, 3: 3}, 2, id="tie: the lower id"),
        pytest.param([3, 2, 1], {1: 2, 2: 2, 3: 2}, 1, id="all tied: the lowest id"),
        pytest.param([1, 2, 3], {1: 2, 2: 1}, 3, id="no open tickets counts as 0"),
        pytest.param([1, 2], {1: 3, 2: 4, 9: 0}, 1, id="non-members' counts ignored"),
        pytest.param([5], {5: 100}, 5, id="a team of one"),
    ],
)
def test_fewest_open(members: list[int], open_tickets: dict[int, int], expected: int) -> None:
    assert fewest_open(members, open_tickets) == expected


def test_fewest_open_ignores_the_rotation() -> None:
    assert choose_agent(FEWEST_OPEN, [1, 2], last_agent_id=1, open_tickets={}) == 1


# --- edge cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [ROUND_ROBIN, FEWEST_OPEN])
@pytest.mark.parametrize("last", [None, 3])
def test_nobody_available(strategy: str, last: int | None) -> None:
    assert choose_agent(strategy, [], last_agent_id=last, open_tickets={3: 1}) is None


@pytest.mark.parametrize("strategy", ["roundrobin", "random", ""])
def test_unknown_strategy_raises(strategy: str) -> None:
    with pytest.raises(ValueError, match="unknown assignment strategy"):
        choose_agent(strategy, [1, 2], last_agent_id=None, open_tickets={})


# --- rule definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param({}, None, id="empty"),
        pytest.param({"agent_id": None, "team_id": None, "strategy": None}, None, id="all null"),
        pytest.param({"strategy": ""}, None, id="empty strategy"),
        pytest.param({"agent_id": 5}, AutoAssign(agent_id=5), id="agent"),
        pytest.param({"team_id": 6}, AutoAssign(team_id=6), id="team"),
        pytest.param(
            {"agent_id": 5, "team_id": 6}, AutoAssign(agent_id=5, team_id=6), id="agent and team"
        ),
        pytest.param({"strategy": ROUND_ROBIN}, AutoAssign(strategy=ROUND_ROBIN), id="round robin"),
        pytest.param(
            {"team_id": 6, "strategy": FEWEST_OPEN},
            AutoAssign(team_id=6, strategy=FEWEST_OPEN),
            id="team and strategy",
        ),
        pytest.param({"agent_id": "5"}, None, id="agent id as text ignored"),
        pytest.param({"agent_id": True}, None, id="agent id as bool ignored"),
    ],
)
def test_from_definition(data: dict[str, Any] | None, expected: AutoAssign | None) -> None:
    assert AutoAssign.from_definition(data) == expected
