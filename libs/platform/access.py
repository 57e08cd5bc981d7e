"""Credentials: API keys and agents, written with their `<Thing>Defined` event in one transaction.

This is an inline projection of the config streams (rebuildable from the log) that every HTTP
service reads to authenticate. API keys and agent tokens are 160-bit random secrets, so a
SHA-256 of the key is safe to store and cheap to check per request; passwords are argon2.
The prefix (never the secret) is what logs and admin pages show.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import JSON, Boolean, Column, Connection, Integer, String, Table, func, select

from libs.events.store import EventStore
from libs.events.tables import metadata
from libs.events.types.config import PERMISSIONS, config_stream_id
from libs.platform.configuration import define, next_id
from libs.platform.database import upsert
from libs.platform.errors import ValidationFailed

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("ip_allow", JSON, nullable=False),
    Column("can_create_tickets", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("token_prefix", String(16), nullable=True, unique=True),
    Column("token_hash", String(64), nullable=True),
    Column("department_id", Integer, nullable=True),
    Column("extended_department_ids", JSON, nullable=False),
    Column("permissions", JSON, nullable=True),  # the role's, resolved (role_permissions)
    Column("admin", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
)

_hasher = PasswordHasher()

# Defined with none (as every agent was before roles), an agent holds the default role: all
# but merge and link, which change other tickets than the one at hand.
DEFAULT_PERMISSIONS = frozenset(PERMISSIONS) - {"ticket.merge", "ticket.link"}


def role_permissions(listed: Collection[str] | None) -> frozenset[str]:
    """What an agent defined with `listed` permissions may do (besides an admin's all)."""
    return frozenset(listed) if listed else DEFAULT_PERMISSIONS


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    ip_allow: list[str]
    can_create_tickets: bool

    def allows(self, remote_ip: str | None) -> bool:
        """An empty allow-list admits any address."""
        return not self.ip_allow or _ip_allowed(remote_ip, self.ip_allow)


@dataclass(frozen=True)
class Agent:
    id: int
    name: str
    email: str
    admin: bool
    department_ids: frozenset[int]
    permissions: frozenset[str] = DEFAULT_PERMISSIONS

    def can_see_department(self, department_id: int | None) -> bool:
        return self.admin or (department_id is not None and department_id in self.department_ids)

    def may(self, permission: str) -> bool:
        return self.admin or permission in self.permissions


def _new_secret(kind: str) -> tuple[str, str, str]:
    """(full key, prefix, sha256 hex): `ds<kind>_<prefix>_<secret>`."""
    prefix = secrets.token_hex(4)
    key = f"ds{kind}_{prefix}_{secrets.token_urlsafe(20)}"
    return key, prefix, _digest(key)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str, kind: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != f"ds{kind}" or len(parts[1]) != 8:
        return None
    return parts[1]


def credential_prefix(key: str | None) -> str | None:
    """The public prefix of a key or token in our format (all a log may show of it), else None."""
    parts = (key or "").split("_", 2)
    if len(parts) == 3 and parts[0] in ("dsk", "dst") and re.fullmatch("[0-9a-f]{8}", parts[1]):
        return parts[1]
    return None


def create_api_key(
    store: EventStore, ip_allow: list[str], *, notes: str = "", actor: str = "cli"
) -> tuple[int, str]:
    """Define a new API key; returns (id, key). The key is shown once and stored only hashed."""
    for ip in ip_allow:
        ipaddress.ip_network(ip, strict=False)  # ValueError names the bad entry
    with store.transaction() as conn:
        store.lock_appends(conn)
        key_id = next_id(conn, "api-key")
        data = {
            "id": key_id,
            "ip_allow": ip_allow,
            "can_create_tickets": True,
            "active": True,
            "notes": notes,
        }
        _, _, key = define_api_key(store, data, conn=conn, expected_version=0, actor=actor)
    assert key is not None  # a new key always gets one
    return key_id, key


def define_api_key(
    store: EventStore,
    data: dict[str, Any],
    *,
    conn: Connection,
    expected_version: int | None = None,
    actor: str = "cli",
) -> tuple[int, dict[str, Any], str | None]:
    """Append an API key's definition and keep its `api_keys` row in step, in the caller's
    transaction (which holds the append lock). `data` is everything but the secret.

    A new key gets its secret, returned once (else None); an existing one keeps it. Returns
    (new stream version, the stored definition (prefix and hash included), key).
    """
    previous = store.read_stream(config_stream_id("api-key", data["id"]), conn=conn)
    key = None
    if previous:
        prefix, digest = previous[-1].data["prefix"], previous[-1].data["key_hash"]
    else:
        key, prefix, digest = _new_secret("k")
    stored = {**data, "prefix": prefix, "key_hash": digest}
    version = define(
        store, "api-key", stored, conn=conn, expected_version=expected_version, actor=actor
    )
    project_api_key(conn, stored)
    return version, stored, key


def project_api_key(conn: Connection, data: dict[str, Any]) -> None:
    upsert(
        conn,
        api_keys,
        {
            "id": data["id"],
            "prefix": data["prefix"],
            "key_hash": data["key_hash"],
            "ip_allow": data["ip_allow"],
            "can_create_tickets": data["can_create_tickets"],
            "active": data["active"],
        },
        ["id"],
    )


def verify_api_key(conn: Connection, key: str | None) -> ApiKey | None:
    """The active key `key` names, or None; where it may be used from is `ApiKey.allows`."""
    prefix = _split(key or "", "k")
    if prefix is None:
        return None
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
    if (
        row is None
        or not row["active"]
        or not hmac.compare_digest(row["key_hash"], _digest(key or ""))
    ):
        return None
    return ApiKey(row["id"], row["prefix"], list(row["ip_allow"]), row["can_create_tickets"])


def _ip_allowed(remote_ip: str | None, allow: list[str]) -> bool:
    if not remote_ip:
        return False
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allow)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_agent(
    store: EventStore,
    *,
    email: str,
    name: str,
    password: str | None,
    admin: bool = False,
    department_id: int | None = None,
    username: str | None = None,
    permissions: Collection[str] = (),
    actor: str = "cli",
) -> tuple[int, str]:
    """Define a new agent with an API token; returns (id, token). Token shown once, stored hashed."""
    password_hash = hash_password(password) if password else None
    with store.transaction() as conn:
        store.lock_appends(conn)
        agent_id = next_id(conn, "agent")
        data = {
            "id": agent_id,
            "email": email,
            "name": name,
            "username": username or email.split("@")[0],
            "department_id": department_id,
            "extended_access": [],
            "permissions": list(permissions),
            "team_ids": [],
            "on_vacation": False,
            "admin": admin,
            "active": True,
        }
        _, token = define_agent(
            store, data, conn=conn, password_hash=password_hash, expected_version=0, actor=actor
        )
    assert token is not None  # a new agent always gets one
    return agent_id, token


