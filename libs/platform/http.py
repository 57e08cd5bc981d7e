"""The Flask base every service's HTTP app is built on: probes, metrics, one error shape."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from libs.events.errors import ConcurrencyError
from libs.platform.errors import DeskstreamError

log = logging.getLogger(__name__)

# name -> check returning None when fine, or the reason it is not ready.
ReadinessCheck = Callable[[], str | None]


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def create_base_app(
    name: str, readiness: dict[str, ReadinessCheck], *, max_request_bytes: int = 10 * 1024 * 1024
) -> Flask:
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "alive", "service": name})

    @app.get("/readyz")
    def readyz() -> Response:
        problems = {}
        for check_name, check in readiness.items():
            try:
                problem = check()
            except Exception as exc:  # a probe reports, it never raises
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                problems[check_name] = problem
        status = 503 if problems else 200
        return json_response({"ready": not problems, "service": name, "problems": problems}, status)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'"
        )
        return response

    register_error_handlers(app)
    return app


def _wants_plain_text() -> bool:
    # osTicket's API answers errors as plain text; clients of /api/tickets.* parse that.
    return request.path.startswith("/api/tickets.")


def error_response(status: int, code: str, message: str, **details: object) -> Response:
    if _wants_plain_text():
        return Response(message, status=status, mimetype="text/plain")
    return json_response({"error": {"code": code, "message": message, **details}}, status)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DeskstreamError)
    def domain_error(exc: DeskstreamError) -> Response:
        return error_response(exc.status, exc.code, exc.message, **exc.details)

    @app.errorhandler(ConcurrencyError)
    def concurrency_error(exc: ConcurrencyError) -> Response:
        return error_response(409, "conflict", str(exc), current_version=exc.actual)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", exc.orig)
        return error_response(503, "unavailable", "the database is unavailable; retry later")

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return error_response(
                503, "unavailable", "the database connection dropped; retry later"
            )
        log.exception("database error")
        return error_response(500, "internal_error", "internal error")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")
