"""Admin configuration: a request body -> a `<Thing>Defined` state, and the checks it must pass.

`parse` loads a body with the thing's event schema (the server owns `id` and, for agents, the
credential hashes; an agent body may carry a write-only `password`). `check` is what a schema
cannot say: references to other things exist, an auto-assign rule names one target, a filter or
schedule compiles. Every refusal is a `ValidationFailed` whose `field` is a path into the body
(`rules[0].value`, `hours.mon[1]`, `auto_assign.team_id`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

from libs.events.types.config import CONFIG_TYPES, PERMISSIONS
from libs.events.types.fields import STATUSES
from libs.platform.errors import ValidationFailed
from libs.platform.validation import load
from services.intake.domain.cloudevents import EventMapping, InvalidMapping
from services.routing.domain.filters import Filter, InvalidFilter
from services.sla.domain.calendar import InvalidSchedule, Schedule

THINGS = (
    "department",
    "help-topic",
    "schedule",
    "sla-plan",
    "filter",
    "template",
    "team",
    "agent",
    "api-key",
    "event-mapping",
    "banned-email",
    "ticket-status",
)
# never taken from clients (the hashes are never shown either; an API key's prefix is)
SERVER_FIELDS = {"agent": ("password_hash", "token_hash"), "api-key": ("prefix", "key_hash")}
PASSWORD_LENGTH = (8, 1024)

# thing -> (path into the definition, thing it names); `x[]` is each entry of the list `x`.
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "department": (
        ("parent_id", "department"),
        ("manager_id", "agent"),
        ("sla_plan_id", "sla-plan"),
        ("schedule_id", "schedule"),
        ("auto_assign.agent_id", "agent"),
        ("auto_assign.team_id", "team"),
    ),
    "help-topic": (
        ("department_id", "department"),
        ("sla_plan_id", "sla-plan"),
        ("auto_assign.agent_id", "agent"),
        ("auto_assign.team_id", "team"),
    ),
    "sla-plan": (("schedule_id", "schedule"),),
    "team": (("lead_id", "agent"), ("member_ids[]", "agent")),
    "agent": (
        ("department_id", "department"),
        ("extended_access[].department_id", "department"),
        ("team_ids[]", "team"),
    ),
    "event-mapping": (("help_topic_id", "help-topic"),),
}
# Filter action type -> the thing its value names.
ACTION_REFERENCES = {
    "department": "department",
    "sla_plan": "sla-plan",
    "help_topic": "help-topic",
    "assign_agent": "agent",
    "assign_team": "team",
    "canned_response": "template",
}


@dataclass(frozen=True)
class Definition:
    """A parsed body: the state to store (JSON types, without `id`) and an agent's new password."""

    data: dict[str, Any]
    password: str | None = None


@dataclass(frozen=True)
class Existing:
    """What a definition may refer to: the defined ids of each thing, the department tree, and
    the ticket statuses' names (name -> id)."""

    ids: Mapping[str, Collection[int]] = field(default_factory=dict)
    department_parents: Mapping[int, int | None] = field(default_factory=dict)
    status_names: Mapping[str, int] = field(default_factory=dict)

    def has(self, thing: str, thing_id: int) -> bool:
        return thing_id in self.ids.get(thing, ())