def define_agent(
    store: EventStore,
    data: dict[str, Any],
    *,
    conn: Connection,
    password_hash: str | None = None,
    expected_version: int | None = None,
    actor: str = "cli",
) -> tuple[int, str | None]:
    """Append an agent's definition and keep its `agents` row in step, in the caller's
    transaction (which holds the append lock). `data` is everything but the credentials.

    A new agent gets an API token, returned once (else None); an existing one keeps its token
    and, unless `password_hash` is given (see `hash_password`), its password. Returns
    (new stream version, token). Email and username are unique (case-insensitively), and the
    last active admin stays one.
    """
    previous = store.read_stream(config_stream_id("agent", data["id"]), conn=conn)
    token = None
    if previous:
        kept = previous[-1].data
        token_hash = kept.get("token_hash")
        password_hash = password_hash or kept.get("password_hash")
    else:
        token, prefix, digest = _new_secret("t")
        token_hash = f"{prefix}:{digest}"
    _check_unique(conn, data)
    _check_an_admin_remains(conn, data)
    full = {**data, "password_hash": password_hash, "token_hash": token_hash}
    version = define(
        store, "agent", full, conn=conn, expected_version=expected_version, actor=actor
    )
    project_agent(conn, full)
    return version, token


def _check_unique(conn: Connection, data: dict[str, Any]) -> None:
    for key in ("email", "username"):
        taken = conn.execute(
            select(agents.c.id).where(
                func.lower(agents.c[key]) == data[key].lower(), agents.c.id != data["id"]
            )
        ).first()
        if taken is not None:
            message = f"another agent has {key} {data[key]!r}"
            raise ValidationFailed(f"{key}: {message}", field=key, errors={key: [message]})


def _check_an_admin_remains(conn: Connection, data: dict[str, Any]) -> None:
    if data["admin"] and data["active"]:
        return
    admins = select(agents.c.id).where(agents.c.admin.is_(True), agents.c.active.is_(True))
    if conn.execute(admins.where(agents.c.id == data["id"])).first() is None:
        return  # was no active admin before either
    if conn.execute(admins.where(agents.c.id != data["id"]).limit(1)).first() is None:
        where = "active" if data["admin"] else "admin"
        message = "this is the last active admin; make another agent admin first"
        raise ValidationFailed(f"{where}: {message}", field=where, errors={where: [message]})


def project_agent(conn: Connection, data: dict[str, Any]) -> None:
    token_prefix, _, token_hash = (data.get("token_hash") or "::").partition(":")
    upsert(
        conn,
        agents,
        {
            "id": data["id"],
            "email": data["email"],
            "username": data["username"],
            "name": data["name"],
            "password_hash": data.get("password_hash"),
            "token_prefix": token_prefix or None,
            "token_hash": token_hash or None,
            "department_id": data.get("department_id"),
            "extended_department_ids": [
                x["department_id"] for x in data.get("extended_access", [])
            ],
            "permissions": sorted(role_permissions(data.get("permissions"))),
            "admin": data.get("admin", False),
            "active": data.get("active", True),
        },
        ["id"],
    )


def _agent(row: Any) -> Agent:
    departments = set(row["extended_department_ids"] or [])
    if row["department_id"] is not None:
        departments.add(row["department_id"])
    return Agent(
        row["id"],
        row["name"],
        row["email"],
        row["admin"],
        frozenset(departments),
        role_permissions(row["permissions"]),
    )


def verify_agent_token(conn: Connection, token: str | None) -> Agent | None:
    prefix = _split(token or "", "t")
    if prefix is None:
        return None
    row = conn.execute(select(agents).where(agents.c.token_prefix == prefix)).mappings().first()
    if (
        row is None
        or not row["active"]
        or not hmac.compare_digest(row["token_hash"] or "", _digest(token or ""))
    ):
        return None
    return _agent(row)


def verify_password(conn: Connection, login: str, password: str) -> Agent | None:
    row = (
        conn.execute(select(agents).where((agents.c.email == login) | (agents.c.username == login)))
        .mappings()
        .first()
    )
    if row is None or not row["active"] or not row["password_hash"]:
        _hasher.hash(password)  # same cost either way: no user enumeration by timing
        return None
    try:
        _hasher.verify(row["password_hash"], password)
    except VerificationError:
        return None
    return _agent(row)
