"""The Flask base every service's HTTP app is built on: probes, metrics, one error shape."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

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


class TicketNumber(BaseConverter):
    """`<number:number>`: a ticket number is digits (String(20) in every table). Anything else
    is no ticket: 404 from routing, never a lookup with bytes a database refuses (NUL)."""

    regex = r"[0-9]{1,20}"


def create_base_app(
    name: str,
    readiness: dict[str, ReadinessCheck],
    *,
    max_request_bytes: int = 10 * 1024 * 1024,
    trusted_proxies: str = "127.0.0.1,::1",
) -> Flask:
    app = Flask(name)
    app.url_map.converters["number"] = TicketNumber
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.wsgi_app = ClientAddress(app.wsgi_app, trusted_proxies)  # type: ignore[method-assign]

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


class ClientAddress:
    """WSGI middleware: the client address behind trusted proxies (osTicket's rule).

    X-Forwarded-For is believed only when the direct peer is a trusted proxy; the chain is then
    walked right to left and the first address that is not a trusted proxy is the client.
    """

    def __init__(self, app: Any, trusted: str) -> None:
        self.app = app
        self.trusted = [
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted.split(",") if p.strip()
        ]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self._is_trusted(peer):
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                if not self._is_trusted(hop):
                    environ["REMOTE_ADDR"] = hop
                    break
        return self.app(environ, start_response)