def invalid(where: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{where}: {message}", field=where, errors={where: [message]})


def parse(thing: str, body: object, *, thing_id: int | None = None) -> Definition:
    """Load a POST (`thing_id` None) or PUT body; unknown keys are refused."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    body = dict(body)
    if "id" in body:
        given = body.pop("id")
        if thing_id is None:
            raise invalid("id", "the server assigns ids; leave it out")
        if type(given) is not int or given != thing_id:
            raise invalid("id", f"the body names {given!r} but the URL {thing_id}")
    password = _password(body.pop("password")) if thing == "agent" and "password" in body else None
    if thing == "api-key":
        body.pop("prefix", None)  # shown but read-only, so a GET's answer may be PUT back
        if "ip_allow" not in body:  # a forgotten list would admit any address
            raise invalid("ip_allow", "list the networks the key may be used from ([] for any)")
    schema = _schema(thing)
    return Definition(schema.dump(load(schema, body)), password)


def check(thing: str, data: Mapping[str, Any], existing: Existing) -> None:
    """What the schema cannot say about a full definition (with its `id`)."""
    if thing == "filter":
        _check_filter(data, existing)
    elif thing == "schedule":
        _check_schedule(data)
    elif thing == "api-key":
        _check_networks(data)
    elif thing == "event-mapping":
        _check_event_mapping(data)
    elif thing == "agent":
        _check_permissions(data)
    elif thing == "ticket-status":
        _check_ticket_status(data, existing)
    if data.get("auto_assign") is not None:
        _check_auto_assign(data["auto_assign"])
    for path, target in REFERENCES.get(thing, ()):
        for where, value in _values(data, path):
            if value is not None and not existing.has(target, value):
                raise invalid(where, f"there is no {target.replace('-', ' ')} {value}")
    if thing == "department":
        _check_tree(data, existing)


def body_schema(thing: str) -> Schema:
    """The schema a POST or PUT body of `thing` loads with (the OpenAPI document shows it)."""
    return _schema(thing)


_schemas: dict[str, Schema] = {}  # stateless once built, costly to build: one per thing


def _schema(thing: str) -> Schema:
    schema = _schemas.get(thing)
    if schema is None:
        if thing not in THINGS:
            raise ValueError(f"{thing!r} is not configured through this API")
        schema_class = CONFIG_TYPES[thing][1]
        schema = _schemas[thing] = schema_class(exclude=("id", *SERVER_FIELDS.get(thing, ())))
    return schema


def _password(value: object) -> str | None:
    if value is None:
        return None
    shortest, longest = PASSWORD_LENGTH
    if not isinstance(value, str) or not shortest <= len(value) <= longest:
        raise invalid("password", f"must be a string of {shortest} to {longest} characters")
    return value


def _check_filter(data: Mapping[str, Any], existing: Existing) -> None:
    try:
        Filter.from_definition(data)
    except InvalidFilter as exc:
        raise invalid(exc.field, exc.message) from None
    for index, action in enumerate(data.get("actions", [])):
        target = ACTION_REFERENCES.get(action["type"])
        if target is not None and not existing.has(target, action["value"]):
            raise invalid(
                f"actions[{index}].value",
                f"there is no {target.replace('-', ' ')} {action['value']}",
            )


def _check_event_mapping(data: Mapping[str, Any]) -> None:
    try:
        EventMapping.from_definition(data)
    except InvalidMapping as exc:
        raise invalid(exc.field, exc.message) from None


def _check_permissions(data: Mapping[str, Any]) -> None:
    """Only the permissions Deskstream enforces; none listed means the default role."""
    for index, permission in enumerate(data.get("permissions", [])):
        if permission not in PERMISSIONS:
            raise invalid(f"permissions[{index}]", f"must be one of {', '.join(PERMISSIONS)}")


def _check_ticket_status(data: Mapping[str, Any], existing: Existing) -> None:
    """Tickets record their status by name: a name is one status's, for good."""
    name = data["name"]
    if name in STATUSES:
        raise invalid("name", f"{name} is a built-in status")
    named = existing.status_names.get(name)
    if named is not None and named != data["id"]:
        raise invalid("name", f"ticket status {named} is already called {name}")
    if named is None and data["id"] in existing.status_names.values():
        raise invalid("name", "tickets record it by name: keep it, or define a new status")


def _check_schedule(data: Mapping[str, Any]) -> None:
    try:
        Schedule.from_definition(data)
    except InvalidSchedule as exc:
        raise invalid(exc.field, exc.message) from None


def _check_networks(data: Mapping[str, Any]) -> None:
    for index, network in enumerate(data.get("ip_allow", [])):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise invalid(
                f"ip_allow[{index}]", f"{network!r} is not an IP address or CIDR network"
            ) from None


def _check_auto_assign(rule: Mapping[str, Any]) -> None:
    """A fixed agent and/or team (as in osTicket), or a strategy alone."""
    fixed = rule.get("agent_id") is not None or rule.get("team_id") is not None
    if rule.get("strategy") is not None and fixed:
        raise invalid("auto_assign.strategy", "a strategy excludes a fixed agent_id or team_id")
    if rule.get("strategy") is None and not fixed:
        raise invalid("auto_assign", "name an agent_id, a team_id or a strategy, or send null")


def _check_tree(data: Mapping[str, Any], existing: Existing) -> None:
    parent, seen = data.get("parent_id"), set()
    while parent is not None and parent not in seen:
        if parent == data["id"]:
            raise invalid("parent_id", "a department cannot be its own ancestor")
        seen.add(parent)
        parent = existing.department_parents.get(parent)


def _values(data: object, path: str, where: str = "") -> Iterator[tuple[str, Any]]:
    """(concrete path, value) for each place `path` names in `data`."""
    if not path:
        yield where, data
        return
    if not isinstance(data, Mapping):
        return
    head, _, rest = path.partition(".")
    name = head.removesuffix("[]")
    here = f"{where}.{name}" if where else name
    if head.endswith("[]"):
        for index, item in enumerate(data.get(name) or []):
            yield from _values(item, rest, f"{here}[{index}]")
    elif data.get(name) is not None:
        yield from _values(data[name], rest, here)
