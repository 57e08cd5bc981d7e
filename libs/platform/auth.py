"""Who is calling: API keys (X-API-Key) for integrations, bearer tokens for agents.

A wrong credential raises `BadCredentials` (counted and throttled per address); a missing one
is a plain `Unauthorized`, since nothing was guessed."""

from __future__ import annotations

from sqlalchemy import Engine

from libs.platform import access
from libs.platform.database import reading
from libs.platform.errors import BadCredentials, Forbidden, Unauthorized


def require_api_key(engine: Engine, key: str | None, remote_ip: str | None) -> access.ApiKey:
    with reading(engine) as conn:
        api_key = access.verify_api_key(conn, key)
    if api_key is None:
        if not key:
            raise Unauthorized("Valid API key required")
        prefix = access.credential_prefix(key)
        raise BadCredentials("Valid API key required", credential="api_key", prefix=prefix)
    if not api_key.allows(remote_ip):
        raise Forbidden("API key not authorized from this source IP")
    if not api_key.can_create_tickets:
        raise Unauthorized("API key not authorized")
    return api_key


def require_agent(engine: Engine, authorization: str | None) -> access.Agent:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        message = "an agent token is required (Authorization: Bearer <token>)"
        if not authorization:
            raise Unauthorized(message)
        raise BadCredentials(message, credential="agent_token", prefix=None)  # other schemes
    with reading(engine) as conn:
        agent = access.verify_agent_token(conn, token.strip())
    if agent is None:
        prefix = access.credential_prefix(token.strip())
        raise BadCredentials("invalid agent token", credential="agent_token", prefix=prefix)
    return agent
