"""gateway's HTTP app."""

from __future__ import annotations

from flask import Blueprint, Flask, Response

from libs.platform.http import create_base_app
from services.platform import Platform, install

bp = Blueprint("gateway", __name__)

LANDING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Deskstream</title></head>
<body><h1>Deskstream</h1><p>The help desk is running.</p>
<ul><li>Open a ticket: <code>POST /api/tickets.json</code> (osTicket-compatible, X-API-Key)</li>
<li>Agents: <code>GET /api/v1/queues/open/tickets</code> (Authorization: Bearer &lt;token&gt;)</li>
<li>Operations: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li></ul>
</body></html>"""


@bp.get("/")
def landing() -> Response:
    return Response(LANDING, mimetype="text/html")


def create_app(platform: Platform) -> Flask:
    app = create_base_app(
        "gateway", platform.readiness(), trusted_proxies=platform.settings.trusted_proxies
    )
    install(app, platform)
    app.register_blueprint(bp)
    return app
