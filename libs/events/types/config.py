"""Config-stream events (`config-<thing>-<id>`): one `<Thing>Defined` with the full new state.

Consumers upsert; the latest event of a stream is the thing's current definition.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from libs.events.catalog import EventCatalog
from libs.events.types.fields import (
    CHANNELS,
    FILTER_ACTIONS,
    FILTER_OPS,
    NAME_LENGTH,
    ConfigId,
    Email,
    Id,
    Int,
    Priority,
)

Status = fields.String(
    load_default="active", validate=validate.OneOf(("active", "archived", "disabled"))
)
TIME = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


class Autoresponder(Schema):
    new_ticket = fields.Boolean(load_default=True)
    new_message = fields.Boolean(load_default=True)


class DepartmentDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    parent_id = ConfigId(allow_none=True, load_default=None)
    manager_id = ConfigId(allow_none=True, load_default=None)
    status = Status
    sla_plan_id = ConfigId(allow_none=True, load_default=None)
    schedule_id = ConfigId(allow_none=True, load_default=None)
    email = Email(allow_none=True, load_default=None)
    autoresponder = fields.Nested(
        Autoresponder, load_default=lambda: {"new_ticket": True, "new_message": True}
    )
    alert_recipients = fields.String(
        load_default="members_and_extended",
        validate=validate.OneOf(("members_and_extended", "members", "admin", "none")),
    )
    auto_assign = fields.Nested(lambda: AutoAssign(), allow_none=True, load_default=None)
    default = fields.Boolean(load_default=False)


ASSIGN_STRATEGIES = ("round_robin", "fewest_open")


class AutoAssign(Schema):
    """A fixed agent and/or team, or a strategy over the department's available members."""

    agent_id = ConfigId(allow_none=True, load_default=None)
    team_id = ConfigId(allow_none=True, load_default=None)
    strategy = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(ASSIGN_STRATEGIES)
    )


class HelpTopicDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    department_id = ConfigId(allow_none=True, load_default=None)
    priority = Priority(allow_none=True, load_default=None)
    sla_plan_id = ConfigId(allow_none=True, load_default=None)
    auto_assign = fields.Nested(AutoAssign, allow_none=True, load_default=None)
    status = Status
    public = fields.Boolean(load_default=True)


class SlaPlanDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    # The resolution target (osTicket's grace period), at most a year as in osTicket.
    grace_hours = fields.Float(
        required=True, validate=validate.Range(min=0, max=8760, min_inclusive=False)
    )
    # Optional first-response target: due first while no agent has responded.
    first_response_hours = fields.Float(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=8760, min_inclusive=False),
    )
    schedule_id = ConfigId(allow_none=True, load_default=None)
    transient = fields.Boolean(load_default=False)
    alerts_enabled = fields.Boolean(load_default=True)
    default = fields.Boolean(load_default=False)


Interval = fields.List(
    fields.String(validate=validate.Regexp(TIME)), validate=validate.Length(equal=2)
)


class Hours(Schema):
    mon = fields.List(Interval, load_default=list)
    tue = fields.List(Interval, load_default=list)
    wed = fields.List(Interval, load_default=list)
    thu = fields.List(Interval, load_default=list)
    fri = fields.List(Interval, load_default=list)
    sat = fields.List(Interval, load_default=list)
    sun = fields.List(Interval, load_default=list)


class ScheduleDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(max=NAME_LENGTH))
    timezone = fields.String(required=True)
    hours = fields.Nested(Hours, required=True)
    holidays = fields.List(fields.Date(), load_default=list)


class Rule(Schema):
    field = fields.String(required=True)
    op = fields.String(required=True, validate=validate.OneOf(FILTER_OPS))
    value = fields.String(required=True)


class Action(Schema):
    type = fields.String(required=True, validate=validate.OneOf(FILTER_ACTIONS))
    value = fields.Raw(allow_none=True, load_default=None)


class FilterDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(max=NAME_LENGTH))
    order = Int(load_default=0)
    enabled = fields.Boolean(load_default=True)
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), load_default=list)
    match = fields.String(load_default="all", validate=validate.OneOf(("all", "any")))
    stop_on_match = fields.Boolean(load_default=False)
    rules = fields.List(fields.Nested(Rule), load_default=list)
    actions = fields.List(fields.Nested(Action), load_default=list)


class TemplateDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(max=NAME_LENGTH))
    subject = fields.String(required=True)
    body = fields.String(required=True)


class ExtendedAccess(Schema):
    department_id = ConfigId(required=True)
    role = fields.String(load_default="agent")
    alerts = fields.Boolean(load_default=True)


# The role permissions Deskstream enforces, by osTicket's names; an agent definition's
# `permissions` lists some of them, and an admin holds them all.
PERMISSIONS = ("ticket.assign", "ticket.release", "ticket.transfer", "ticket.merge", "ticket.link")


