"""The OpenAPI 3 document of `/api/v1` (`GET /api/v1/openapi.json`, no auth).

Generated, not written: paths come from the app's url_map (an `<any(...)>` segment becomes one
path per value, so a new ticket action or config collection appears by itself), bodies from the
marshmallow schemas that load them (tickets_http.ACTIONS, config_rules, payloads), and each
route's words from OPERATIONS below. A v1 route missing from OPERATIONS is left out of the
document, and tests/unit/test_openapi.py fails until it is described.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib.metadata import version as package_version
from itertools import product
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app
from marshmallow import INCLUDE, Schema, fields, validate
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from libs.events.types.config import CONFIG_TYPES
from libs.events.types.fields import STATES, Attachment, Author, Person
from libs.platform.http import TicketNumber, json_response
from services.intake.commands import CONFLICT_EVENTS
from services.intake.config_resources import HIDDEN, SECRETS
from services.intake.domain import admission, config_rules
from services.intake.domain.payloads import OsTicketJson
from services.intake.entrypoints.config_http import COLLECTIONS
from services.intake.entrypoints.tickets_http import ACTIONS
from services.query.readers import SORTS

bp = Blueprint("openapi", __name__)
_CACHE = "deskstream.openapi"
OPENAPI_VERSION = "3.0.3"


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    document = current_app.extensions.get(_CACHE)
    if document is None:  # the routes are fixed once the app serves: build it once per app
        document = current_app.extensions[_CACHE] = build_document(current_app)
    return json_response(document)


# -- response shapes (the read side answers dicts; these schemas only describe them) ----------


class Shape(Schema):
    class Meta:
        unknown = INCLUDE  # resources grow ("extend, don't rename"): clients ignore new keys


class Ref(Shape):
    id = fields.Integer(required=True)
    name = fields.String(required=True, allow_none=True)


class Assignee(Shape):
    agent = fields.Nested(Ref, required=True, allow_none=True)
    team = fields.Nested(Ref, required=True, allow_none=True)


class SlaStatus(Shape):
    plan = fields.Nested(Ref, required=True, allow_none=True)
    due_at = fields.DateTime(required=True, allow_none=True)
    overdue = fields.Boolean(required=True)


class TicketReference(Shape):
    number = fields.String(required=True)


class Collaborator(Shape):
    email = fields.Email(required=True)
    name = fields.String(required=True, allow_none=True)
    active = fields.Boolean(
        required=True, metadata={"description": "false: on the ticket, but gets no mail"}
    )


class TicketSummary(Shape):
    number = fields.String(required=True)
    id = fields.UUID(required=True)
    version = fields.Integer(required=True, metadata={"description": "send it back to change"})
    subject = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"description": "built-in or custom (/api/v1/ticket-statuses)"}
    )
    state = fields.String(
        required=True,
        metadata={"enum": list(STATES), "description": "what the status means: queues read it"},
    )
    priority = fields.String(required=True, allow_none=True)
    channel = fields.String(required=True)
    requester = fields.Nested(Person, required=True)
    collaborators = fields.List(fields.Nested(Collaborator), required=True)
    links = fields.List(
        fields.Nested(TicketReference),
        required=True,
        metadata={"description": "linked tickets (both record the link)"},
    )
    merged_into = fields.Nested(
        TicketReference,
        required=True,
        allow_none=True,
        metadata={"description": "the ticket this one was merged into; its thread lives there"},
    )
    department = fields.Nested(Ref, required=True, allow_none=True)
    help_topic = fields.Nested(Ref, required=True, allow_none=True)
    assignee = fields.Nested(Assignee, required=True)
    sla = fields.Nested(SlaStatus, required=True)
    created_at = fields.DateTime(required=True, allow_none=True)
    updated_at = fields.DateTime(required=True, allow_none=True)


class ThreadEntry(Shape):
    id = fields.String(required=True)
    ticket = fields.Nested(
        TicketReference,
        required=True,
        metadata={"description": "the ticket it was written on: a merged child's, or this one"},
    )
    kind = fields.String(required=True, metadata={"enum": ["message", "response", "note"]})
    author = fields.Nested(Author, required=True)
    body = fields.String(required=True)
    body_html = fields.String(required=True, allow_none=True)
    attachments = fields.List(
        fields.Nested(Attachment),
        required=True,
        metadata={"description": "an inline image's `content_id` is the body_html's `cid:`"},
    )
    created_at = fields.DateTime(required=True, allow_none=True)


class Ticket(TicketSummary):
    thread = fields.List(fields.Nested(ThreadEntry), required=True)


class HistoryEntry(Shape):
    position = fields.Integer(required=True)
    version = fields.Integer(required=True)
    type = fields.String(required=True, metadata={"description": "the event type (docs/events.md)"})
    time = fields.DateTime(required=True)
    data = fields.Dict(required=True)


class TicketHistory(Shape):
    number = fields.String(required=True)
    events = fields.List(fields.Nested(HistoryEntry), required=True)


class QueuePage(Shape):
    queue = fields.String(required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    tickets = fields.List(fields.Nested(TicketSummary), required=True)


class TicketVersion(Shape):
    number = fields.String(required=True)
    version = fields.Integer(required=True)


class ErrorDetail(Shape):
    code = fields.String(required=True, metadata={"example": "validation_failed"})
    message = fields.String(required=True)
    field = fields.String(
        metadata={"description": "400: the path into the body that is wrong, e.g. rules[0].value"}
    )
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    current_version = fields.Integer(metadata={"description": "409: the version now"})
    expected_version = fields.Integer(metadata={"description": "409: the version you sent"})
    events = fields.List(
        fields.Nested(HistoryEntry),
        metadata={
            "description": "409 on a ticket: the newest events appended since your version "
            f"(at most {CONFLICT_EVENTS}, oldest first)"
        },
    )
    events_total = fields.Integer(
        metadata={"description": "409 on a ticket: how many events were appended since"}
    )
    reason = fields.String(
        metadata={
            "description": "403/422 refusing a new ticket: the rule that refused it",
            "enum": [admission.BANNED, admission.REJECTED, admission.OVER_LIMIT],
        }
    )
    filter_id = fields.Integer(metadata={"description": "403 `rejected`: the filter's id"})


class Error(Shape):
    error = fields.Nested(ErrorDetail, required=True)


class CloudEvent(Schema):
    """A CloudEvent 1.0 in structured mode."""

    specversion = fields.String(required=True, metadata={"enum": ["1.0"]})
    id = fields.String(required=True)
    source = fields.String(required=True)
    type = fields.String(required=True)
    subject = fields.String()
    time = fields.String(metadata={"format": "date-time"})
    datacontenttype = fields.String()
    dataschema = fields.String()
    data = fields.Raw(metadata={"description": "JSON data (or send data_base64)"})
    data_base64 = fields.String()


class EventReceived(Shape):
    ticket = fields.String(required=True, metadata={"description": "the ticket's number"})
    action = fields.String(required=True, metadata={"enum": ["open_ticket", "append_message"]})
    duplicate = fields.Boolean(required=True, metadata={"description": "seen (source, id) before"})


ERRORS = {
    "400": ("BadRequest", "The request is invalid; `field` names what is wrong."),
    "401": ("Unauthorized", "No valid credentials."),
    "403": ("Forbidden", "Valid credentials that may not do this."),
    "404": ("NotFound", "No such resource (or none you may see)."),
    "409": ("Conflict", "The version you sent is stale: nothing was changed."),
    "413": ("TooLarge", "The body is larger than the server accepts."),
    "415": ("UnsupportedMediaType", "Send Content-Type: application/json."),
    "422": ("Refused", "Well-formed, but nothing acts on it: nothing was written."),
    "429": (
        "TooManyRequests",
        "Too many wrong credentials from this address: retry after `Retry-After` seconds.",
    ),
}

AGENT: list[dict[str, list[str]]] = [{"agentToken": []}]
ADMIN = AGENT

# -- operations: (METHOD, path with {params}) -> the operation for one set of `<any>` values ----

Values = Mapping[str, str]
Operation = dict[str, Any]
PARAMETERS = {
    "number": "The ticket number, e.g. 123456.",
    "thing_id": "The id the server gave it on create.",
    "name": "The queue (`open`).",
}


def _errors(*statuses: str) -> dict[str, Any]:
    if "401" in statuses:  # whatever takes credentials is throttled per address (S12)
        statuses = (*statuses, "429")
    return {status: {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in statuses}


def _json(schema: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _body(schema: Any) -> dict[str, Any]:
    return {"required": True, **_json(schema)}


IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": 'The version you saw (`"3"`), instead of `expected_version` in the body.',
}
ETAG = {"ETag": {"schema": {"type": "string"}, "description": 'The version, e.g. `"3"`.'}}


def _create_ticket(_: Values) -> Operation:
    return {
        "tags": ["tickets"],
        "summary": "Open a ticket",
        "description": "osTicket's fields (`name`, `email`, `subject`, `message` as text or a "
        "`data:text/html,...` URL, `topicId`, `priority`, attachments as data URLs); any other "
        "field is a custom field. As an agent or with an API key; `Idempotency-Key` makes a "
        "retry answer the same ticket.",
        "security": [*AGENT, {"apiKey": []}],
        "parameters": [
            {"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}},
        ],
        "requestBody": _body(OsTicketJson),
        "responses": {
            "201": {"description": "Opened.", **_json(TicketVersion)},
            **_errors("400", "401", "403", "413", "415", "422"),
        },
    }


def _get_ticket(_: Values) -> Operation:
    return {
        "tags": ["tickets"],
        "summary": "A ticket with its thread",
        "security": AGENT,
        "responses": {
            "200": {"description": "The ticket.", "headers": ETAG, **_json(Ticket)},
            **_errors("401", "404"),
        },
    }


def _ticket_events(_: Values) -> Operation:
    return {
        "tags": ["tickets"],
        "summary": "A ticket's event history",
        "security": AGENT,
        "responses": {
            "200": {"description": "Every event of the ticket.", **_json(TicketHistory)},
            **_errors("401", "404"),
        },
    }


def _ticket_command(values: Values) -> Operation:
    action = values["action"]
    schema = ACTIONS[action][0]
    doc = (type(schema).__doc__ or "").strip()
    return {
        "tags": ["ticket commands"],
        "operationId": f"ticket_{action}",
        "summary": f"Ticket command: {action}",
        "description": (doc + "\n\n" if doc else "")
        + "Name the version you saw (`expected_version` or If-Match); the answer is the new "
        "version, or 409 with the events appended since.",
        "security": AGENT,
        "parameters": [IF_MATCH],
        "requestBody": _body(
            _with(schema, f"{_name(action)}Command", expected_version=_expected_version())
        ),
        "responses": {
            "200": {"description": "Done.", "headers": ETAG, **_json(TicketVersion)},
            **_errors("400", "401", "403", "404", "409", "415"),
        },
    }


def _queue(_: Values) -> Operation:
    sorts = sorted(SORTS)
    return {
        "tags": ["queues"],
        "summary": "A queue's tickets, a page at a time",
        "security": AGENT,
        "parameters": [
            {"in": "query", "name": "page", "schema": {"type": "integer", "minimum": 1}},
            {
                "in": "query",
                "name": "per_page",
                "schema": {"type": "integer", "minimum": 1, "maximum": 200},
            },
            {
                "in": "query",
                "name": "sort",
                "schema": {"type": "string", "enum": sorts + [f"-{s}" for s in sorts]},
                "description": "Prefix `-` for descending; default `-created`.",
            },
        ],
        "responses": {
            "200": {"description": "One page.", **_json(QueuePage)},
            **_errors("400", "401", "404"),
        },
    }


def _cloudevent_in(_: Values) -> Operation:
    return {
        "tags": ["events"],
        "summary": "A CloudEvent from an external system",
        "description": "Structured mode (`Content-Type: application/cloudevents+json`) or binary "
        "mode (`ce-specversion`, `ce-id`, `ce-source`, `ce-type` headers; the body is the data). "
        "An admin's event mapping turns it into a ticket or a message; the same (source, id) "
        "again answers the first ticket with `duplicate: true`.",
        "security": [*AGENT, {"apiKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/cloudevents+json": {"schema": CloudEvent}},
        },
        "responses": {
            "202": {"description": "Acted on (committed).", **_json(EventReceived)},
            **_errors("400", "401", "403", "413", "415", "422"),
        },
    }


def _document(_: Values) -> Operation:
    return {
        "tags": ["meta"],
        "summary": "This document",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.", **_json({"type": "object"})}},
    }


def _thing(values: Values) -> str:
    return COLLECTIONS[values["collection"]]


def _name(thing: str) -> str:
    """`help-topic` -> `HelpTopic`."""
    return "".join(part.title() for part in thing.split("-"))


def _label(thing: str) -> str:
    return thing.replace("-", " ")


def _config_list(values: Values) -> Operation:
    thing = _thing(values)
    items = {"type": "object", "properties": {"items": {"type": "array", "items": _shown(thing)}}}
    return {
        "tags": ["configuration"],
        "summary": f"Every {_label(thing)}",
        "security": ADMIN,
        "responses": {
            "200": {"description": "All of them.", **_json(items)},
            **_errors("401", "403"),
        },
    }


def _config_create(values: Values) -> Operation:
    thing = _thing(values)
    created = _shown(thing)
    if thing in SECRETS:
        secret = fields.String(
            required=True, metadata={"description": "Shown this once; stored only hashed."}
        )
        created = _with(created, f"New{_name(thing)}", **{SECRETS[thing]: secret})
    return {
        "tags": ["configuration"],
        "summary": f"Define a new {_label(thing)}",
        "description": CONFIG_TYPES[thing][2],
        "security": ADMIN,
        "requestBody": _body(_config_body(thing)),
        "responses": {
            "201": {
                "description": "Defined; `Location` names it.",
                "headers": {"Location": {"schema": {"type": "string"}}, **ETAG},
                **_json(created),
            },
            **_errors("400", "401", "403", "415"),
        },
    }


def _config_get(values: Values) -> Operation:
    thing = _thing(values)
    return {
        "tags": ["configuration"],
        "summary": f"One {_label(thing)}",
        "security": ADMIN,
        "responses": {
            "200": {"description": "Its definition.", "headers": ETAG, **_json(_shown(thing))},
            **_errors("401", "403", "404"),
        },
    }


def _config_replace(values: Values) -> Operation:
    thing = _thing(values)
    body = _config_body(thing, replacement=True)
    return {
        "tags": ["configuration"],
        "summary": f"Replace a {_label(thing)}'s whole definition",
        "description": "What the body leaves out is reset to its default.",
        "security": ADMIN,
        "parameters": [IF_MATCH],
        "requestBody": _body(body),
        "responses": {
            "200": {"description": "Replaced.", "headers": ETAG, **_json(_shown(thing))},
            **_errors("400", "401", "403", "404", "409", "415"),
        },
    }


@cache  # one schema per name: apispec matches a $ref by the schema's class
def _shown(thing: str) -> Schema:
    """A thing as the API shows it: its definition, credential hashes left out, and version."""
    schema_class = CONFIG_TYPES[thing][1]
    hidden = [name for name in schema_class._declared_fields if name in HIDDEN]
    return _with(
        schema_class(exclude=hidden),
        _name(thing),
        version=fields.Integer(required=True, metadata={"description": "Send it back on a PUT."}),
    )


@cache
def _config_body(thing: str, *, replacement: bool = False) -> Schema:
    """A POST body, or with `replacement` a PUT body (which may name the version it replaces)."""
    more: dict[str, fields.Field] = {}
    if replacement:
        more["expected_version"] = _expected_version()
    if thing == "agent":  # write-only, loaded beside the schema (config_rules.parse)
        low, high = config_rules.PASSWORD_LENGTH
        more["password"] = fields.String(
            allow_none=True, load_only=True, validate=validate.Length(min=low, max=high)
        )
    suffix = "Replacement" if replacement else "Body"
    return _with(config_rules.body_schema(thing), f"{_name(thing)}{suffix}", **more)


def _with(schema: Schema, name: str, **more: fields.Field) -> Schema:
    """`schema` (its only/exclude kept) with `more` fields, as a schema named `name`. Not allOf:
    the loading schemas refuse unknown keys, so an allOf of two of them admits no body."""
    extended = type(schema).from_dict(more, name=name)
    only = None if schema.only is None else set(schema.only)
    return extended(only=only, exclude=schema.exclude)


def _expected_version() -> fields.Field:
    return fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "The version you saw (or send If-Match); stale answers 409."},
    )


OPERATIONS: dict[tuple[str, str], Callable[[Values], Operation]] = {
    ("POST", "/api/v1/tickets"): _create_ticket,
    ("GET", "/api/v1/tickets/{number}"): _get_ticket,
    ("GET", "/api/v1/tickets/{number}/events"): _ticket_events,
    ("POST", "/api/v1/tickets/{number}/{action}"): _ticket_command,
    ("GET", "/api/v1/queues/{name}/tickets"): _queue,
    ("GET", "/api/v1/{collection}"): _config_list,
    ("POST", "/api/v1/{collection}"): _config_create,
    ("GET", "/api/v1/{collection}/{thing_id}"): _config_get,
    ("PUT", "/api/v1/{collection}/{thing_id}"): _config_replace,
    ("POST", "/api/v1/events"): _cloudevent_in,
    ("GET", "/api/v1/openapi.json"): _document,
}

# -- the document ---------------------------------------------------------------------------

_SEGMENT = re.compile(r"<(?:[^<>]+:)?(\w+)>")


def build_document(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="Deskstream API",
        version=package_version("deskstream"),
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "The native v1 API. osTicket's `/api/tickets.*` is documented in docs/api.md."
        },
    )
    _components(spec)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        template = _SEGMENT.sub(r"{\1}", rule.rule)
        if not template.startswith("/api/v1/"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            describe = OPERATIONS.get((method, template))
            if describe is None:
                continue  # undocumented: the test names it
            for path, values in _expansions(rule, template):
                operation = describe(values)
                operation["parameters"] = _path_parameters(rule) + operation.get("parameters", [])
                spec.path(path=path, operations={method.lower(): operation})
    return spec.to_dict()


def _expansions(rule: Rule, template: str) -> Iterator[tuple[str, dict[str, str]]]:
    """One (path, values) per combination of the rule's `<any(...)>` segments."""
    choices = {
        name: sorted(converter.items)
        for name, converter in rule._converters.items()
        if isinstance(converter, AnyConverter)
    }
    for combination in product(*choices.values()):
        values = dict(zip(choices, combination, strict=True))
        path = template
        for name, value in values.items():
            path = path.replace(f"{{{name}}}", value)
        yield path, values


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            continue
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1}
            if isinstance(converter, IntegerConverter)
            else {"type": "string"}
        )
        if isinstance(converter, TicketNumber):
            schema["pattern"] = f"^{TicketNumber.regex}$"
        parameter = {"in": "path", "name": name, "required": True, "schema": schema}
        if name in PARAMETERS:
            parameter["description"] = PARAMETERS[name]
        parameters.append(parameter)
    return parameters


def _components(spec: APISpec) -> None:
    spec.components.security_scheme(
        "agentToken",
        {"type": "http", "scheme": "bearer", "description": "An agent's API token."},
    )
    spec.components.security_scheme(
        "apiKey",
        {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."},
    )
    spec.components.schema("Error", schema=Error)
    for status, (name, description) in ERRORS.items():
        response: dict[str, Any] = {"description": description, **_json(Error)}
        if status == "409":
            response["description"] += (
                " `current_version` and, on a ticket, `events` (the newest) and `events_total`"
                " say what changed."
            )
        spec.components.response(name, response)
