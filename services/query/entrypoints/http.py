"""query's read API."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

from libs.events.types.fields import MAX_ID
from libs.platform.auth import require_agent
from libs.platform.database import reading
from libs.platform.errors import ValidationFailed
from libs.platform.http import create_base_app, json_response
from services.platform import Platform, current_platform, install
from services.query import readers

bp = Blueprint("query", __name__)


@bp.get("/api/v1/tickets/<number:number>")
def get_ticket(number: str) -> Response:
    platform = current_platform()
    agent = require_agent(platform.engine, request.headers.get("Authorization"))
    with reading(platform.engine) as conn:
        ticket = readers.get_ticket(conn, number, agent)
    return json_response(ticket, headers={"ETag": f'"{ticket["version"]}"'})


@bp.get("/api/v1/tickets/<number:number>/events")
def get_ticket_events(number: str) -> Response:
    platform = current_platform()
    agent = require_agent(platform.engine, request.headers.get("Authorization"))
    with reading(platform.engine) as conn:
        events = readers.ticket_events(conn, platform.store, number, agent)
    return json_response({"number": number, "events": events})


@bp.get("/api/v1/queues/<name>/tickets")
def get_queue(name: str) -> Response:
    platform = current_platform()
    agent = require_agent(platform.engine, request.headers.get("Authorization"))
    page = _int_arg("page", 1, high=MAX_ID)
    per_page = _int_arg("per_page", 50, high=200)
    with reading(platform.engine) as conn:
        result = readers.queue(
            conn,
            name,
            agent,
            page=page,
            per_page=per_page,
            sort=request.args.get("sort", "-created"),
        )
    return json_response(result)


def _int_arg(name: str, default: int, *, high: int) -> int:
    """A query-string integer in 1..high; anything else is a 400 naming the parameter (an
    unbounded page overflows the database's OFFSET)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or not 1 <= int(text) <= high:
        raise ValidationFailed(f"{name} must be an integer from 1 to {high}", field=name)
    return int(text)


def create_app(platform: Platform) -> Flask:
    app = create_base_app(
        "query", platform.readiness(), trusted_proxies=platform.settings.trusted_proxies
    )
    install(app, platform)
    app.register_blueprint(bp)
    return app
