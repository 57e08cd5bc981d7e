"""What a JSON API request carries: its body, and the stream version a change expects."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from libs.events.storable import unstorable
from libs.events.types.fields import MAX_ID
from libs.platform.errors import UnsupportedMediaType, ValidationFailed


def json_body() -> Any:
    if not request.mimetype or request.mimetype != "application/json":
        raise UnsupportedMediaType("Unsupported data format: send Content-Type: application/json")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("the body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"Syntax error, malformed JSON: {exc}") from None
    # Refused here, whichever endpoint: a value no projection can store stops a read model.
    problem = unstorable(body)
    if problem is not None:
        where, what = problem
        raise ValidationFailed(f"{where} {what}", field=where)
    return body


def expected_version(in_body: object = None, *, required: bool = False) -> int | None:
    """The version a change expects: the body's `expected_version` or an `If-Match` header
    (`3`, `"3"` or `W/"3"`; `*` names none). Both given must agree; None when neither says."""
    if in_body is not None and (
        isinstance(in_body, bool) or not isinstance(in_body, int) or not 0 <= in_body <= MAX_ID
    ):
        raise ValidationFailed(
            f"expected_version must be an integer from 0 to {MAX_ID}", field="expected_version"
        )
    header = _if_match(request.headers.get("If-Match"))
    if in_body is not None and header is not None and in_body != header:
        raise ValidationFailed(
            "expected_version and If-Match name different versions", field="expected_version"
        )
    version = in_body if in_body is not None else header
    if version is None and required:
        raise ValidationFailed(
            "expected_version is required (the version you saw; or send If-Match)",
            field="expected_version",
        )
    return version


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    # Bounded like the body's: stream versions are 32-bit columns.
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 10 or int(tag) > MAX_ID:
        raise ValidationFailed(
            'If-Match must name one version, e.g. If-Match: "3"', field="If-Match"
        )
    return int(tag)


def trace_metadata() -> dict[str, str]:
    """The caller's W3C traceparent (or this request's span) for the events a request appends."""
    from libs.platform.tracing import current_traceparent

    traceparent = current_traceparent(request.headers.get("traceparent"))
    return {"traceparent": traceparent} if traceparent else {}
