"""Typed errors of the backbone; HTTP adapters map them to status codes in one place."""

from __future__ import annotations

from typing import Any


class ConcurrencyError(Exception):
    """An append named a stream version that is no longer the current one (answer 409)."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, not {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class UnknownEventType(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}")
        self.type_name = type_name


class EventValidationError(Exception):
    """Event data does not match its schema; nothing was appended."""

    def __init__(self, type_name: str, errors: dict[str, Any]) -> None:
        super().__init__(f"invalid {type_name}: {errors}")
        self.type_name = type_name
        self.errors = errors


class PoisonEvent(Exception):
    """A delivered record that can never be processed as it is (undecodable, invalid, future)."""
