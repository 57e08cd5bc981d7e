"""API payloads -> commands. osTicket's field names; validation failures name the field."""

from __future__ import annotations

import base64
import binascii
import html
import re
import urllib.parse
from typing import Any

import nh3
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from libs.events.storable import unstorable
from libs.events.types.fields import (
    CONTENT_TYPE_LENGTH,
    NAME_LENGTH,
    PRIORITIES,
    SUBJECT_LENGTH,
    Email,
    Id,
)
from libs.platform.errors import ValidationFailed
from services.intake.domain.text import clean, safe_filename
from services.intake.domain.tickets import Attachment, OpenTicket, Requester

# osTicket's priority ids (priorityId) and names.
PRIORITY_IDS = {1: "low", 2: "normal", 3: "high", 4: "emergency"}
SOURCES = {"api": "api", "web": "web", "email": "email", "staff": "agent", "agent": "agent"}
MAX_ATTACHMENT_BYTES = 8 * 1024 * 1024


class OsTicketJson(Schema):
    class Meta:
        unknown = EXCLUDE  # osTicket logs unknown keys and still creates the ticket

    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_LENGTH))
    email = Email(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=SUBJECT_LENGTH))
    message = fields.String(required=True, validate=validate.Length(min=1))
    phone = fields.String(load_default=None, allow_none=True)
    topicId = Id(load_default=None, allow_none=True)
    priority = fields.Raw(load_default=None, allow_none=True)
    priorityId = Id(load_default=None, allow_none=True)
    source = fields.String(load_default="api")
    ip = fields.String(load_default=None, allow_none=True)
    alert = fields.Boolean(load_default=True)
    autorespond = fields.Boolean(load_default=True)
    attachments = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()), load_default=list
    )


_OSTICKET_JSON = OsTicketJson()  # stateless once built; building one per request is costly
KNOWN = set(_OSTICKET_JSON.fields) | {"attachments"}


def open_ticket_from_osticket(payload: Any, remote_ip: str | None) -> OpenTicket:
    if not isinstance(payload, dict) or not payload:
        raise ValidationFailed("the body must be a non-empty JSON object")
    problem = unstorable(payload)
    if problem is not None:  # every channel's body, whatever the field: no projection could hold it
        where, what = problem
        raise ValidationFailed(f"Unable to create new ticket: {where} {what}", field=where)
    try:
        data = _OSTICKET_JSON.load(payload)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
        field_name = next(iter(messages))
        raise ValidationFailed(
            f"Unable to create new ticket: {field_name}: {_first(messages[field_name])}",
            field=field_name,
            errors=messages,
        ) from None
    source = SOURCES.get(str(data["source"]).lower())
    if source is None:
        raise ValidationFailed(
            "Unable to create new ticket: origin: Invalid ticket origin given", field="source"
        )
    body, body_html = message_body(data["message"])
    custom = {
        k: v
        for k, v in payload.items()
        if k not in KNOWN and isinstance(v, str | int | float | bool)
    }
    return OpenTicket(
        subject=data["subject"],
        body=body,
        body_html=body_html,
        requester=Requester(data["email"], data["name"]),
        channel=source,
        phone=(data["phone"] or None) and str(data["phone"]).upper(),
        help_topic_id=data["topicId"],
        priority=_priority(data["priorityId"], data["priority"]),
        autorespond=data["autorespond"],
        alert=data["alert"],
        source_ip=data["ip"] or remote_ip,
        fields=custom,
        attachments=tuple(_attachments(data["attachments"])),
    )


def _first(messages: Any) -> str:
    while isinstance(messages, list | dict):
        messages = next(
            iter(messages.values() if isinstance(messages, dict) else messages), "invalid"
        )
    return str(messages)


def _priority(priority_id: int | None, priority: Any) -> str | None:
    if priority_id is not None:
        if priority_id not in PRIORITY_IDS:
            raise ValidationFailed("priorityId must be 1-4", field="priorityId")
        return PRIORITY_IDS[priority_id]
    if priority is None:
        return None
    if isinstance(priority, bool):  # JSON true is not priority 1
        raise ValidationFailed(f"unknown priority {priority!r}", field="priority")
    if isinstance(priority, int) and priority in PRIORITY_IDS:
        return PRIORITY_IDS[priority]
    if isinstance(priority, str) and priority.lower() in PRIORITIES:
        return priority.lower()
    raise ValidationFailed(f"unknown priority {priority!r}", field="priority")


DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*),(?P<payload>.*)$", re.S
)


def parse_data_url(value: str) -> tuple[str, bytes] | None:
    """RFC 2397 -> (mime type, bytes); None when `value` is not a data URL."""
    match = DATA_URL.match(value)
    if not match:
        return None
    params = [p for p in (match["params"] or "").split(";") if p]
    payload = match["payload"]
    if "base64" in params:
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("attachment or message is not valid base64") from None
    else:
        charset = next((p.split("=", 1)[1] for p in params if p.startswith("charset=")), "utf-8")
        raw = urllib.parse.unquote_to_bytes(payload)
        try:
            raw = raw.decode(charset, errors="replace").encode()
        except LookupError:
            raw = raw.decode("utf-8", errors="replace").encode()
    return (match["mime"] or "text/plain").lower(), raw


def message_body(message: str) -> tuple[str, str | None]:
    """(plain text, sanitised HTML or None) from an API `message`."""
    parsed = parse_data_url(message)
    if parsed is None:
        return message, None
    mime, raw = parsed
    text = clean(raw.decode("utf-8", errors="replace"))  # as the mail path stores a body
    if mime == "text/html":
        markup = sanitize_html(text)
        return html_to_text(markup), markup
    return text, None


def sanitize_html(markup: str) -> str:
    # nh3 (ammonia) drops scripts, handlers and javascript: URLs; images may not load remote URLs
    # server-side because nothing here ever fetches them.
    return nh3.clean(markup, url_schemes={"http", "https", "mailto", "cid"})


def html_to_text(markup: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", markup)
    # `[^<>]`: a `<` never closed must not make this quadratic (RELIABILITY S3).
    text = re.sub(r"<[^<>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def _attachments(items: list[dict[str, str]]) -> list[Attachment]:
    result: list[Attachment] = []
    for item in items:
        for given, url in item.items():
            # Stored as the mail path stores a name; one that cleans to nothing is numbered.
            filename = safe_filename(given) or f"attachment-{len(result) + 1}"
            parsed = parse_data_url(url)
            if parsed is None:
                raise ValidationFailed(
                    f"attachment {filename!r} must be a data URL", field="attachments"
                )
            mime, raw = parsed
            if len(mime) > CONTENT_TYPE_LENGTH:
                raise ValidationFailed(
                    f"attachment {filename!r} has a content type over {CONTENT_TYPE_LENGTH} "
                    "characters",
                    field="attachments",
                )
            if len(raw) > MAX_ATTACHMENT_BYTES:
                raise ValidationFailed(f"attachment {filename!r} is too large", field="attachments")
            result.append(Attachment(filename=filename, content_type=mime, data=raw))
    return result
