"""Loading a request body with a marshmallow schema: the one way bodies are validated.

A refusal is a `ValidationFailed` (400) whose `field` is a path into the body
(`rules[0].value`, `hours.mon[1]`, `auto_assign.team_id`) and whose `errors` list every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError

from libs.platform.errors import ValidationFailed


def load(schema: Schema, body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError as exc:
        errors = flatten(exc.messages)
        where, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{where}: {messages[0]}", field=where, errors=errors) from None
    return loaded


def flatten(messages: object, where: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as {"rules[0].value": [...]}, in the schema's order."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{where}[{key}]"
            elif key == "_schema":
                path = where
            else:
                path = f"{where}.{key}" if where else str(key)
            flat.update(flatten(value, path))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {where or "body": list(messages)}
    return {where or "body": [str(messages)]}
