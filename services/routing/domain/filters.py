"""Pure ticket filters (osTicket `TicketFilter` / `Filter::matches` / filter actions).

A filter definition (the `FilterDefined` shape) is validated and compiled once by
`Filter.from_definition`: regular expressions are compiled and rule values case-folded there, so
`evaluate` only compares strings. Nothing here does I/O; checks that need other config (is the
department or help topic active, does the agent exist) belong to the caller.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.events.types.fields import CHANNELS, FILTER_ACTIONS, FILTER_OPS, PRIORITIES

# Kept in step with libs.events.types.fields (a test checks); the domain imports no schema library.

INITIAL_STATUSES = ("open", "resolved", "closed")  # osTicket: open or closed states only

PLAIN_FIELDS = ("email", "name", "subject", "body", "to", "cc", "reply_to", "help_topic")
HEADER_PREFIX = "header:"
FORM_FIELD_PREFIX = "field:"
OPS = FILTER_OPS  # the contract's list (libs/events/types)
ID_ACTIONS = ("department", "sla_plan", "assign_agent", "assign_team", "help_topic")
ACTION_TYPES = FILTER_ACTIONS

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

# (raw text, case-folded text) pairs for one fact; a list fact has one pair per entry.
_Texts = tuple[tuple[str, str], ...]
_Test = Callable[[str, str], bool]
_Source = tuple[str, str]  # ("fact", name) | ("header", casefolded name) | ("field", var)


class InvalidFilter(ValueError):
    """A filter definition that cannot be compiled; `field` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TicketFacts:
    """What filters can look at for one incoming ticket. Missing values compare as ""."""

    channel: str
    email: str = ""
    name: str = ""
    subject: str = ""
    body: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: str | None = None
    help_topic_id: int | None = None
    headers: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    _folded_headers: Mapping[str, tuple[str, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", tuple(self.to))
        object.__setattr__(self, "cc", tuple(self.cc))
        folded: dict[str, tuple[str, ...]] = {}
        for name, value in self.headers.items():
            key = name.casefold()
            folded[key] = folded.get(key, ()) + _as_strings(value)
        object.__setattr__(self, "_folded_headers", folded)

    def header(self, name: str) -> tuple[str, ...]:
        """Every value of a header, looked up case-insensitively (empty if absent)."""
        return self._folded_headers.get(name.casefold(), ())


def ticket_facts(created: Mapping[str, Any]) -> TicketFacts:
    """What filters see of a TicketCreated's data: intake (which refuses a rejected ticket
    before it exists) and routing (which routes it after) read the same facts."""
    requester = created.get("requester") or {}
    return TicketFacts(
        channel=created["channel"],
        email=requester.get("email") or "",
        name=requester.get("name") or "",
        subject=created.get("subject", ""),
        body=created.get("body", ""),
        to=tuple(created.get("to", ())),
        cc=tuple(created.get("cc", ())),
        reply_to=created.get("reply_to"),
        help_topic_id=created.get("help_topic_id"),
        headers=created.get("headers", {}),
        fields=created.get("fields", {}),
    )


@dataclass(frozen=True)
class Rule:
    field: str
    op: str
    value: str
    _source: _Source = dataclasses.field(repr=False, compare=False)
    _test: _Test = dataclasses.field(repr=False, compare=False)
    _negate: bool = dataclasses.field(repr=False, compare=False)

    def holds(self, view: _View) -> bool:
        test = self._test
        for raw, folded in view.texts(self._source):
            if test(raw, folded):
                return not self._negate
        return self._negate


@dataclass(frozen=True)
class Action:
    type: str
    value: int | str | bool | None = None


@dataclass(frozen=True)
class Filter:
    id: int
    name: str
    rules: tuple[Rule, ...]
    actions: tuple[Action, ...] = ()
    order: int = 0
    enabled: bool = True
    channels: tuple[str, ...] = ()  # empty: every channel
    match: str = "all"
    stop_on_match: bool = False

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> Filter:
        if not isinstance(data, Mapping):
            raise InvalidFilter("filter", "must be an object")
        filter_id = _positive_int(data.get("id"), "id")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidFilter("name", "a non-empty name is required")
        order = data.get("order", 0)
        if not _is_int(order):
            raise InvalidFilter("order", "must be an integer")
        enabled = _bool(data.get("enabled", True), "enabled")
        stop_on_match = _bool(data.get("stop_on_match", False), "stop_on_match")
        match = data.get("match", "all")
        if match not in ("all", "any"):
            raise InvalidFilter("match", "must be 'all' or 'any'")
        channels: list[str] = []
        for i, channel in enumerate(_list(data.get("channels", []), "channels")):
            if channel not in CHANNELS:
                raise InvalidFilter(f"channels[{i}]", f"unknown channel {channel!r}")
            if channel not in channels:
                channels.append(channel)
        rules = tuple(
            _compile_rule(rule, f"rules[{i}]")
            for i, rule in enumerate(_list(data.get("rules", []), "rules"))
        )
        if not rules:
            raise InvalidFilter("rules", "at least one rule is required")
        actions = tuple(
            _compile_action(action, f"actions[{i}]")
            for i, action in enumerate(_list(data.get("actions", []), "actions"))
        )
        return cls(
            id=filter_id,
            name=name,
            rules=rules,
            actions=actions,
            order=order,
            enabled=enabled,
            channels=tuple(channels),
            match=match,
            stop_on_match=stop_on_match,
        )

    def applies_to(self, channel: str) -> bool:
        return self.enabled and (not self.channels or channel in self.channels)

    def matches(self, facts: TicketFacts) -> bool:
        """Whether the rules match (ignores `enabled` and `channels`)."""
        return self._matches(_View(facts))

    def _matches(self, view: _View) -> bool:
        if self.match == "all":
            return all(rule.holds(view) for rule in self.rules)
        return any(rule.holds(view) for rule in self.rules)


@dataclass(frozen=True)
class Outcome:
    matched_filter_ids: tuple[int, ...] = ()
    rejected_by: int | None = None
    department_id: int | None = None
    priority: str | None = None
    sla_plan_id: int | None = None
    help_topic_id: int | None = None
    assign_agent_id: int | None = None
    assign_team_id: int | None = None
    status: str | None = None
    disable_autoresponse: bool = False
    collaborators: tuple[str, ...] = ()
    canned_response_ids: tuple[int, ...] = ()

    @property
    def rejected(self) -> bool:
        return self.rejected_by is not None

    @property
    def suppress_autoresponse(self) -> bool:
        """osTicket: a canned filter reply replaces the normal new-ticket auto-response."""
        return self.disable_autoresponse or bool(self.canned_response_ids)


_SINGLE_VALUED = {
    "department": "department_id",
    "priority": "priority",
    "sla_plan": "sla_plan_id",
    "help_topic": "help_topic_id",
    "assign_agent": "assign_agent_id",
    "assign_team": "assign_team_id",
    "status": "status",
}


def evaluate(filters: Sequence[Filter], facts: TicketFacts) -> Outcome:
    """Apply the applicable filters in (order, id) sequence, as `TicketFilter::apply` does.

    Each matching filter's actions are applied in turn, a later filter overriding an earlier
    one's single-valued actions; collaborators and canned responses accumulate. Processing stops
    after a matching filter with `stop_on_match`. A `reject` ends everything: the outcome then
    carries only the matched filter ids and `rejected_by`.
    """
    view = _View(facts)
    channel = facts.channel
    matched: list[int] = []
    single: dict[str, Any] = {}
    disable_autoresponse = False
    collaborators: dict[str, str] = {}  # casefolded -> as first given
    canned: dict[int, None] = {}
    for flt in sorted(filters, key=_execution_order):
        if not flt.enabled or (flt.channels and channel not in flt.channels):
            continue
        if not flt._matches(view):
            continue
        matched.append(flt.id)
        for action in flt.actions:
            kind = action.type
            if kind == "reject":
                return Outcome(matched_filter_ids=tuple(matched), rejected_by=flt.id)
            if kind in _SINGLE_VALUED:
                single[_SINGLE_VALUED[kind]] = action.value
            elif kind == "disable_autoresponse":
                disable_autoresponse = disable_autoresponse or bool(action.value)
            elif kind == "add_collaborator":
                assert isinstance(action.value, str)
                collaborators.setdefault(action.value.casefold(), action.value)
            elif kind == "canned_response":
                assert isinstance(action.value, int)
                canned[action.value] = None
        if flt.stop_on_match:
            break
    return Outcome(
        matched_filter_ids=tuple(matched),
        disable_autoresponse=disable_autoresponse,
        collaborators=tuple(collaborators.values()),
        canned_response_ids=tuple(canned),
        **single,
    )


def _execution_order(flt: Filter) -> tuple[int, int]:
    return (flt.order, flt.id)


class _View:
    """Fact texts for one evaluation, case-folded at most once per fact."""

    __slots__ = ("_cache", "_facts")

    def __init__(self, facts: TicketFacts) -> None:
        self._facts = facts
        self._cache: dict[_Source, _Texts] = {}

    def texts(self, source: _Source) -> _Texts:
        texts = self._cache.get(source)
        if texts is None:
            strings = _lookup(self._facts, source) or ("",)  # absent compares as "" (osTicket)
            texts = tuple((s, s.casefold()) for s in strings)
            self._cache[source] = texts
        return texts


def _lookup(facts: TicketFacts, source: _Source) -> tuple[str, ...]:
    kind, name = source
    if kind == "header":
        return facts._folded_headers.get(name, ())
    if kind == "field":
        return _as_strings(facts.fields.get(name))
    if name == "help_topic":
        return () if facts.help_topic_id is None else (str(facts.help_topic_id),)
    return _as_strings(getattr(facts, name))


def _as_strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)


def _compile_rule(data: object, where: str) -> Rule:
    if not isinstance(data, Mapping):
        raise InvalidFilter(where, "must be an object with field, op and value")
    name = data.get("field")
    source = _source(name)
    if source is None:
        raise InvalidFilter(f"{where}.field", f"unknown field {name!r}")
    assert isinstance(name, str)
    op = data.get("op")
    if op not in OPS:
        raise InvalidFilter(f"{where}.op", f"unknown operator {op!r}")
    value = data.get("value")
    if name == "help_topic" and _is_int(value):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidFilter(f"{where}.value", "must be a string")
    if name == "email" and op == "equal" and not _EMAIL.match(value.strip()):
        raise InvalidFilter(f"{where}.value", f"{value!r} is not a valid email address")
    negate = op.startswith("not_")
    positive = op.removeprefix("not_")
    return Rule(
        field=name,
        op=op,
        value=value,
        _source=source,
        _test=_tester(positive, value, f"{where}.value"),
        _negate=negate,
    )


def _source(name: object) -> _Source | None:
    if not isinstance(name, str):
        return None
    if name in PLAIN_FIELDS:
        return ("fact", name)
    if name.startswith(HEADER_PREFIX) and name[len(HEADER_PREFIX) :].strip():
        return ("header", name[len(HEADER_PREFIX) :].strip().casefold())
    if name.startswith(FORM_FIELD_PREFIX) and name[len(FORM_FIELD_PREFIX) :].strip():
        return ("field", name[len(FORM_FIELD_PREFIX) :].strip())
    return None


def _tester(op: str, value: str, where: str) -> _Test:
    """The positive test for `op`, over (raw, casefolded) fact text; everything precomputed."""
    if op == "match":
        try:
            pattern = re.compile(value, re.IGNORECASE)  # osTicket wraps bare patterns as /…/iu
        except re.error as exc:
            raise InvalidFilter(where, f"invalid regular expression: {exc}") from exc
        search = pattern.search
        return lambda raw, _folded: search(raw) is not None
    folded = value.casefold()
    if op == "equal":
        return lambda _raw, text: text == folded
    if op == "contains":
        return lambda _raw, text: folded in text
    if op == "starts_with":
        return lambda _raw, text: text.startswith(folded)
    if op == "ends_with":
        return lambda _raw, text: text.endswith(folded)
    raise AssertionError(op)  # pragma: no cover - OPS is checked first


def _compile_action(data: object, where: str) -> Action:
    if not isinstance(data, Mapping):
        raise InvalidFilter(where, "must be an object with type and value")
    kind = data.get("type")
    value = data.get("value")
    at = f"{where}.value"
    if kind not in ACTION_TYPES:
        raise InvalidFilter(f"{where}.type", f"unknown action type {kind!r}")
    if kind == "reject":
        if value not in (None, True):
            raise InvalidFilter(at, "reject takes no value")
        return Action("reject")
    if kind in ID_ACTIONS or kind == "canned_response":
        return Action(kind, _positive_int(value, at))
    if kind == "priority":
        if value not in PRIORITIES:
            raise InvalidFilter(at, f"priority must be one of {', '.join(PRIORITIES)}")
        return Action(kind, value)
    if kind == "status":
        if value not in INITIAL_STATUSES:
            raise InvalidFilter(at, f"status must be one of {', '.join(INITIAL_STATUSES)}")
        return Action(kind, value)
    if kind == "disable_autoresponse":
        return Action(kind, True if value is None else _bool(value, at))
    # add_collaborator
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise InvalidFilter(at, f"{value!r} is not a valid email address")
    return Action(kind, value.strip())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidFilter(where, "must be a positive integer id")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidFilter(where, "must be true or false")
    return value


def _list(value: object, where: str) -> Iterable[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidFilter(where, "must be a list")
    return value
