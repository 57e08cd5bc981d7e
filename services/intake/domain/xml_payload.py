"""osTicket's XML ticket (`POST /api/tickets.xml`) -> the dict `/api/tickets.json` takes.

Only the shape changes here; `open_ticket_from_osticket` validates both formats, so an XML
ticket is refused for exactly the reasons a JSON one is. As in osTicket, the root `<ticket>`
carries fields as attributes or child elements (an element wins), `<message>` may say
`type="text/html"` and `encoding="base64"`, `<attachments>` holds `<file name= type= encoding=>`
elements, `alert`/`autorespond` are false only when they say "false", and any other field is a
custom field by name. Unlike osTicket (a 200 with a PHP error), bad XML is a 400.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from libs.platform.errors import ValidationFailed

FLAGS = ("alert", "autorespond")
MIME = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def osticket_xml_payload(raw: bytes) -> dict[str, Any]:
    """The ticket an osTicket XML body describes, in the JSON API's field names and shapes."""
    root = _parse(raw)
    payload: dict[str, Any] = dict(root.attrib)
    for child in root:
        if child.tag == "message":
            payload["message"] = _message(child)
        elif child.tag == "attachments":
            payload["attachments"] = [_attachment(f) for f in child if f.tag == "file"]
        elif len(child) == 0:  # a field; nested structures other than these are not fields
            payload[child.tag] = (child.text or "").strip()
    for flag in FLAGS:
        if flag in payload:
            payload[flag] = payload[flag].strip().lower() != "false"
    if str(payload.get("priority", "")).isdigit():
        payload["priority"] = int(payload["priority"])  # XML has no numbers; JSON's `2` is an id
    return payload


def _parse(raw: bytes) -> Element:
    # defusedxml refuses entity declarations (billion laughs) and external entities/DTDs.
    try:
        root = fromstring(raw, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValidationFailed(f"XML refused: {type(exc).__name__} ({exc})") from None
    except ParseError as exc:
        raise ValidationFailed(f"Malformed XML: {exc}") from None
    if root.tag != "ticket":
        raise ValidationFailed(f"the XML root must be <ticket>, not <{root.tag}>")
    return root


def _message(element: Element) -> str:
    """A data URL when the message is HTML or base64 (the JSON API's own way of saying so)."""
    html = element.get("type", "text/plain").strip().lower() == "text/html"
    text = element.text or ""
    if html:  # markup sent as elements rather than escaped or in CDATA
        text += "".join(tostring(child, encoding="unicode") for child in element)
    if element.get("encoding", "").strip().lower() == "base64":
        payload = "".join(text.split())
        return f"data:{'text/html' if html else 'text/plain'};base64,{payload}" if payload else ""
    if not text.strip():
        return ""  # refused as a missing message
    if html:
        return "data:text/html;base64," + base64.b64encode(text.encode()).decode()
    return text


def _attachment(element: Element) -> dict[str, str]:
    name = (element.get("name") or "").strip()
    if not name:
        raise ValidationFailed("every attachment <file> needs a name", field="attachments")
    mime = (element.get("type") or "application/octet-stream").split(";")[0].strip().lower()
    if not MIME.match(mime):
        raise ValidationFailed(
            f"attachment {name!r} has an invalid type {mime!r}", field="attachments"
        )
    text = element.text or ""
    if element.get("encoding", "").strip().lower() == "base64":
        payload = "".join(text.split())
    else:  # plain content is trimmed, as osTicket documents
        payload = base64.b64encode(text.strip().encode()).decode()
    return {name: f"data:{mime};base64,{payload}"}
