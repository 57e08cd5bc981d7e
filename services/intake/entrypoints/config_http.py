"""The admin configuration API: `/api/v1/<collection>` (GET list, POST) and `/<id>` (GET, PUT).

Admins only. A PUT replaces the whole definition and may name the version it replaces
(`expected_version` in the body or `If-Match`); a stale one answers 409 with `current_version`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from libs.platform.auth import require_agent
from libs.platform.errors import Forbidden
from libs.platform.http import json_response
from libs.platform.http_input import expected_version, json_body
from services.intake import config_resources
from services.platform import current_platform

bp = Blueprint("config", __name__)

COLLECTIONS = {
    "departments": "department",
    "help-topics": "help-topic",
    "schedules": "schedule",
    "sla-plans": "sla-plan",
    "filters": "filter",
    "templates": "template",
    "teams": "team",
    "agents": "agent",
    "api-keys": "api-key",
    "event-mappings": "event-mapping",
    "banned-emails": "banned-email",
    "ticket-statuses": "ticket-status",
}
_COLLECTION = "<any({}):collection>".format(", ".join(f'"{c}"' for c in COLLECTIONS))


def _admin() -> str:
    """The calling admin, as the events' actor."""
    agent = require_agent(current_platform().engine, request.headers.get("Authorization"))
    if not agent.admin:
        raise Forbidden("configuration is for admins")
    return f"agent:{agent.id}"


@bp.get(f"/api/v1/{_COLLECTION}")
def list_config(collection: str) -> Response:
    _admin()
    items = config_resources.list_things(current_platform().store, COLLECTIONS[collection])
    return json_response({"items": items})


@bp.post(f"/api/v1/{_COLLECTION}")
def create_config(collection: str) -> Response:
    actor = _admin()
    created = config_resources.create_thing(
        current_platform().store, COLLECTIONS[collection], json_body(), actor=actor
    )
    headers = {"Location": f"/api/v1/{collection}/{created['id']}", "ETag": _etag(created)}
    return json_response(created, 201, headers=headers)


@bp.get(f"/api/v1/{_COLLECTION}/<int:thing_id>")
def get_config(collection: str, thing_id: int) -> Response:
    _admin()
    item = config_resources.get_thing(current_platform().store, COLLECTIONS[collection], thing_id)
    return json_response(item, headers={"ETag": _etag(item)})


@bp.put(f"/api/v1/{_COLLECTION}/<int:thing_id>")
def replace_config(collection: str, thing_id: int) -> Response:
    actor = _admin()
    body = json_body()
    version = expected_version(
        body.pop("expected_version", None) if isinstance(body, dict) else None
    )
    item = config_resources.replace_thing(
        current_platform().store,
        COLLECTIONS[collection],
        thing_id,
        body,
        expected_version=version,
        actor=actor,
    )
    return json_response(item, headers={"ETag": _etag(item)})


def _etag(item: dict[str, object]) -> str:
    return f'"{item["version"]}"'
