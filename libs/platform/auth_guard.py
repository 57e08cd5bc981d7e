"""Failed authentication on every HTTP app: logged (prefix only), counted, throttled per address.

`libs.platform.auth` raises `BadCredentials` when a request presented an API key or agent
token that is wrong; the handler here records it against the client address (as
`ClientAddress` resolved it: X-Forwarded-For only from DESKSTREAM_TRUSTED_PROXIES) and answers
401. Once an address is locked out, every request of it that carries credentials answers 429
with Retry-After before its credentials are looked at (see `libs.platform.throttle`).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from libs.events import metrics
from libs.platform.errors import BadCredentials
from libs.platform.http import error_response
from libs.platform.throttle import FailureLedger, client_key

log = logging.getLogger(__name__)

_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def install_auth_guard(app: Flask, ledger: FailureLedger) -> None:
    app.extensions["deskstream.auth_ledger"] = ledger

    @app.before_request
    def refuse_locked_out_address() -> Response | None:
        presented = request.headers.get("X-API-Key") or request.headers.get("Authorization")
        if not presented or request.path in _PROBES:
            return None  # nothing to guess with; probes stay reachable
        wait = ledger.retry_after(request.remote_addr)
        if wait is None:
            return None
        metrics.AUTH_THROTTLED.inc()
        response = error_response(
            429,
            "too_many_requests",
            f"Too many failed authentication attempts from this address; retry in {wait} s",
        )
        response.headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(BadCredentials)
    def bad_credentials(exc: BadCredentials) -> Response:
        address = client_key(request.remote_addr)
        locked_for = ledger.failed(request.remote_addr)
        metrics.AUTH_FAILURES.labels(exc.credential).inc()
        # The prefix is public (admin pages show it); the rest of a key never reaches a log.
        log.warning(
            "authentication failed: %s prefix=%s from %s on %s %s",
            exc.credential,
            exc.prefix or "-",
            address,
            request.method,
            request.path,
        )
        if locked_for is not None:
            metrics.AUTH_LOCKOUTS.inc()
            log.warning(
                "authentication locked out: %s for %d s after %d failures",
                address,
                locked_for,
                ledger.policy.limit,
            )
        return error_response(exc.status, exc.code, exc.message, **exc.details)
