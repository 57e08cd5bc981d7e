"""Domain-level refusals. One handler (libs.platform.http) maps them to one JSON error shape."""

from __future__ import annotations

from typing import Any


class DeskstreamError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DeskstreamError):
    status = 400
    code = "validation_failed"


class Unauthorized(DeskstreamError):
    status = 401
    code = "unauthorized"


class BadCredentials(Unauthorized):
    """An API key or agent token was presented and is wrong: logged with `prefix` only,
    counted, and throttled per client address (libs.platform.auth_guard)."""

    def __init__(self, message: str, *, credential: str, prefix: str | None) -> None:
        super().__init__(message)
        self.credential = credential  # api_key | agent_token (a metric label)
        self.prefix = prefix  # the public part of a well-formed key, else None


class Forbidden(DeskstreamError):
    status = 403
    code = "forbidden"


class NotFound(DeskstreamError):
    status = 404
    code = "not_found"


class Conflict(DeskstreamError):
    status = 409
    code = "conflict"


class UnsupportedMediaType(DeskstreamError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(DeskstreamError):
    status = 503
    code = "unavailable"
