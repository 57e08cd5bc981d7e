"""CloudEvents in over HTTP: `POST /api/v1/events` (structured or binary mode).

An integration sends with its API key (`X-API-Key`, as for /api/tickets.json), or an agent with
a bearer token. 202 `{ticket, action, duplicate}` once the effect is committed; the same
(source, id) again answers the first ticket with `duplicate: true`. 422 when no event mapping
takes the event (nothing is written), 400 when it is not a valid CloudEvent; a ticket the desk's
rules refuse answers 403 (ban list, reject filter) or 422 (open-ticket limit).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from libs.platform.auth import require_agent, require_api_key
from libs.platform.http import json_response
from libs.platform.http_input import trace_metadata
from services.intake import inbound
from services.intake.domain import cloudevents
from services.platform import current_platform

bp = Blueprint("intake_events", __name__)


@bp.post("/api/v1/events")
def receive_event() -> Response:
    platform = current_platform()
    if request.headers.get("Authorization"):
        agent = require_agent(platform.engine, request.headers.get("Authorization"))
        actor = f"agent:{agent.id}"
    else:
        key = require_api_key(
            platform.engine, request.headers.get("X-API-Key"), request.remote_addr
        )
        actor = f"apikey:{key.prefix}"
    event = cloudevents.from_http(dict(request.headers.items()), request.get_data(cache=False))
    received = inbound.receive_cloudevent(
        platform.store,
        event,
        max_open_tickets=platform.settings.max_open_tickets,
        metadata={"actor": actor, **trace_metadata()},
    )
    return json_response(received.as_json(), 202)
