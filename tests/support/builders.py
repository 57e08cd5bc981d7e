"""Valid event data for tests, with overrides."""

from __future__ import annotations

import uuid
from typing import Any


def ticket_created(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ticket_id": str(uuid.uuid4()),
        "number": "123456",
        "subject": "Printer on fire",
        "channel": "api",
        "requester": {"email": "ada@example.com", "name": "Ada"},
        "entry_id": str(uuid.uuid4()),
        "body": "It is on fire.",
    }
    data.update(overrides)
    return data
