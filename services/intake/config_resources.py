"""Admin configuration resources: read the current definitions off the config streams, and
append a checked `<Thing>Defined` for each change (libs.platform.configuration.define).

A thing's current definition is the latest event of its `config-<thing>-<id>` stream; its
version is that stream's version. Writes validate inside the append lock, so the references
they check cannot change before the commit.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select

from libs.events.store import EventStore
from libs.events.tables import events
from libs.events.types.config import config_stream_id
from libs.platform import access
from libs.platform.configuration import define, definitions, next_id
from libs.platform.database import reading
from libs.platform.errors import Conflict, NotFound
from services.intake.domain import config_rules
from services.intake.domain.config_rules import Existing

HIDDEN = {"password_hash", "token_hash", "key_hash"}  # credential hashes never leave the server
SECRETS = {"agent": "token", "api-key": "key"}  # a new one's secret, in the create answer only


def list_things(store: EventStore, thing: str) -> list[dict[str, Any]]:
    with reading(store.engine) as conn:
        return [_public(data, version) for version, data in definitions(conn, store, thing)]


def get_thing(store: EventStore, thing: str, thing_id: int) -> dict[str, Any]:
    with reading(store.engine) as conn:
        found = definitions(conn, store, thing, thing_id)
    if not found:
        raise NotFound(f"there is no {_label(thing)} {thing_id}")
    version, data = found[0]
    return _public(data, version)


def create_thing(store: EventStore, thing: str, body: object, *, actor: str) -> dict[str, Any]:
    """Define a new thing; its state with `id` and `version` (and, for an agent or API key, its
    secret, shown this once)."""
    definition = config_rules.parse(thing, body)
    password_hash = access.hash_password(definition.password) if definition.password else None
    with store.transaction() as conn:
        store.lock_appends(conn)
        data = {"id": next_id(conn, thing), **definition.data}
        config_rules.check(thing, data, _existing(conn, store, thing))
        version, stored, secret = _define(
            store,
            thing,
            data,
            conn=conn,
            password_hash=password_hash,
            expected_version=0,
            actor=actor,
        )
    created = _public(stored, version)
    if secret is not None:
        created[SECRETS[thing]] = secret
    return created


def replace_thing(
    store: EventStore,
    thing: str,
    thing_id: int,
    body: object,
    *,
    expected_version: int | None,
    actor: str,
) -> dict[str, Any]:
    """Replace a thing's whole definition; with `expected_version`, only if it is still current."""
    definition = config_rules.parse(thing, body, thing_id=thing_id)
    password_hash = access.hash_password(definition.password) if definition.password else None
    with store.transaction() as conn:
        store.lock_appends(conn)
        current = store.stream_version(config_stream_id(thing, thing_id), conn=conn)
        if current == 0:
            raise NotFound(f"there is no {_label(thing)} {thing_id}")
        if expected_version is not None and expected_version != current:
            raise Conflict(
                f"{_label(thing)} {thing_id} is at version {current}, not {expected_version}",
                current_version=current,
            )
        data = {"id": thing_id, **definition.data}
        config_rules.check(thing, data, _existing(conn, store, thing))
        version, stored, _ = _define(
            store,
            thing,
            data,
            conn=conn,
            password_hash=password_hash,
            expected_version=current,
            actor=actor,
        )
    return _public(stored, version)


def _define(
    store: EventStore,
    thing: str,
    data: dict[str, Any],
    *,
    conn: Connection,
    password_hash: str | None,
    expected_version: int,
    actor: str,
) -> tuple[int, dict[str, Any], str | None]:
    """(new version, the stored definition, a new agent's or API key's secret)."""
    if thing == "agent":  # with its credentials and its `agents` row, in this transaction
        version, token = access.define_agent(
            store,
            data,
            conn=conn,
            password_hash=password_hash,
            expected_version=expected_version,
            actor=actor,
        )
        return version, data, token
    if thing == "api-key":  # with its secret and its `api_keys` row, in this transaction
        return access.define_api_key(
            store, data, conn=conn, expected_version=expected_version, actor=actor
        )
    version = define(store, thing, data, conn=conn, expected_version=expected_version, actor=actor)
    return version, data, None


def _existing(conn: Connection, store: EventStore, thing: str) -> Existing:
    ids: dict[str, set[int]] = defaultdict(set)
    first_events = select(events.c.stream_id).where(
        events.c.stream_id.like("config-%"), events.c.version == 1
    )
    for stream in conn.execute(first_events).scalars():
        name, _, raw_id = stream.removeprefix("config-").rpartition("-")
        ids[name].add(int(raw_id))
    parents: dict[int, int | None] = {}
    if thing == "department":
        parents = {data["id"]: data.get("parent_id") for _, data in definitions(conn, store, thing)}
    names: dict[str, int] = {}
    if thing == "ticket-status":
        names = {data["name"]: data["id"] for _, data in definitions(conn, store, thing)}
    return Existing(ids=ids, department_parents=parents, status_names=names)


def _public(data: dict[str, Any], version: int) -> dict[str, Any]:
    return {
        "id": data["id"],
        "version": version,
        **{k: v for k, v in data.items() if k != "id" and k not in HIDDEN},
    }


def _label(thing: str) -> str:
    return thing.replace("-", " ")
