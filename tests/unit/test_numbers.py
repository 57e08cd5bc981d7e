"""Ticket number candidates: six digits, longer after repeated collisions."""

from __future__ import annotations

import random

import pytest

from services.intake.domain.numbers import candidate_number


@pytest.mark.parametrize("attempt", range(5))
def test_first_attempts_give_six_digits(attempt: int) -> None:
    rng = random.Random(attempt)
    for _ in range(200):
        number = candidate_number(rng, attempt)
        assert number.isdigit()
        assert len(number) == 6
        assert not number.startswith("0")


@pytest.mark.parametrize(("attempt", "digits"), [(5, 7), (9, 7), (10, 8), (50, 16)])
def test_numbers_grow_after_collisions(attempt: int, digits: int) -> None:
    number = candidate_number(random.Random(1), attempt)
    assert len(number) == digits
    assert number.isdigit()


def test_length_never_shrinks_as_attempts_grow() -> None:
    rng = random.Random(7)
    lengths = [len(candidate_number(rng, attempt)) for attempt in range(40)]
    assert lengths == sorted(lengths)
    assert lengths[-1] > lengths[0]


def test_same_seed_gives_same_number() -> None:
    assert candidate_number(random.Random(42), 0) == candidate_number(random.Random(42), 0)
