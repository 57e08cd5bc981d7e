"""CloudEvents in: read a CloudEvent 1.0 (structured or binary mode), pick the admin's event
mapping for it, and render what the mapping says — a ticket to open, or a message to append.

Templates are plain text with `{id}`, `{source}`, `{type}`, `{subject}`, `{time}`, `{data}` and
`{data.a.b}` (dict keys, list indexes) lookups; `{{` and `}}` are literal braces. Nothing else is
evaluated: no format specs, no attribute access, so a definition cannot reach into the process.
No I/O here; the caller loads the mappings and the ticket.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import orjson
from marshmallow import ValidationError
from marshmallow.validate import Email

from libs.events.envelope import NewEvent
from libs.events.storable import unstorable
from libs.events.types.fields import EMAIL_LENGTH, PRIORITIES
from libs.platform.errors import DeskstreamError, UnsupportedMediaType, ValidationFailed
from services.intake.domain.mail.rules import Placement, place_reply
from services.intake.domain.tickets import OpenTicket, Requester, TicketState, reopened

SPEC_VERSION = "1.0"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
ACTIONS = ("open_ticket", "append_message")
ATTRIBUTES = ("id", "source", "type", "subject", "time")
REQUIRED = ("specversion", "id", "source", "type")
OPTIONAL = ("subject", "time", "datacontenttype", "dataschema")
CHANNEL = "event"

_EMAIL = Email()  # the schemas' own check, so what passes here passes TicketCreated
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")
_NAME_LENGTH = 200  # Person.name


class EventRefused(DeskstreamError):
    """A well-formed CloudEvent the desk will not act on (422): nothing is appended."""

    status = 422
    code = "event_refused"


class NoMapping(EventRefused):
    code = "no_mapping"


# -- the event ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    data: Any = None  # JSON value, text, or None (no data, or binary data templates cannot read)


def from_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """An HTTP request: structured (`Content-Type: application/cloudevents+json`) or binary
    (`ce-*` headers, percent-encoded as the HTTP binding says; the body is the data)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type")
    if _media_type(content_type) == BATCH:
        raise UnsupportedMediaType("batched CloudEvents are not accepted: send one per request")
    if _media_type(content_type) == STRUCTURED:
        return from_structured(body)
    attributes = {k[3:]: unquote(v) for k, v in lowered.items() if k.startswith("ce-")}
    if not attributes:
        raise ValidationFailed(
            "not a CloudEvent: send Content-Type: application/cloudevents+json, "
            "or the ce-specversion, ce-id, ce-source and ce-type headers"
        )
    return _binary(attributes, body, content_type)


def from_kafka(headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> CloudEvent:
    """A Kafka record: binary mode (`ce_*` headers, the value is the data), or structured."""
    try:
        decoded = {k.lower(): v.decode() for k, v in headers if v is not None}
    except UnicodeDecodeError:
        raise ValidationFailed("a header is not UTF-8") from None
    content_type = decoded.get("content-type")
    if _media_type(content_type) == STRUCTURED:
        return from_structured(value or b"")
    attributes = {k[3:]: v for k, v in decoded.items() if k.startswith("ce_")}
    if not attributes:
        raise ValidationFailed("not a CloudEvent: no ce_* headers")
    return _binary(attributes, value or b"", content_type)


def from_structured(body: bytes) -> CloudEvent:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"malformed JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise ValidationFailed("a structured CloudEvent is a JSON object")
    attributes: dict[str, str] = {}
    for name in (*REQUIRED, *OPTIONAL):
        value = envelope.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationFailed(f"{name} must be a string", field=name)
        if value is not None:
            attributes[name] = value
    if "data" in envelope and "data_base64" in envelope:
        raise ValidationFailed("send data or data_base64, not both", field="data_base64")
    if "data_base64" in envelope:
        encoded = envelope["data_base64"]
        try:
            if not isinstance(encoded, str):
                raise ValueError
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ValidationFailed("data_base64 is not base64", field="data_base64") from None
        data = _data(raw, attributes.get("datacontenttype"))
    else:
        data = envelope.get("data")
    return _event(attributes, data)


def _binary(attributes: dict[str, str], body: bytes, content_type: str | None) -> CloudEvent:
    if content_type:
        attributes["datacontenttype"] = content_type
    return _event(attributes, _data(body, content_type))


def _event(attributes: Mapping[str, str], data: Any) -> CloudEvent:
    for name in REQUIRED:
        if not attributes.get(name):
            raise ValidationFailed(f"the CloudEvent has no {name}", field=name)
    for name, value in attributes.items():
        if "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise ValidationFailed(f"{name} must not contain NUL characters", field=name)
    # Data a template renders is re-serialised: what orjson cannot take (too deep, integers past
    # 64 bits) is refused here, in both modes and on both transports. NULs are dropped as the
    # templates render, so they may stay.
    problem = unstorable(data, "data", nul=True)
    if problem is not None:
        raise ValidationFailed(f"{problem[0]} {problem[1]}", field=problem[0])
    if attributes["specversion"] != SPEC_VERSION:
        raise ValidationFailed(
            f"specversion must be {SPEC_VERSION}, not {attributes['specversion']!r}",
            field="specversion",
        )
    time = attributes.get("time")
    if time is not None:
        try:
            datetime.fromisoformat(time)
        except ValueError:
            raise ValidationFailed(
                f"time must be an RFC 3339 timestamp, not {time!r}", field="time"
            ) from None
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        subject=attributes.get("subject"),
        time=time,
        datacontenttype=attributes.get("datacontenttype"),
        data=data,
    )


