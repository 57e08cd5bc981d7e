"""Who is calling: API keys (X-API-Key) for integrations, bearer tokens for agents."""

from __future__ import annotations

from sqlalchemy import Engine

from libs.platform import access
from libs.platform.database import reading
from libs.platform.errors import Forbidden, Unauthorized


def require_api_key(engine: Engine, key: str | None, remote_ip: str | None) -> access.ApiKey:
    with reading(engine) as conn:
        api_key = access.verify_api_key(conn, key)
    if api_key is None:
        raise Unauthorized("Valid API key required")
    if not api_key.allows(remote_ip):
        raise Forbidden("API key not authorized from this source IP")
    if not api_key.can_create_tickets:
        raise Unauthorized("API key not authorized")
    return api_key


def require_agent(engine: Engine, authorization: str | None) -> access.Agent:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an agent token is required (Authorization: Bearer <token>)")
    with reading(engine) as conn:
        agent = access.verify_agent_token(conn, token.strip())
    if agent is None:
        raise Unauthorized("invalid agent token")
    return agent
