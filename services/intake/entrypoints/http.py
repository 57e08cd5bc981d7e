"""intake's HTTP API: osTicket-compatible ticket creation and the v1 create endpoint."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

from libs.platform.auth import require_agent, require_api_key
from libs.platform.errors import ValidationFailed
from libs.platform.http import create_base_app, json_response
from libs.platform.http_input import json_body, trace_metadata
from services.intake import handlers
from services.intake.domain.payloads import open_ticket_from_osticket
from services.intake.entrypoints.config_http import bp as config_bp
from services.intake.entrypoints.tickets_http import bp as tickets_bp
from services.platform import Platform, current_platform, install

bp = Blueprint("intake", __name__)


@bp.post("/api/tickets.json")
def create_osticket_json() -> Response:
    platform = current_platform()
    key = require_api_key(platform.engine, request.headers.get("X-API-Key"), request.remote_addr)
    command = open_ticket_from_osticket(json_body(), request.remote_addr)
    number = handlers.open_ticket(
        platform.store,
        command,
        idempotency_key=_idempotency_key(f"apikey-{key.id}"),
        metadata={"actor": f"apikey:{key.prefix}", **trace_metadata()},
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
    command = open_ticket_from_osticket(json_body(), request.remote_addr)
    number = handlers.open_ticket(
        platform.store,
        command,
        idempotency_key=_idempotency_key(scope),
        metadata={"actor": actor, **trace_metadata()},
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


def create_app(platform: Platform) -> Flask:
    app = create_base_app(
        "intake",
        platform.readiness(),
        max_request_bytes=platform.settings.max_request_bytes,
        trusted_proxies=platform.settings.trusted_proxies,
    )
    install(app, platform)
    app.register_blueprint(bp)
    app.register_blueprint(config_bp)
    app.register_blueprint(tickets_bp)
    return app