def _data(raw: bytes, content_type: str | None) -> Any:
    """JSON for a JSON (or unnamed) content type, text for text; other data stays unread."""
    if not raw.strip():
        return None
    media = _media_type(content_type)
    if media is None or media == "application/json" or media.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed(f"the data is not valid JSON: {exc}", field="data") from None
    if media.startswith("text/") or media.endswith("+xml") or media == "application/xml":
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise ValidationFailed("the text data is not UTF-8", field="data") from None
    return None


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


# -- templates ---------------------------------------------------------------------------------


class InvalidTemplate(ValueError):
    pass


_Part = str | tuple[str, ...]  # literal text, or a lookup: ("id",) / ("data", "a", "b")


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[_Part] = []
        literal, at = [], 0
        for token in _TOKEN.finditer(text):
            literal.append(text[at : token.start()])
            at = token.end()
            raw = token.group(0)
            if raw in ("{{", "}}"):
                literal.append(raw[0])
                continue
            if token.group(1) is None:
                raise InvalidTemplate(
                    f"unmatched {raw!r} at position {token.start()}; write {raw * 2} for a brace"
                )
            parts.append("".join(literal))
            literal = []
            parts.append(_lookup(token.group(1)))
        literal.append(text[at:])
        parts.append("".join(literal))
        return cls(text, tuple(p for p in parts if p != ""))

    @property
    def lookups(self) -> tuple[tuple[str, ...], ...]:
        return tuple(p for p in self.parts if isinstance(p, tuple))

    def render(self, event: CloudEvent, *, strict: bool = False) -> str:
        """Missing values render as ""; with `strict`, a missing value is a refusal."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _value(event, part)
            if value is None and strict:
                raise _Missing("{" + ".".join(part) + "}")
            out.append(_text(value))
        return "".join(out).replace("\x00", "")  # PostgreSQL text cannot hold NUL


class _Missing(Exception):
    pass


def _lookup(name: str) -> tuple[str, ...]:
    if name in ATTRIBUTES or name == "data":
        return (name,)
    head, _, path = name.partition(".")
    segments = tuple(path.split(".")) if path else ()
    if head != "data" or not segments or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidTemplate(
            f"unknown placeholder {{{name}}}: use {{id}}, {{source}}, {{type}}, {{subject}}, "
            "{time}, {data} or {data.<key>.<key>}"
        )
    return ("data", *segments)


def _value(event: CloudEvent, lookup: tuple[str, ...]) -> Any:
    if lookup[0] != "data":
        return getattr(event, lookup[0])
    value = event.data
    for segment in lookup[1:]:
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


# -- mappings ----------------------------------------------------------------------------------


class InvalidMapping(ValueError):
    """An event mapping definition that cannot be used; `field` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


