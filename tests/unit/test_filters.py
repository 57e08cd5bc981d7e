"""Ticket filters: rule operators and fields, filter selection and order, actions, validation."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.events.types import fields as event_fields
from services.routing.domain import filters as filters_module
from services.routing.domain.filters import (
    CHANNELS,
    PRIORITIES,
    Filter,
    InvalidFilter,
    Outcome,
    TicketFacts,
    evaluate,
)


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "name": "f",
        "order": 0,
        "enabled": True,
        "channels": [],
        "match": "all",
        "stop_on_match": False,
        "rules": [{"field": "subject", "op": "contains", "value": "urgent"}],
        "actions": [],
    }
    base.update(overrides)
    return base


def make(**overrides: Any) -> Filter:
    return Filter.from_definition(definition(**overrides))


def rule(field: str, op: str, value: Any) -> Filter:
    return make(rules=[{"field": field, "op": op, "value": value}])


def facts(**overrides: Any) -> TicketFacts:
    base: dict[str, Any] = {"channel": "email"}
    base.update(overrides)
    return TicketFacts(**base)


def test_constants_follow_the_event_schema() -> None:
    assert CHANNELS == event_fields.CHANNELS
    assert PRIORITIES == event_fields.PRIORITIES


# --- operators ------------------------------------------------------------------------------

OPERATOR_CASES = [
    # op, rule value, fact value, expected
    ("equal", "Invoice", "invoice", True),
    ("equal", "invoice", "INVOICE", True),
    ("equal", "invoice", "invoice 2", False),
    ("not_equal", "invoice", "INVOICE", False),
    ("not_equal", "invoice", "receipt", True),
    ("contains", "URGENT", "this is urgent!", True),
    ("contains", "urgent", "routine", False),
    ("not_contains", "urgent", "This is URGENT", False),
    ("not_contains", "urgent", "routine", True),
    ("starts_with", "re:", "RE: hello", True),
    ("starts_with", "re:", "hello re:", False),
    ("ends_with", "[SPAM]", "buy now [spam]", True),
    ("ends_with", "[spam]", "[spam] buy now", False),
    ("ends_with", "straße", "Hauptstrasse", True),  # case-folding, multibyte-aware
    ("match", r"^order #\d+$", "ORDER #123", True),
    ("match", r"^order #\d+$", "order #abc", False),
    ("match", r"\d{3}", "call 555 now", True),  # a search, not a full match (preg_match)
    ("not_match", r"^order #\d+$", "Order #7", False),
    ("not_match", r"^order #\d+$", "refund", True),
]


@pytest.mark.parametrize(("op", "value", "text", "expected"), OPERATOR_CASES)
def test_operator(op: str, value: str, text: str, expected: bool) -> None:
    assert rule("subject", op, value).matches(facts(subject=text)) is expected


def test_every_operator_has_positive_and_negative_cases() -> None:
    seen = {(op, expected) for op, _, _, expected in OPERATOR_CASES}
    assert seen == {(op, e) for op in filters_module.OPS for e in (True, False)}


def test_missing_value_compares_as_empty_string() -> None:
    assert rule("reply_to", "equal", "").matches(facts(reply_to=None))
    assert rule("reply_to", "not_contains", "x").matches(facts(reply_to=None))
    assert not rule("reply_to", "contains", "x").matches(facts(reply_to=None))
    assert rule("header:X-Spam", "not_equal", "yes").matches(facts())


PAIRS = [("equal", "not_equal"), ("contains", "not_contains"), ("match", "not_match")]
FIELD_SPECS = ["subject", "to", "header:X-Tag", "field:order"]


@pytest.mark.parametrize(("positive", "negative"), PAIRS)
@pytest.mark.parametrize("field", FIELD_SPECS)
@given(
    texts=st.lists(st.text(max_size=12), max_size=3),
    needle=st.text(max_size=6),
)
def test_not_op_is_the_negation_of_op(
    positive: str, negative: str, field: str, texts: list[str], needle: str
) -> None:
    value = re.escape(needle) if positive == "match" else needle
    text = texts[0] if texts else ""
    ticket = facts(
        subject=text,
        to=tuple(texts),
        headers={"x-tag": texts},
        fields={"order": text},
    )
    assert rule(field, negative, value).matches(ticket) is not rule(field, positive, value).matches(
        ticket
    )


@given(pattern=st.sampled_from([r"a+", r"^\w", r"[0-9]{2}", r"x|y", r"^$", r"é"]), text=st.text())
def test_not_match_negates_match_for_real_patterns(pattern: str, text: str) -> None:
    ticket = facts(body=text)
    assert rule("body", "not_match", pattern).matches(ticket) is not rule(
        "body", "match", pattern
    ).matches(ticket)


# --- fields ---------------------------------------------------------------------------------

FULL = TicketFacts(
    channel="email",
    email="Ann@Example.com",
    name="Ann Smith",
    subject="Printer on fire",
    body="Please help, the printer is on fire.",
    to=("support@desk.test", "Sales@desk.test"),
    cc=("boss@example.com",),
    reply_to="ann.private@example.org",
    help_topic_id=7,
    headers={"X-Priority": "1", "Received": ["from a", "from b"]},
    fields={"order_no": "A-100", "tags": ["vip", "beta"], "count": 3},
)

FIELD_CASES = [
    ("email", "equal", "ann@example.com", True),
    ("email", "equal", "bob@example.com", False),
    ("name", "starts_with", "ann", True),
    ("name", "starts_with", "smith", False),
    ("subject", "contains", "fire", True),
    ("subject", "contains", "water", False),
    ("body", "ends_with", "fire.", True),
    ("body", "ends_with", "help", False),
    ("to", "equal", "sales@desk.test", True),  # any address of the list
    ("to", "equal", "boss@example.com", False),
    ("cc", "ends_with", "@example.com", True),
    ("cc", "contains", "desk.test", False),
    ("reply_to", "match", r"\.org$", True),
    ("reply_to", "match", r"\.com$", False),
    ("help_topic", "equal", "7", True),
    ("help_topic", "equal", 7, True),
    ("help_topic", "equal", "8", False),
    ("header:X-Priority", "equal", "1", True),
    ("header:x-priority", "equal", "1", True),  # header names ignore case
    ("header:X-PRIORITY", "equal", "3", False),
    ("header:Received", "equal", "from b", True),  # any value of a repeated header
    ("header:X-Missing", "contains", "", True),
    ("header:X-Missing", "equal", "x", False),
    ("field:order_no", "equal", "a-100", True),
    ("field:order_no", "equal", "a-101", False),
    ("field:tags", "equal", "BETA", True),
    ("field:count", "equal", "3", True),
    ("field:missing", "not_equal", "x", True),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), FIELD_CASES)
def test_field(field: str, op: str, value: Any, expected: bool) -> None:
    assert rule(field, op, value).matches(FULL) is expected


def test_not_ops_on_list_fields_mean_no_address_matches() -> None:
    assert not rule("to", "not_equal", "sales@desk.test").matches(FULL)
    assert rule("to", "not_contains", "example").matches(FULL)


def test_facts_header_lookup_is_case_insensitive() -> None:
    assert FULL.header("x-PRIORITY") == ("1",)
    assert FULL.header("received") == ("from a", "from b")
    assert FULL.header("absent") == ()
    assert TicketFacts("web", headers={"X-A": "1", "x-a": "2"}).header("X-A") == ("1", "2")


def test_facts_lists_become_tuples() -> None:
    ticket = TicketFacts("web", to=["a@x.test"], cc=["b@x.test"])  # type: ignore[arg-type]
    assert ticket.to == ("a@x.test",)
    assert ticket.cc == ("b@x.test",)


# --- match all / any ------------------------------------------------------------------------

TWO_RULES = [
    {"field": "subject", "op": "contains", "value": "printer"},
    {"field": "email", "op": "ends_with", "value": "@example.com"},
]


@pytest.mark.parametrize(
    ("match", "email", "expected"),
    [
        ("all", "ann@example.com", True),
        ("all", "ann@other.test", False),
        ("any", "ann@other.test", True),
        ("any", "ann@example.com", True),
    ],
)
def test_match_all_and_any(match: str, email: str, expected: bool) -> None:
    flt = make(match=match, rules=TWO_RULES)
    assert flt.matches(facts(subject="Printer jam", email=email)) is expected


def test_match_any_needs_one_rule_to_match() -> None:
    flt = make(match="any", rules=TWO_RULES)
    assert not flt.matches(facts(subject="hello", email="ann@other.test"))


# --- selection and order --------------------------------------------------------------------

URGENT = facts(subject="urgent: help")


def test_no_filters_gives_an_empty_outcome() -> None:
    assert evaluate([], URGENT) == Outcome()


def test_filters_run_in_order_then_id() -> None:
    flts = [make(id=3, order=5), make(id=2, order=1), make(id=1, order=5), make(id=9, order=-1)]
    assert evaluate(flts, URGENT).matched_filter_ids == (9, 2, 1, 3)


def test_non_matching_filters_are_not_listed() -> None:
    flts = [make(id=1), make(id=2, rules=[{"field": "subject", "op": "equal", "value": "x"}])]
    assert evaluate(flts, URGENT).matched_filter_ids == (1,)


def test_stop_on_match_stops_after_the_first_matching_stopper() -> None:
    flts = [
        make(id=1, order=1, actions=[{"type": "priority", "value": "low"}]),
        make(
            id=2,
            order=2,
            stop_on_match=True,
            rules=[{"field": "subject", "op": "equal", "value": "nope"}],
        ),
        make(id=3, order=3, stop_on_match=True, actions=[{"type": "department", "value": 4}]),
        make(id=4, order=4, actions=[{"type": "priority", "value": "high"}]),
    ]
    outcome = evaluate(flts, URGENT)
    assert outcome.matched_filter_ids == (1, 3)
    assert outcome.priority == "low"
    assert outcome.department_id == 4


def test_disabled_filters_are_skipped() -> None:
    flts = [make(id=1, enabled=False, actions=[{"type": "reject"}]), make(id=2)]
    assert evaluate(flts, URGENT) == Outcome(matched_filter_ids=(2,))


@pytest.mark.parametrize(
    ("channels", "channel", "applies"),
    [
        ([], "email", True),
        ([], "agent", True),
        (["email"], "email", True),
        (["email"], "web", False),
        (["web", "api"], "api", True),
        (["web", "api"], "agent", False),
        (["agent"], "agent", True),
        (["event"], "event", True),
    ],
)
def test_channel_applicability(channels: list[str], channel: str, applies: bool) -> None:
    flt = make(channels=channels)
    assert flt.applies_to(channel) is applies
    ticket = facts(channel=channel, subject="urgent")
    assert evaluate([flt], ticket).matched_filter_ids == ((1,) if applies else ())


# --- actions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"type": "department", "value": 4}, {"department_id": 4}),
        ({"type": "priority", "value": "emergency"}, {"priority": "emergency"}),
        ({"type": "sla_plan", "value": 2}, {"sla_plan_id": 2}),
        ({"type": "assign_agent", "value": 11}, {"assign_agent_id": 11}),
        ({"type": "assign_team", "value": 12}, {"assign_team_id": 12}),
        ({"type": "help_topic", "value": 13}, {"help_topic_id": 13}),
        ({"type": "status", "value": "closed"}, {"status": "closed"}),
        ({"type": "disable_autoresponse"}, {"disable_autoresponse": True}),
        ({"type": "disable_autoresponse", "value": True}, {"disable_autoresponse": True}),
        ({"type": "disable_autoresponse", "value": False}, {}),
        ({"type": "add_collaborator", "value": "cc@x.test"}, {"collaborators": ("cc@x.test",)}),
        ({"type": "canned_response", "value": 5}, {"canned_response_ids": (5,)}),
        ({"type": "reject"}, {"rejected_by": 1}),
    ],
)
def test_action_is_reflected_in_the_outcome(
    action: dict[str, Any], expected: dict[str, Any]
) -> None:
    outcome = evaluate([make(actions=[action])], URGENT)
    assert outcome == Outcome(matched_filter_ids=(1,), **expected)


def test_every_action_type_is_covered() -> None:
    assert set(filters_module.ACTION_TYPES) == {
        "reject",
        "department",
        "priority",
        "sla_plan",
        "assign_agent",
        "assign_team",
        "help_topic",
        "status",
        "disable_autoresponse",
        "add_collaborator",
        "canned_response",
    }


def test_later_filters_override_earlier_single_valued_actions() -> None:
    first = make(
        id=1,
        order=1,
        actions=[
            {"type": "department", "value": 1},
            {"type": "priority", "value": "low"},
            {"type": "sla_plan", "value": 1},
            {"type": "assign_agent", "value": 1},
            {"type": "status", "value": "open"},
        ],
    )
    second = make(
        id=2,
        order=2,
        actions=[
            {"type": "department", "value": 2},
            {"type": "priority", "value": "high"},
            {"type": "assign_team", "value": 3},
        ],
    )
    outcome = evaluate([second, first], URGENT)
    assert outcome == Outcome(
        matched_filter_ids=(1, 2),
        department_id=2,
        priority="high",
        sla_plan_id=1,
        assign_agent_id=1,
        assign_team_id=3,
        status="open",
    )


def test_later_action_in_one_filter_overrides_earlier() -> None:
    flt = make(
        actions=[{"type": "priority", "value": "low"}, {"type": "priority", "value": "high"}]
    )
    assert evaluate([flt], URGENT).priority == "high"


def test_collaborators_and_canned_responses_accumulate_without_duplicates() -> None:
    flts = [
        make(
            id=1,
            actions=[
                {"type": "add_collaborator", "value": "a@x.test"},
                {"type": "canned_response", "value": 5},
                {"type": "disable_autoresponse"},
            ],
        ),
        make(
            id=2,
            actions=[
                {"type": "add_collaborator", "value": "A@X.test"},
                {"type": "add_collaborator", "value": "b@x.test"},
                {"type": "canned_response", "value": 6},
                {"type": "canned_response", "value": 5},
                {"type": "disable_autoresponse", "value": False},
            ],
        ),
    ]
    outcome = evaluate(flts, URGENT)
    assert outcome.collaborators == ("a@x.test", "b@x.test")
    assert outcome.canned_response_ids == (5, 6)
    assert outcome.disable_autoresponse is True


def test_canned_response_suppresses_the_autoresponse() -> None:
    assert Outcome(canned_response_ids=(1,)).suppress_autoresponse
    assert Outcome(disable_autoresponse=True).suppress_autoresponse
    assert not Outcome().suppress_autoresponse


def test_reject_short_circuits_everything() -> None:
    flts = [
        make(id=1, order=1, actions=[{"type": "department", "value": 3}]),
        make(
            id=2,
            order=2,
            actions=[
                {"type": "priority", "value": "high"},
                {"type": "reject"},
                {"type": "sla_plan", "value": 9},
            ],
        ),
        make(id=3, order=3, actions=[{"type": "assign_agent", "value": 4}]),
    ]
    outcome = evaluate(flts, URGENT)
    assert outcome == Outcome(matched_filter_ids=(1, 2), rejected_by=2)
    assert outcome.rejected


def test_a_non_matching_reject_filter_does_nothing() -> None:
    flt = make(actions=[{"type": "reject"}])
    assert not evaluate([flt], facts(subject="routine")).rejected


# --- validation -----------------------------------------------------------------------------


def three_rules(bad: dict[str, Any]) -> list[dict[str, Any]]:
    good = {"field": "subject", "op": "contains", "value": "x"}
    return [good, good, bad]


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        (
            {"rules": three_rules({"field": "subject", "op": "match", "value": "(oops"})},
            "rules[2].value",
        ),
        (
            {"rules": three_rules({"field": "body", "op": "not_match", "value": "[a-"})},
            "rules[2].value",
        ),
        (
            {"rules": three_rules({"field": "sender", "op": "equal", "value": "x"})},
            "rules[2].field",
        ),
        (
            {"rules": three_rules({"field": "header:", "op": "equal", "value": "x"})},
            "rules[2].field",
        ),
        (
            {"rules": three_rules({"field": "field:", "op": "equal", "value": "x"})},
            "rules[2].field",
        ),
        ({"rules": three_rules({"field": "subject", "op": "starts", "value": "x"})}, "rules[2].op"),
        (
            {"rules": three_rules({"field": "subject", "op": "equal", "value": None})},
            "rules[2].value",
        ),
        (
            {"rules": three_rules({"field": "email", "op": "equal", "value": "not-an-email"})},
            "rules[2].value",
        ),
        (
            {"rules": three_rules({"field": "email", "op": "equal", "value": "a@b"})},
            "rules[2].value",
        ),
        ({"rules": three_rules("subject")}, "rules[2]"),  # type: ignore[arg-type]
        ({"rules": []}, "rules"),
        ({"rules": None}, "rules"),
        ({"actions": [{"type": "explode"}]}, "actions[0].type"),
        ({"actions": [{"type": "department", "value": "4"}]}, "actions[0].value"),
        ({"actions": [{"type": "department", "value": 0}]}, "actions[0].value"),
        ({"actions": [{"type": "sla_plan", "value": None}]}, "actions[0].value"),
        ({"actions": [{"type": "assign_agent", "value": True}]}, "actions[0].value"),
        ({"actions": [{"type": "assign_team", "value": -1}]}, "actions[0].value"),
        (
            {"actions": [{"type": "reject"}, {"type": "help_topic", "value": 1.5}]},
            "actions[1].value",
        ),
        ({"actions": [{"type": "canned_response", "value": "x"}]}, "actions[0].value"),
        ({"actions": [{"type": "priority", "value": "urgent"}]}, "actions[0].value"),
        ({"actions": [{"type": "priority", "value": 1}]}, "actions[0].value"),
        ({"actions": [{"type": "status", "value": "deleted"}]}, "actions[0].value"),
        ({"actions": [{"type": "add_collaborator", "value": "nobody"}]}, "actions[0].value"),
        ({"actions": [{"type": "disable_autoresponse", "value": "yes"}]}, "actions[0].value"),
        ({"actions": [{"type": "reject", "value": 3}]}, "actions[0].value"),
        ({"id": 0}, "id"),
        ({"id": "1"}, "id"),
        ({"name": ""}, "name"),
        ({"order": "1"}, "order"),
        ({"enabled": "yes"}, "enabled"),
        ({"stop_on_match": 1}, "stop_on_match"),
        ({"match": "some"}, "match"),
        ({"channels": ["email", "fax"]}, "channels[1]"),
    ],
)
def test_invalid_definition_names_the_bad_part(overrides: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        make(**overrides)
    assert caught.value.field == where
    assert str(caught.value).startswith(f"{where}: ")


def test_email_rules_other_than_equal_need_not_be_addresses() -> None:
    assert rule("email", "ends_with", "@example.com").matches(FULL)
    assert rule("email", "not_equal", "nobody").matches(FULL)


def test_definition_defaults_and_round_trip() -> None:
    flt = Filter.from_definition(
        {"id": 4, "name": "spam", "rules": [{"field": "subject", "op": "match", "value": "^x"}]}
    )
    assert (flt.order, flt.enabled, flt.channels, flt.match, flt.stop_on_match) == (
        0,
        True,
        (),
        "all",
        False,
    )
    assert flt.actions == ()
    assert flt.rules[0].field == "subject"
    assert flt == Filter.from_definition(
        {"id": 4, "name": "spam", "rules": [{"field": "subject", "op": "match", "value": "^x"}]}
    )


# --- speed ----------------------------------------------------------------------------------


def many_filters(count: int) -> list[Filter]:
    ops = filters_module.OPS
    fields = ["email", "name", "subject", "body", "to", "cc", "header:X-Mailer", "field:plan"]
    return [
        make(
            id=i + 1,
            order=count - i,
            match="all" if i % 2 else "any",
            rules=[
                {
                    "field": fields[(i + j) % len(fields)],
                    "op": ops[(i + j) % len(ops)],
                    "value": f"v{i}-{j}@example.com",
                }
                for j in range(3)
            ],
            actions=[{"type": "priority", "value": "high"}],
        )
        for i in range(count)
    ]


def test_evaluation_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    flts = many_filters(200)

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError("re.compile during evaluation")

    monkeypatch.setattr(filters_module.re, "compile", no_compile)
    evaluate(flts, FULL)


def test_two_hundred_filters_evaluate_quickly() -> None:
    flts = many_filters(200)
    evaluate(flts, FULL)
    started = time.perf_counter()
    for _ in range(20):
        evaluate(flts, FULL)
    per_run = (time.perf_counter() - started) / 20
    assert per_run < 0.02, per_run  # typically well under a millisecond
