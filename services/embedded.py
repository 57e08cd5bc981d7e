"""The embedded platform's HTTP app (intake + query + gateway on one port) and first start."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from flask import Flask

from libs.platform.access import create_agent
from libs.platform.http import create_base_app
from services.gateway.entrypoints.http import bp as gateway_bp
from services.intake.config import seed_defaults
from services.intake.entrypoints.config_http import bp as config_bp
from services.intake.entrypoints.events_http import bp as intake_events_bp
from services.intake.entrypoints.http import bp as intake_bp
from services.intake.entrypoints.openapi import bp as openapi_bp
from services.intake.entrypoints.tickets_http import bp as intake_tickets_bp
from services.platform import Platform, install
from services.query.entrypoints.http import bp as query_bp


def embedded_app(platform: Platform) -> Flask:
    app = create_base_app(
        "deskstream",
        platform.readiness(),
        max_request_bytes=platform.settings.max_request_bytes,
        trusted_proxies=platform.settings.trusted_proxies,
    )
    install(app, platform)
    for bp in (intake_bp, intake_tickets_bp, intake_events_bp, config_bp, query_bp, gateway_bp):
        app.register_blueprint(bp)
    app.register_blueprint(openapi_bp)  # last: it documents the v1 routes registered above
    return app


def first_start(platform: Platform, say: Callable[[str], None]) -> None:
    """Seed the demo help desk and an admin once; print the admin's login (only that once)."""
    if not seed_defaults(platform.store):
        return
    password = secrets.token_urlsafe(12)
    _, token = create_agent(
        platform.store,
        email="admin@deskstream.local",
        name="Admin",
        password=password,
        admin=True,
        username="admin",
        department_id=1,
    )
    say(
        "Seeded the demo help desk: department Support, help topic General Inquiry, Default SLA (18 h)."
    )
    say(f"Admin login: admin / {password}")
    say(f"Admin API token: {token}")
