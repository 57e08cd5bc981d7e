"""What a JSON API request carries: its body, and the stream version a change expects."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from libs.platform.errors import UnsupportedMediaType, ValidationFailed


def json_body() -> Any:
    if not request.mimetype or request.mimetype != "application/json":
        raise UnsupportedMediaType("Unsupported data format: send Content-Type: application/json")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("the body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"Syntax error, malformed JSON: {exc}") from None


def expected_version(in_body: object = None, *, required: bool = False) -> int | None:
    """The version a change expects: the body's `expected_version` or an `If-Match` header
    (`3`, `"3"` or `W/"3"`; `*` names none). Both given must agree; None when neither says."""
    if in_body is not None and (
        isinstance(in_body, bool) or not isinstance(in_body, int) or in_body < 0
    ):
        raise ValidationFailed("expected_version must be an integer >= 0", field="expected_version")
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
    if not (tag.isascii() and tag.isdigit()):
        raise ValidationFailed(
            'If-Match must name one version, e.g. If-Match: "3"', field="If-Match"
        )
    return int(tag)


def trace_metadata() -> dict[str, str]:
    """The caller's W3C traceparent (or this request's span) for the events a request appends."""
    from libs.platform.tracing import current_traceparent

    traceparent = current_traceparent(request.headers.get("traceparent"))
    return {"traceparent": traceparent} if traceparent else {}