TEMPLATE_FIELDS = (
    "subject", "body", "requester_email", "requester_name", "priority", "correlation",
)  # fmt: skip


@dataclass(frozen=True)
class EventMapping:
    """An `EventMappingDefined`, templates compiled."""

    id: int
    name: str
    type: str
    body: Template
    action: str = "open_ticket"
    source_prefix: str | None = None
    subject: Template | None = None
    requester_email: Template | None = None
    requester_name: Template | None = None
    help_topic_id: int | None = None
    priority: Template | None = None
    correlation: Template | None = None
    enabled: bool = True

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> EventMapping:
        """Compile and check a definition (raises InvalidMapping naming the field)."""
        templates: dict[str, Template | None] = {}
        for name in TEMPLATE_FIELDS:
            text = data.get(name)
            try:
                templates[name] = Template.parse(text) if text is not None else None
            except InvalidTemplate as exc:
                raise InvalidMapping(name, str(exc)) from None
        action = data.get("action", "open_ticket")
        if action not in ACTIONS:
            raise InvalidMapping("action", f"must be one of {', '.join(ACTIONS)}")
        body = templates["body"]
        if body is None or not body.text.strip():
            raise InvalidMapping("body", "every mapping needs one")
        mapping = cls(
            id=int(data["id"]),
            name=data["name"],
            type=data["type"],
            body=body,
            action=action,
            source_prefix=data.get("source_prefix"),
            subject=templates["subject"],
            requester_email=templates["requester_email"],
            requester_name=templates["requester_name"],
            help_topic_id=data.get("help_topic_id"),
            priority=templates["priority"],
            correlation=templates["correlation"],
            enabled=bool(data.get("enabled", True)),
        )
        mapping._check()
        return mapping

    def _check(self) -> None:
        if self.action == "open_ticket":
            for name in ("subject", "requester_email"):
                template = getattr(self, name)
                if template is None or not template.text.strip():
                    raise InvalidMapping(name, "a mapping that opens tickets needs one")
        if self.action == "append_message" and self.correlation is None:
            raise InvalidMapping(
                "correlation", "append_message needs one: it names the ticket to append to"
            )
        if self.correlation is not None and not self.correlation.lookups:
            raise InvalidMapping(
                "correlation", "use at least one placeholder, e.g. {data.alert_id}"
            )
        email = self.requester_email
        if email is not None and not email.lookups and not _is_email(email.text.strip()):
            raise InvalidMapping("requester_email", f"{email.text!r} is not an email address")
        priority = self.priority
        if (
            priority is not None
            and not priority.lookups
            and priority.text.strip().lower() not in PRIORITIES
        ):
            raise InvalidMapping("priority", f"must be one of {', '.join(PRIORITIES)}")

    def matches(self, event: CloudEvent) -> bool:
        return (
            self.enabled
            and self.type == event.type
            and (self.source_prefix is None or event.source.startswith(self.source_prefix))
        )


def choose_mapping(mappings: Iterable[EventMapping], event: CloudEvent) -> EventMapping:
    """The enabled mapping for the event's type with the longest matching source prefix (a
    mapping without one matches any source); among equals the first defined."""
    matching = [m for m in mappings if m.matches(event)]
    if not matching:
        raise NoMapping(
            f"no enabled event mapping for type {event.type!r} from source {event.source!r}; "
            "an admin defines one at /api/v1/event-mappings",
            type=event.type,
            source=event.source,
        )
    return min(matching, key=lambda m: (-len(m.source_prefix or ""), m.id))


