"""intake's HTTP API: osTicket-compatible ticket creation and the v1 create endpoint."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, Response, request

from libs.platform.auth import require_agent, require_api_key
from libs.platform.errors import UnsupportedMediaType, ValidationFailed
from libs.platform.http import create_base_app, json_response
from services.intake import handlers
from services.intake.domain.payloads import open_ticket_from_osticket
from services.platform import Platform, current_platform, install

bp = Blueprint("intake", __name__)


def _json_body() -> Any:
    if not request.mimetype or request.mimetype != "application/json":
        raise UnsupportedMediaType("Unsupported data format: send Content-Type: application/json")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("the body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"Syntax error, malformed JSON: {exc}") from None


@bp.post("/api/tickets.json")
def create_osticket_json() -> Response:
    platform = current_platform()
    key = require_api_key(platform.engine, request.headers.get("X-API-Key"), request.remote_addr)
    command = open_ticket_from_osticket(_json_body(), request.remote_addr)
    number = handlers.open_ticket(
        platform.store,
        command,
        idempotency_key=_idempotency_key(f"apikey-{key.id}"),
        metadata={"actor": f"apikey:{key.prefix}", **_trace()},
    )
    return Response(number, status=201, mimetype="text/plain")


@bp.post("/api/v1/tickets")
def create_v1() -> Response:
    platform = current_platform()
    if request.headers.get("Authorization"):
        agent = require_agent(platform.engine, request.headers.get("Authorization"))
        actor, scope = f"agent:{agent.id}", f"agent-{agent.id}"
    else:
        key = require_api_key(
            platform.engine, request.headers.get("X-API-Key"), request.remote_addr
        )
        actor, scope = f"apikey:{key.prefix}", f"apikey-{key.id}"
    command = open_ticket_from_osticket(_json_body(), request.remote_addr)
    number = handlers.open_ticket(
        platform.store,
        command,
        idempotency_key=_idempotency_key(scope),
        metadata={"actor": actor, **_trace()},
    )
    return json_response(
        {"number": number, "version": 1}, 201, headers={"Location": f"/api/v1/tickets/{number}"}
    )


def _idempotency_key(scope: str) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 150:
        raise ValidationFailed("Idempotency-Key must be 1-150 characters")
    return f"{scope}:{key}"


def _trace() -> dict[str, str]:
    from libs.platform.tracing import current_traceparent

    traceparent = current_traceparent(request.headers.get("traceparent"))
    return {"traceparent": traceparent} if traceparent else {}


def create_app(platform: Platform) -> Flask:
    app = create_base_app(
        "intake",
        platform.readiness(),
        max_request_bytes=platform.settings.max_request_bytes,
        trusted_proxies=platform.settings.trusted_proxies,
    )
    install(app, platform)
    app.register_blueprint(bp)
    return app
