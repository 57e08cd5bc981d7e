"""Admin config bodies: what is refused, and the field each refusal names (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from libs.platform.errors import ValidationFailed
from libs.platform.validation import flatten
from services.intake.domain.config_rules import Existing, check, parse

EVERYTHING = Existing(
    ids={
        "department": {1, 2},
        "agent": {1, 2},
        "team": {1},
        "sla-plan": {1},
        "schedule": {1},
        "help-topic": {1},
        "template": {1},
    }
)
NOTHING = Existing()

MINIMAL: dict[str, dict[str, Any]] = {
    "department": {"name": "Sales"},
    "help-topic": {"name": "Billing"},
    "sla-plan": {"name": "Gold", "grace_hours": 4},
    "team": {"name": "Tier 2"},
    "agent": {"email": "ann@example.com", "name": "Ann", "username": "ann"},
    "template": {"name": "Hi", "subject": "Hello", "body": "Hi there"},
    "filter": {"name": "VIP", "rules": [{"field": "email", "op": "ends_with", "value": "@vip.com"}]},
    "schedule": {"name": "Office", "timezone": "Europe/Paris", "hours": {"mon": [["09:00", "17:00"]]}},
}  # fmt: skip


def definition(thing: str, body: dict[str, Any], thing_id: int = 5) -> dict[str, Any]:
    return {"id": thing_id, **parse(thing, {**MINIMAL[thing], **body}).data}


def refused(thing: str, body: dict[str, Any], existing: Existing = EVERYTHING) -> str:
    """The field a refusal names."""
    with pytest.raises(ValidationFailed) as caught:
        check(thing, definition(thing, body), existing)
    assert caught.value.message.startswith(caught.value.details["field"])
    return str(caught.value.details["field"])


def parse_refused(thing: str, body: object, thing_id: int | None = None) -> str | None:
    """The field a refusal names (None: the body as a whole)."""
    with pytest.raises(ValidationFailed) as caught:
        parse(thing, body, thing_id=thing_id)
    return caught.value.details.get("field")


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("thing", sorted(MINIMAL))
def test_minimal_bodies_load_with_defaults_and_pass(thing: str) -> None:
    data = definition(thing, {})
    check(thing, data, EVERYTHING)
    assert data["id"] == 5 and data["name"] == MINIMAL[thing]["name"]


def test_stored_state_is_json_types() -> None:
    data = parse("schedule", {**MINIMAL["schedule"], "holidays": ["2025-12-25"]}).data
    assert data["holidays"] == ["2025-12-25"]
    assert data["hours"]["tue"] == []


@pytest.mark.parametrize(
    ("thing", "body", "field"),
    [
        ("department", {**MINIMAL["department"], "colour": "red"}, "colour"),
        ("department", {}, "name"),
        ("department", {**MINIMAL["department"], "status": "gone"}, "status"),
        ("department", {**MINIMAL["department"], "parent_id": "2"}, "parent_id"),
        ("department", {**MINIMAL["department"], "autoresponder": {"x": 1}}, "autoresponder.x"),
        ("filter", {**MINIMAL["filter"], "rules": [{"field": "email", "op": "like"}]}, "rules[0].op"),
        ("schedule", {**MINIMAL["schedule"], "hours": {"mon": [["9:00", "17:00"]]}}, "hours.mon[0][0]"),
        ("schedule", {**MINIMAL["schedule"], "holidays": ["2025-13-01"]}, "holidays[0]"),
        ("template", {**MINIMAL["template"], "password": "sekrit-sekrit"}, "password"),
        ("agent", {**MINIMAL["agent"], "password_hash": "$argon2id$..."}, "password_hash"),
        ("agent", {**MINIMAL["agent"], "token_hash": "ab:cd"}, "token_hash"),
        ("agent", {**MINIMAL["agent"], "password": "short"}, "password"),
        ("agent", {**MINIMAL["agent"], "password": 12345678}, "password"),
        ("agent", {**MINIMAL["agent"], "email": "not-an-email"}, "email"),
        ("department", {**MINIMAL["department"], "id": 3}, "id"),  # POST: the server assigns
        ("department", ["Sales"], None),
    ],
)  # fmt: skip
def test_parse_refusals_name_the_field(thing: str, body: object, field: str | None) -> None:
    assert parse_refused(thing, body) == field


def test_put_body_may_repeat_its_own_id_only() -> None:
    assert parse("template", {**MINIMAL["template"], "id": 4}, thing_id=4).data["name"] == "Hi"
    assert parse_refused("template", {**MINIMAL["template"], "id": 3}, thing_id=4) == "id"
    assert parse_refused("template", {**MINIMAL["template"], "id": True}, thing_id=1) == "id"


def test_agent_password_is_taken_apart_from_the_state() -> None:
    parsed = parse("agent", {**MINIMAL["agent"], "password": "correct horse"})
    assert parsed.password == "correct horse"
    assert "password" not in parsed.data and "password_hash" not in parsed.data
    assert parse("agent", {**MINIMAL["agent"], "password": None}).password is None
    assert parse("agent", MINIMAL["agent"]).password is None


def test_flatten_gives_paths() -> None:
    messages = {"rules": {0: {"value": ["Missing"]}}, "hours": {"_schema": ["Invalid"]}}
    assert flatten(messages) == {"rules[0].value": ["Missing"], "hours": ["Invalid"]}


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thing", "body", "field"),
    [
        ("department", {"parent_id": 9}, "parent_id"),
        ("department", {"manager_id": 9}, "manager_id"),
        ("department", {"sla_plan_id": 9}, "sla_plan_id"),
        ("department", {"schedule_id": 9}, "schedule_id"),
        ("department", {"auto_assign": {"agent_id": 9}}, "auto_assign.agent_id"),
        ("department", {"auto_assign": {"team_id": 9}}, "auto_assign.team_id"),
        ("help-topic", {"department_id": 9}, "department_id"),
        ("help-topic", {"sla_plan_id": 9}, "sla_plan_id"),
        ("help-topic", {"auto_assign": {"agent_id": 9}}, "auto_assign.agent_id"),
        ("help-topic", {"auto_assign": {"team_id": 1, "agent_id": 9}}, "auto_assign.agent_id"),
        ("sla-plan", {"schedule_id": 9}, "schedule_id"),
        ("team", {"lead_id": 9}, "lead_id"),
        ("team", {"member_ids": [1, 9]}, "member_ids[1]"),
        ("agent", {"department_id": 9}, "department_id"),
        ("agent", {"extended_access": [{"department_id": 2}, {"department_id": 9}]}, "extended_access[1].department_id"),
        ("agent", {"team_ids": [9]}, "team_ids[0]"),
    ],
)  # fmt: skip
def test_unknown_references_name_the_field(thing: str, body: dict[str, Any], field: str) -> None:
    assert refused(thing, body) == field


@pytest.mark.parametrize(
    ("thing", "body"),
    [
        ("department", {"parent_id": 1, "manager_id": 2, "sla_plan_id": 1, "schedule_id": 1}),
        ("help-topic", {"department_id": 2, "sla_plan_id": 1, "auto_assign": {"team_id": 1}}),
        ("team", {"lead_id": 1, "member_ids": [1, 2]}),
        ("agent", {"department_id": 1, "extended_access": [{"department_id": 2}], "team_ids": [1]}),
    ],
)
def test_known_references_pass(thing: str, body: dict[str, Any]) -> None:
    check(thing, definition(thing, body), EVERYTHING)


def test_nothing_defined_yet_refuses_any_reference() -> None:
    assert refused("help-topic", {"department_id": 1}, NOTHING) == "department_id"
    check("help-topic", definition("help-topic", {}), NOTHING)


# -- auto-assign --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule", [{"agent_id": 1}, {"team_id": 1}, {"agent_id": 1, "team_id": 1}, {"strategy": "round_robin"}]
)  # fmt: skip
@pytest.mark.parametrize("thing", ["department", "help-topic"])
def test_auto_assign_names_a_target(thing: str, rule: dict[str, Any]) -> None:
    check(thing, definition(thing, {"auto_assign": rule}), EVERYTHING)


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({}, "auto_assign"),
        ({"agent_id": None, "team_id": None, "strategy": None}, "auto_assign"),
        ({"strategy": "fewest_open", "agent_id": 1}, "auto_assign.strategy"),
        ({"strategy": "round_robin", "team_id": 1}, "auto_assign.strategy"),
    ],
)
def test_auto_assign_refusals(rule: dict[str, Any], field: str) -> None:
    assert refused("help-topic", {"auto_assign": rule}) == field


def test_unknown_strategy_is_a_schema_error() -> None:
    body = {**MINIMAL["department"], "auto_assign": {"strategy": "random"}}
    assert parse_refused("department", body) == "auto_assign.strategy"


# -- filters ------------------------------------------------------------------------------------


def rule(**kw: str) -> list[dict[str, str]]:
    return [{"field": "subject", "op": "contains", "value": "x", **kw}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules": rule(op="match", value="(unclosed")}, "rules[0].value"),
        ({"rules": rule(field="colour")}, "rules[0].field"),
        ({"rules": []}, "rules"),
        ({"actions": [{"type": "priority", "value": "urgent"}]}, "actions[0].value"),
        ({"actions": [{"type": "department", "value": "Sales"}]}, "actions[0].value"),
        ({"actions": [{"type": "department", "value": 9}]}, "actions[0].value"),
        ({"actions": [{"type": "reject"}, {"type": "sla_plan", "value": 9}]}, "actions[1].value"),
        ({"actions": [{"type": "help_topic", "value": 9}]}, "actions[0].value"),
        ({"actions": [{"type": "assign_agent", "value": 9}]}, "actions[0].value"),
        ({"actions": [{"type": "assign_team", "value": 9}]}, "actions[0].value"),
        ({"actions": [{"type": "canned_response", "value": 9}]}, "actions[0].value"),
    ],
)
def test_filter_refusals(body: dict[str, Any], field: str) -> None:
    assert refused("filter", body) == field


def test_filter_with_known_targets_passes() -> None:
    actions = [
        {"type": t, "value": 1}
        for t in ("department", "sla_plan", "help_topic", "assign_agent", "assign_team")
    ] + [{"type": "canned_response", "value": 1}, {"type": "priority", "value": "high"}]
    check("filter", definition("filter", {"actions": actions, "rules": rule(op="match", value="^a.*b$")}), EVERYTHING)  # fmt: skip


# -- schedules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"hours": {}}, "hours"),
        ({"hours": {"mon": [], "sun": []}}, "hours"),
        ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "hours.mon"),
        ({"hours": {"tue": [["17:00", "09:00"]]}}, "hours.tue[0]"),
    ],
)
def test_schedule_refusals(body: dict[str, Any], field: str) -> None:
    assert refused("schedule", body) == field


def test_schedule_to_midnight_passes() -> None:
    check("schedule", definition("schedule", {"hours": {"sat": [["18:00", "24:00"]]}}), NOTHING)


# -- the department tree ------------------------------------------------------------------------


def test_a_department_cannot_be_its_own_ancestor() -> None:
    tree = Existing(ids={"department": {1, 2, 3, 5}}, department_parents={1: None, 2: 1, 3: 5})
    check("department", definition("department", {"parent_id": 2}), tree)  # 5 under 2 under 1
    assert refused("department", {"parent_id": 5}, tree) == "parent_id"
    assert refused("department", {"parent_id": 3}, tree) == "parent_id"  # 3 is under 5


def test_an_existing_loop_elsewhere_does_not_hang() -> None:
    tree = Existing(ids={"department": {1, 2, 5}}, department_parents={1: 2, 2: 1})
    check("department", definition("department", {"parent_id": 1}), tree)
