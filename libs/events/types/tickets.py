"""Ticket-stream events (`ticket-<uuid>`), published on deskstream.tickets.v1."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from libs.events.catalog import EventCatalog
from libs.events.types.fields import (
    CHANNELS,
    STATES,
    Attachment,
    Author,
    ConfigId,
    Email,
    Id,
    Person,
    Priority,
    TicketId,
)


class TicketCreated(Schema):
    ticket_id = TicketId(required=True)
    number = fields.String(required=True, validate=validate.Length(min=1, max=20))
    subject = fields.String(required=True, validate=validate.Length(max=255))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    requester = fields.Nested(Person, required=True)
    phone = fields.String(allow_none=True, load_default=None)
    entry_id = fields.UUID(required=True)  # the first thread entry
    body = fields.String(required=True)
    body_html = fields.String(allow_none=True, load_default=None)
    attachments = fields.List(fields.Nested(Attachment), load_default=list)
    help_topic_id = ConfigId(allow_none=True, load_default=None)
    priority = Priority(allow_none=True, load_default=None)
    autorespond = fields.Boolean(load_default=True)
    alert = fields.Boolean(load_default=True)
    source_ip = fields.String(allow_none=True, load_default=None)
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), load_default=dict)
    # Email meta-data for filters (empty for other channels).
    to = fields.List(fields.String(), load_default=list)
    cc = fields.List(fields.String(), load_default=list)
    reply_to = fields.String(allow_none=True, load_default=None)
    headers = fields.Dict(keys=fields.String(), load_default=dict)
    # The email's Message-ID (threading looks replies up by it) and, when a reply to a ticket
    # that cannot reopen opened this one instead, that ticket's number.
    message_id = fields.String(allow_none=True, load_default=None)
    previous_ticket = fields.String(allow_none=True, load_default=None)
    # The department the email was addressed to (a department's `email`); routing prefers it
    # to the help topic's.
    department_id = ConfigId(allow_none=True, load_default=None)


class MessageAppended(Schema):
    entry_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("message", "response", "note")))
    author = fields.Nested(Author, required=True)
    body = fields.String(required=True)
    body_html = fields.String(allow_none=True, load_default=None)
    attachments = fields.List(fields.Nested(Attachment), load_default=list)
    reply_to = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(("requester", "all", "none"))
    )
    channel = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(CHANNELS))
    message_id = fields.String(allow_none=True, load_default=None)
    # False for an auto-reply or a bounce: nothing answers or alerts on it (mail loops).
    autorespond = fields.Boolean(load_default=True)


class TicketRouted(Schema):
    department_id = ConfigId(required=True)
    help_topic_id = ConfigId(allow_none=True, load_default=None)
    priority = Priority(required=True)
    sla_plan_id = ConfigId(allow_none=True, load_default=None)
    filter_ids = fields.List(Id(), load_default=list)
    autorespond = fields.Boolean(load_default=True)
    reason = fields.String(
        load_default="new", validate=validate.OneOf(("new", "transfer", "reopen", "help_topic"))
    )


class TicketAssigned(Schema):
    agent_id = ConfigId(allow_none=True, load_default=None)
    team_id = ConfigId(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class AssignmentReleased(Schema):
    agent = fields.Boolean(load_default=True)
    team = fields.Boolean(load_default=True)
    reason = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class TicketTransferred(Schema):
    department_id = ConfigId(required=True)
    previous_department_id = ConfigId(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class TicketStatusChanged(Schema):
    status = fields.String(required=True, validate=validate.Length(min=1, max=40))
    # The status's state (absent in older events: derived from the built-in name, state_of);
    # whether a closed-state status lets the ticket reopen (absent: it does).
    state = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(STATES))
    reopenable = fields.Boolean(allow_none=True, load_default=None)
    previous = fields.String(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class TicketPriorityChanged(Schema):
    priority = Priority(required=True)
    previous = Priority(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class TicketFieldUpdated(Schema):
    field = fields.String(required=True)
    value = fields.Raw(allow_none=True)
    previous = fields.Raw(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)


class CollaboratorChanged(Schema):
    email = Email(required=True)
    name = fields.String(allow_none=True, load_default=None)
    by = fields.Nested(Author, required=True)
    # CollaboratorAdded names the collaborator as they now stand: added again with active false
    # (true) they are disabled (enabled) — still on the ticket, but sent no mail while disabled.
    active = fields.Boolean(load_default=True)


SLA_TARGETS = ("first_response", "resolution")


class SlaApplied(Schema):
    sla_plan_id = ConfigId(allow_none=True, load_default=None)
    grace_hours = fields.Float(required=True)
    due_at = fields.AwareDateTime(required=True, format="iso")
    # Which target the due date measures; first response while no agent has answered.
    target = fields.String(load_default="resolution", validate=validate.OneOf(SLA_TARGETS))
    schedule_id = ConfigId(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)


class TicketOverdue(Schema):
    due_at = fields.AwareDateTime(required=True, format="iso")
    target = fields.String(load_default="resolution", validate=validate.OneOf(SLA_TARGETS))


MERGE_MODES = ("combine", "separate")


class TicketMerged(Schema):
    into_ticket_id = TicketId(required=True)
    into_number = fields.String(required=True)
    by = fields.Nested(Author, required=True)
    # combine: the thread reads interleaved with the parent's; separate: as its own block.
    mode = fields.String(load_default="combine", validate=validate.OneOf(MERGE_MODES))
    deleted = fields.Boolean(load_default=False)  # the child leaves every view but the parent's


class MergedTicket(Schema):
    ticket_id = TicketId(required=True)
    number = fields.String(required=True)


class ChildTicketsMerged(Schema):
    tickets = fields.List(fields.Nested(MergedTicket), required=True)
    mode = fields.String(load_default="combine", validate=validate.OneOf(MERGE_MODES))
    by = fields.Nested(Author, required=True)


class TicketLinked(Schema):
    ticket_id = TicketId(required=True)
    number = fields.String(required=True)
    by = fields.Nested(Author, required=True)


class TicketRejected(Schema):
    reason = fields.String(required=True)
    filter_id = Id(allow_none=True, load_default=None)


def register(catalog: EventCatalog) -> None:
    add = catalog.register
    add(
        "TicketCreated",
        TicketCreated,
        stream="ticket",
        description="A ticket was opened, with its first message.",
    )
    add(
        "MessageAppended",
        MessageAppended,
        stream="ticket",
        description="A message, response or internal note joined the thread.",
    )
    add(
        "TicketRouted",
        TicketRouted,
        stream="ticket",
        description="Routing chose department, priority and SLA plan (help topic, filters).",
    )
    add(
        "TicketAssigned",
        TicketAssigned,
        stream="ticket",
        description="An agent and/or team now own the ticket.",
    )
    add(
        "AssignmentReleased",
        AssignmentReleased,
        stream="ticket",
        description="The ticket's assignment was released.",
    )
    add(
        "TicketTransferred",
        TicketTransferred,
        stream="ticket",
        description="The ticket moved to another department.",
    )
    add(
        "TicketStatusChanged",
        TicketStatusChanged,
        stream="ticket",
        description="The ticket's status changed (built-in or custom), with its new state.",
    )
    add(
        "TicketPriorityChanged",
        TicketPriorityChanged,
        stream="ticket",
        description="The ticket's priority changed.",
    )
    add(
        "TicketFieldUpdated",
        TicketFieldUpdated,
        stream="ticket",
        description="A ticket field was edited, with a reason.",
    )
    add(
        "CollaboratorAdded",
        CollaboratorChanged,
        stream="ticket",
        description="Someone now follows the ticket's thread.",
    )
    add(
        "CollaboratorRemoved",
        CollaboratorChanged,
        stream="ticket",
        description="A collaborator was removed.",
    )
    add(
        "SlaApplied",
        SlaApplied,
        stream="ticket",
        description="The SLA service set the ticket's due date.",
    )
    add(
        "TicketOverdue",
        TicketOverdue,
        stream="ticket",
        description="The due date passed while the ticket was open (once per due date).",
    )
    add(
        "TicketMerged",
        TicketMerged,
        stream="ticket",
        description="The ticket was merged into another.",
    )
    add(
        "ChildTicketsMerged",
        ChildTicketsMerged,
        stream="ticket",
        description="Other tickets were merged into this one (the parent).",
    )
    add(
        "TicketLinked",
        TicketLinked,
        stream="ticket",
        description="The ticket was linked to another (both tickets record it).",
    )
    add(
        "TicketUnlinked",
        TicketLinked,
        stream="ticket",
        description="The link to another ticket was removed (both tickets record it).",
    )
    add(
        "TicketRejected",
        TicketRejected,
        stream="ticket",
        description="A filter rejected the ticket; it leaves every queue but stays in the log.",
    )