class AgentDefined(Schema):
    id = ConfigId(required=True)
    email = Email(required=True)
    name = fields.String(required=True, validate=validate.Length(max=NAME_LENGTH))
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    # argon2 hashes only: a secret never enters the log.
    password_hash = fields.String(allow_none=True, load_default=None)
    token_hash = fields.String(allow_none=True, load_default=None)
    department_id = ConfigId(allow_none=True, load_default=None)
    extended_access = fields.List(fields.Nested(ExtendedAccess), load_default=list)
    permissions = fields.List(fields.String(), load_default=list)
    team_ids = fields.List(Id(), load_default=list)
    on_vacation = fields.Boolean(load_default=False)
    admin = fields.Boolean(load_default=False)
    active = fields.Boolean(load_default=True)


class TeamDefined(Schema):
    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(max=NAME_LENGTH))
    lead_id = ConfigId(allow_none=True, load_default=None)
    member_ids = fields.List(Id(), load_default=list)
    assignment_alerts = fields.Boolean(load_default=True)


class ApiKeyDefined(Schema):
    id = ConfigId(required=True)
    prefix = fields.String(required=True)  # shown in logs and the admin UI instead of the key
    key_hash = fields.String(required=True)
    ip_allow = fields.List(fields.String(), load_default=list)
    can_create_tickets = fields.Boolean(load_default=True)
    active = fields.Boolean(load_default=True)
    notes = fields.String(load_default="")


class EventMappingDefined(Schema):
    """How a CloudEvent from an external system becomes a ticket or a message: the events of
    `type` (from a source starting with `source_prefix`) render these templates."""

    id = ConfigId(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    type = fields.String(required=True, validate=validate.Length(min=1, max=255))
    source_prefix = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(min=1, max=1000)
    )
    action = fields.String(
        load_default="open_ticket", validate=validate.OneOf(("open_ticket", "append_message"))
    )
    subject = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=1000))
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    requester_email = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=1000)
    )
    requester_name = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=1000)
    )
    help_topic_id = ConfigId(allow_none=True, load_default=None)
    priority = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    correlation = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=1000)
    )
    enabled = fields.Boolean(load_default=True)


class BannedEmailDefined(Schema):
    """One ban-list entry: an address (`spam@example.com`) or a domain (`example.com`), which
    bans its subdomains too. Email from a banned sender is refused (osTicket's ban list)."""

    id = ConfigId(required=True)
    email = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^(?:[^@\s]+@)?@?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$",
            error="an email address or a domain",
        ),
    )
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=255))
    active = fields.Boolean(load_default=True)


class TicketStatusDefined(Schema):
    """A custom ticket status (osTicket's ticket statuses): agents set it by `name`, and it puts
    the ticket in a `state`; a closed-state status lets the ticket reopen only if `reopenable`."""

    id = ConfigId(required=True)
    # Tickets record it by name: a lower-case slug, unique, never a built-in status's.
    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=40),
            validate.Regexp(
                r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="a lower-case slug like awaiting-customer"
            ),
        ],
    )
    state = fields.String(required=True, validate=validate.OneOf(("open", "closed", "archived")))
    reopenable = fields.Boolean(load_default=True)  # read for closed-state statuses only
    active = fields.Boolean(load_default=True)


CONFIG_TYPES: dict[str, tuple[str, type[Schema], str]] = {
    # thing -> (event name, schema, description)
    "department": ("DepartmentDefined", DepartmentDefined, "A department's full definition."),
    "help-topic": ("HelpTopicDefined", HelpTopicDefined, "A help topic's full definition."),
    "sla-plan": ("SlaPlanDefined", SlaPlanDefined, "An SLA plan's full definition."),
    "schedule": (
        "ScheduleDefined",
        ScheduleDefined,
        "A business-hours schedule's full definition.",
    ),
    "filter": ("FilterDefined", FilterDefined, "A ticket filter's full definition."),
    "template": ("TemplateDefined", TemplateDefined, "An email template's full definition."),
    "agent": ("AgentDefined", AgentDefined, "An agent's full definition (credential hashes only)."),
    "team": ("TeamDefined", TeamDefined, "A team's full definition."),
    "banned-email": (
        "BannedEmailDefined",
        BannedEmailDefined,
        "A ban-list entry (an address or a domain) and whether it is active.",
    ),
    "api-key": (
        "ApiKeyDefined",
        ApiKeyDefined,
        "An API key's definition (its hash, never the key).",
    ),
    "event-mapping": (
        "EventMappingDefined",
        EventMappingDefined,
        "How CloudEvents of one type from external systems open tickets or append messages.",
    ),
    "ticket-status": (
        "TicketStatusDefined",
        TicketStatusDefined,
        "A custom ticket status: its name, the state it puts tickets in, whether it reopens.",
    ),
}


def config_stream_id(thing: str, thing_id: int) -> str:
    if thing not in CONFIG_TYPES:
        raise ValueError(f"unknown config thing {thing!r}")
    return f"config-{thing}-{thing_id}"


def register(catalog: EventCatalog) -> None:
    for name, schema, description in CONFIG_TYPES.values():
        catalog.register(name, schema, stream="config", description=description)
