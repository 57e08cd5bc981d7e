"""intake's HTTP API: osTicket-compatible ticket creation (JSON, XML) and the v1 create endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, request

from libs.platform.auth import require_agent, require_api_key
from libs.platform.errors import UnsupportedMediaType, ValidationFailed
from libs.platform.http import create_base_app, json_response
from libs.platform.http_input import json_body, trace_metadata
from services.intake import handlers
from services.intake.domain.mail.rules import Refusal
from services.intake.domain.payloads import open_ticket_from_osticket
from services.intake.domain.xml_payload import osticket_xml_payload
from services.intake.email_intake import receive_email
from services.intake.entrypoints.config_http import bp as config_bp
from services.intake.entrypoints.events_http import bp as events_bp
from services.intake.entrypoints.openapi import bp as openapi_bp
from services.intake.entrypoints.tickets_http import bp as tickets_bp
from services.platform import Platform, current_platform, install

bp = Blueprint("intake", __name__)


@bp.post("/api/tickets.json")
def create_osticket_json() -> Response:
    return _create_osticket(json_body)


@bp.post("/api/tickets.xml")
def create_osticket_xml() -> Response:
    return _create_osticket(_xml_body)


def _xml_body() -> dict[str, Any]:
    if request.mimetype not in ("application/xml", "text/xml"):
        raise UnsupportedMediaType("Unsupported data format: send Content-Type: application/xml")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("the body is empty")
    return osticket_xml_payload(raw)


def _create_osticket(read_body: Callable[[], Any]) -> Response:
    """osTicket's create: the key (and its source IP) first, then the body in either format."""
    platform = current_platform()
    key = require_api_key(platform.engine, request.headers.get("X-API-Key"), request.remote_addr)
    command = open_ticket_from_osticket(read_body(), request.remote_addr)
    number = handlers.open_ticket(
        platform.store,
        command,
        max_open_tickets=platform.settings.max_open_tickets,
        idempotency_key=_idempotency_key(f"apikey-{key.id}"),
        metadata={"actor": f"apikey:{key.prefix}", **trace_metadata()},
    )
    return Response(number, status=201, mimetype="text/plain")


# osTicket's answers for email it will not take; other refusals are 422 with the reason.
_REFUSED_STATUS = {Refusal.UNPARSEABLE: 400, Refusal.BANNED: 403, Refusal.REJECTED: 403}


@bp.post("/api/tickets.email")
def create_osticket_email() -> Response:
    """Remote piping: the body is one raw RFC 822 message. 201 with the ticket's number once
    committed (also for a message already received: the answer is its ticket); a message
    refused before is refused again, with the same status."""
    platform = current_platform()
    require_api_key(platform.engine, request.headers.get("X-API-Key"), request.remote_addr)
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("the body must be a raw RFC 822 email")
    outcome = receive_email(platform, raw, channel="api")
    if outcome.refused is None:
        return Response(outcome.number or "", status=201, mimetype="text/plain")
    message = f"Unable to create new ticket: {outcome.reason}"
    return Response(
        message, status=_REFUSED_STATUS.get(outcome.refused, 422), mimetype="text/plain"
    )


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
        max_open_tickets=platform.settings.max_open_tickets,
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
    app.register_blueprint(events_bp)
    app.register_blueprint(openapi_bp)  # describes the routes this app serves
    return app
