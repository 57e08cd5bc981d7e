"""What any projection can store, whatever the field: checked at every intake edge and at append.

SQLite INTEGER, PostgreSQL BIGINT and orjson stop at signed 64 bits; PostgreSQL's text and JSONB
refuse NUL (\\u0000); JSON has no NaN or infinity. One such value appended stops every
subscription that reads it, so it is refused before it is stored.
"""

from __future__ import annotations

import math
from typing import Any

MAX_INT64 = 2**63 - 1
# orjson writes at most 255 levels; nothing the desk stores nests anywhere near this deep.
MAX_DEPTH = 64


def unstorable(value: Any, where: str = "", *, nul: bool = False) -> tuple[str, str] | None:
    """(path, problem) of the first part of a JSON-like value some projection cannot store:
    an integer past signed 64 bits, a NaN or infinity, a NUL character (PostgreSQL's text and
    JSONB refuse it) in a string or a key unless `nul` allows it (for input whose NULs are
    dropped on the way in), nesting deeper than MAX_DEPTH. None when all of it can be stored."""
    stack = [(where, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path or "body", f"nests deeper than {MAX_DEPTH} levels"
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int):
            if not -MAX_INT64 - 1 <= item <= MAX_INT64:
                return path or "body", "is out of range"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path or "body", "must be a finite number"
        elif isinstance(item, str):
            if "\x00" in item and not nul:
                return path or "body", "must not contain NUL (\\u0000) characters"
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key and not nul:
                    return name, "names must not contain NUL (\\u0000) characters"
                stack.append((name, inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{path}[{i}]", inner, depth + 1) for i, inner in reversed(list(enumerate(item)))
            )
    return None