# -- what a mapping renders --------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One event through its mapping: the ticket it would open (open_ticket mappings), the
    message it would append, who speaks, and which ticket it correlates with."""

    mapping: EventMapping
    body: str
    author: dict[str, Any]
    correlation: str | None
    ticket: OpenTicket | None


def render(mapping: EventMapping, event: CloudEvent) -> Rendered:
    """Raises EventRefused when what the templates produce cannot make a ticket or message."""
    body = _storable(mapping, "body", mapping.body.render(event))
    if not body.strip():
        raise _refused(mapping, "body", "renders empty")
    requester = _requester(mapping, event)
    ticket = None
    if mapping.action == "open_ticket":
        assert mapping.subject is not None and requester is not None  # checked on definition
        subject = _storable(mapping, "subject", mapping.subject.render(event).strip())
        if not subject:
            raise _refused(mapping, "subject", "renders empty")
        ticket = OpenTicket(
            subject=subject,
            body=body,
            requester=requester,
            channel=CHANNEL,
            help_topic_id=mapping.help_topic_id,
            priority=_priority(mapping, event),
        )
    author: dict[str, Any] = (
        {"kind": "user", "id": None, "name": requester.name, "email": requester.email}
        if requester is not None
        else {
            "kind": "system",
            "id": None,
            "name": _storable(mapping, "source", event.source)[:_NAME_LENGTH],
            "email": None,
        }
    )
    return Rendered(mapping, body, author, _correlation(mapping, event), ticket)


def _requester(mapping: EventMapping, event: CloudEvent) -> Requester | None:
    if mapping.requester_email is None:
        return None
    email = _storable(mapping, "requester_email", mapping.requester_email.render(event).strip())
    if len(email) > EMAIL_LENGTH or not _is_email(email):
        raise _refused(mapping, "requester_email", f"renders as {email!r}, not an email address")
    name = mapping.requester_name.render(event).strip() if mapping.requester_name else ""
    name = _storable(mapping, "requester_name", name)
    return Requester(email, name[:_NAME_LENGTH] or None)


def _storable(mapping: EventMapping, field: str, value: str) -> str:
    """What a template rendered, refused when no projection could store it (a NUL)."""
    problem = unstorable(value)
    if problem is not None:
        raise _refused(mapping, field, problem[1])
    return value


def _is_email(value: str) -> bool:
    try:
        _EMAIL(value)
    except ValidationError:
        return False
    return True


def _priority(mapping: EventMapping, event: CloudEvent) -> str | None:
    if mapping.priority is None:
        return None
    priority = mapping.priority.render(event).strip().lower()
    if priority and priority not in PRIORITIES:
        raise _refused(
            mapping, "priority", f"renders as {priority!r}, not one of {', '.join(PRIORITIES)}"
        )
    return priority or None


def _correlation(mapping: EventMapping, event: CloudEvent) -> str | None:
    if mapping.correlation is None:
        return None
    try:
        value = mapping.correlation.render(event, strict=True)
    except _Missing as missing:
        raise _refused(mapping, "correlation", f"needs {missing}, which the event lacks") from None
    if not value.strip():
        raise _refused(mapping, "correlation", "renders empty")
    return value


def _refused(mapping: EventMapping, field: str, problem: str) -> EventRefused:
    return EventRefused(
        f"event mapping {mapping.id} ({mapping.name}): {field} {problem}",
        mapping_id=mapping.id,
        field=field,
    )


# -- appending to the correlated ticket --------------------------------------------------------


def placement(
    state: TicketState, *, department_status: str | None, help_topic_status: str | None
) -> Placement:
    """Where a correlated event's message goes: as a requester's emailed reply does (a closed
    ticket reopens; one in an archived department or help topic stays closed and a new ticket
    opens instead); a rejected or deleted ticket takes no more messages either."""
    if not state.exists or state.rejected or state.state == "deleted":
        return Placement.NEW_TICKET
    return place_reply(
        state,
        department_status=department_status,
        help_topic_status=help_topic_status,
        automatic=False,
    )


def append_message(
    state: TicketState, rendered: Rendered, *, entry_id: uuid.UUID, reopen: bool
) -> list[NewEvent]:
    """The event's message on the ticket; with `reopen`, the closed ticket then opens again."""
    appended = NewEvent(
        "MessageAppended",
        {
            "entry_id": str(entry_id),
            "kind": "message",
            "author": rendered.author,
            "body": rendered.body,
            "body_html": None,
            "attachments": [],
            "reply_to": None,
            "channel": CHANNEL,
        },
    )
    if not reopen:
        return [appended]
    return [appended, reopened(state, "reopened by an event", rendered.author)]
