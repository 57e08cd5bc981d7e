"""Agents' role permissions: the default role, admins, and what an agent definition may list."""

from __future__ import annotations

import pytest

from libs.events.types.config import PERMISSIONS
from libs.platform.access import DEFAULT_PERMISSIONS, Agent, role_permissions
from libs.platform.errors import ValidationFailed
from services.intake.domain.config_rules import Existing, check, parse


def agent(*, admin: bool = False, permissions: list[str] | None = None) -> Agent:
    return Agent(
        1, "Grace", "grace@example.com", admin, frozenset({1}), role_permissions(permissions)
    )


def test_an_agent_defined_without_permissions_holds_the_default_role() -> None:
    plain = agent()
    assert {p for p in PERMISSIONS if plain.may(p)} == DEFAULT_PERMISSIONS
    assert plain.may("ticket.release") and plain.may("ticket.transfer")
    assert not plain.may("ticket.merge") and not plain.may("ticket.link")


def test_listed_permissions_are_exactly_the_agents() -> None:
    merger = agent(permissions=["ticket.merge"])
    assert merger.may("ticket.merge")
    assert not merger.may("ticket.release")


def test_an_admin_holds_every_permission() -> None:
    admin = agent(admin=True, permissions=["ticket.link"])
    assert all(admin.may(p) for p in PERMISSIONS)


def test_agent_definitions_list_only_known_permissions() -> None:
    body = {"email": "ann@example.com", "name": "Ann", "username": "ann"}
    known = parse("agent", {**body, "permissions": ["ticket.merge", "ticket.link"]}).data
    check("agent", {"id": 5, **known}, Existing())
    unknown = parse("agent", {**body, "permissions": ["ticket.link", "ticket.delete"]}).data
    with pytest.raises(ValidationFailed, match="must be one of") as info:
        check("agent", {"id": 5, **unknown}, Existing())
    assert info.value.details["field"] == "permissions[1]"
