"""osTicket JSON -> OpenTicket: what an API client sees when it creates a ticket."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from libs.platform.errors import ValidationFailed
from services.intake.domain import payloads
from services.intake.domain.payloads import open_ticket_from_osticket
from services.intake.domain.tickets import Attachment, Requester


def payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "subject": "Printer on fire",
        "message": "It is on fire.",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def refusal(body: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        open_ticket_from_osticket(body, "192.0.2.1")
    return info.value


def b64_url(mime: str, raw: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def test_minimal_payload_becomes_an_api_ticket() -> None:
    command = open_ticket_from_osticket(payload(), "192.0.2.1")

    assert command.subject == "Printer on fire"
    assert command.body == "It is on fire."
    assert command.body_html is None
    assert command.requester == Requester("ada@example.com", "Ada Lovelace")
    assert command.channel == "api"
    assert command.priority is None
    assert command.help_topic_id is None
    assert command.source_ip == "192.0.2.1"
    assert command.autorespond is True and command.alert is True
    assert command.attachments == ()
    assert command.fields == {}


@pytest.mark.parametrize("body", [None, [], "text", 42, {}])
def test_body_that_is_not_a_non_empty_object_is_refused(body: Any) -> None:
    assert "JSON object" in refusal(body).message


@pytest.mark.parametrize("field", ["name", "email", "subject", "message"])
def test_missing_required_field_is_named(field: str) -> None:
    error = refusal(payload(**{field: ...}))

    assert error.details["field"] == field
    assert field in error.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("email", "not-an-email"),
        ("subject", ""),
        ("subject", "x" * 256),
        ("message", ""),
        ("topicId", "help"),
        ("priorityId", "urgent"),
    ],
)
def test_invalid_field_value_is_named(field: str, value: Any) -> None:
    assert refusal(payload(**{field: value})).details["field"] == field


@pytest.mark.parametrize(
    ("priority_id", "expected"),
    [(1, "low"), (2, "normal"), (3, "high"), (4, "emergency"), ("3", "high")],
)
def test_priority_id_maps_to_osticket_priority(priority_id: Any, expected: str) -> None:
    assert open_ticket_from_osticket(payload(priorityId=priority_id), None).priority == expected


@pytest.mark.parametrize("priority_id", [0, 5, -1, 99])
def test_priority_id_out_of_range_is_refused(priority_id: int) -> None:
    assert refusal(payload(priorityId=priority_id)).details["field"] == "priorityId"


def test_priority_id_wins_over_priority_name() -> None:
    command = open_ticket_from_osticket(payload(priorityId=1, priority="emergency"), None)
    assert command.priority == "low"


@pytest.mark.parametrize(
    ("priority", "expected"), [("HIGH", "high"), ("low", "low"), (4, "emergency")]
)
def test_priority_by_name_or_id(priority: Any, expected: str) -> None:
    assert open_ticket_from_osticket(payload(priority=priority), None).priority == expected


@pytest.mark.parametrize("priority", ["urgent", 7, 2.5])
def test_unknown_priority_is_refused(priority: Any) -> None:
    assert refusal(payload(priority=priority)).details["field"] == "priority"


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        ("API", "api"),
        ("api", "api"),
        ("Web", "web"),
        ("email", "email"),
        ("staff", "agent"),
        ("agent", "agent"),
    ],
)
def test_source_maps_to_channel(source: str, channel: str) -> None:
    assert open_ticket_from_osticket(payload(source=source), None).channel == channel


@pytest.mark.parametrize("source", ["fax", "", "carrier pigeon"])
def test_invalid_origin_is_refused(source: str) -> None:
    error = refusal(payload(source=source))

    assert error.details["field"] == "source"
    assert "Invalid ticket origin" in error.message


def test_html_message_is_sanitised_and_rendered_as_text() -> None:
    html = (
        '<p onclick="steal()">Hello <b>there</b></p>'
        "<script>alert('x')</script>"
        '<a href="javascript:alert(1)">click</a>'
        '<img src="x" onerror="steal()">'
        "<br>second&nbsp;line"
    )
    command = open_ticket_from_osticket(
        payload(message=f"data:text/html;charset=utf-8,{html}"), None
    )

    assert command.body_html is not None
    lowered = command.body_html.lower()
    for dangerous in ("<script", "alert(", "onclick", "onerror", "javascript:"):
        assert dangerous not in lowered
    assert "<b>there</b>" in command.body_html
    assert command.body == "Hello there\nclick\nsecond\xa0line"


def test_html_message_percent_encoded() -> None:
    message = "data:text/html;charset=utf-8,%3Cp%3EHi%20%26%20bye%3C%2Fp%3E"
    command = open_ticket_from_osticket(payload(message=message), None)

    assert command.body_html == "<p>Hi &amp; bye</p>"
    assert command.body == "Hi & bye"


def test_base64_html_message_is_sanitised() -> None:
    message = b64_url("text/html", b"<p>Hi</p><script>evil()</script>")
    command = open_ticket_from_osticket(payload(message=message), None)

    assert command.body_html == "<p>Hi</p>"
    assert command.body == "Hi"


def test_base64_plain_text_message_is_decoded() -> None:
    message = b64_url("text/plain", "Grüße <b>".encode())
    command = open_ticket_from_osticket(payload(message=message), None)

    assert command.body == "Grüße <b>"
    assert command.body_html is None


def test_message_with_bad_base64_is_refused() -> None:
    refusal(payload(message="data:text/plain;base64,not base64!!"))


def test_plain_message_is_kept_verbatim() -> None:
    command = open_ticket_from_osticket(payload(message="<b>not parsed</b>"), None)

    assert command.body == "<b>not parsed</b>"
    assert command.body_html is None


def test_attachments_are_decoded_from_data_urls() -> None:
    attachments = [
        {"notes.txt": b64_url("text/plain", b"hello")},
        {"photo.png": b64_url("image/png", b"\x89PNG\r\n")},
        {"raw.txt": "data:,caf%C3%A9"},
    ]
    command = open_ticket_from_osticket(payload(attachments=attachments), None)

    assert command.attachments == (
        Attachment("notes.txt", "text/plain", b"hello"),
        Attachment("photo.png", "image/png", b"\x89PNG\r\n"),
        Attachment("raw.txt", "text/plain", "café".encode()),
    )


@pytest.mark.parametrize(
    "url",
    ["data:text/plain;base64,@@@not-base64@@@", "data:text/plain;base64,abc"],
)
def test_attachment_with_bad_base64_is_refused(url: str) -> None:
    refusal(payload(attachments=[{"a.txt": url}]))


def test_attachment_that_is_not_a_data_url_is_refused() -> None:
    error = refusal(payload(attachments=[{"a.txt": "https://example.com/a.txt"}]))
    assert error.details["field"] == "attachments"


def test_attachment_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payloads, "MAX_ATTACHMENT_BYTES", 4)
    ok = open_ticket_from_osticket(
        payload(attachments=[{"a.bin": b64_url("application/octet-stream", b"1234")}]), None
    )
    assert ok.attachments[0].data == b"1234"

    error = refusal(payload(attachments=[{"a.bin": b64_url("application/x", b"12345")}]))
    assert error.details["field"] == "attachments"
    assert "too large" in error.message


def test_default_attachment_limit_is_eight_mebibytes() -> None:
    assert payloads.MAX_ATTACHMENT_BYTES == 8 * 1024 * 1024


def test_unknown_scalar_keys_become_custom_fields() -> None:
    command = open_ticket_from_osticket(
        payload(customer_id="C-17", seats=12, ratio=0.5, vip=True), None
    )
    assert command.fields == {"customer_id": "C-17", "seats": 12, "ratio": 0.5, "vip": True}


@pytest.mark.parametrize("value", [None, {"nested": 1}, [1, 2], "", 0])
def test_unknown_keys_never_reject_the_ticket(value: Any) -> None:
    command = open_ticket_from_osticket(payload(whatever=value), None)
    assert command.subject == "Printer on fire"


def test_known_keys_are_not_custom_fields() -> None:
    command = open_ticket_from_osticket(
        payload(phone="555", topicId=3, priorityId=2, source="web", ip="198.51.100.7"), None
    )
    assert command.fields == {}


def test_phone_is_upper_cased() -> None:
    assert open_ticket_from_osticket(payload(phone="555-0100 ext 12"), None).phone == (
        "555-0100 EXT 12"
    )


@pytest.mark.parametrize("phone", [None, ""])
def test_blank_phone_is_none(phone: str | None) -> None:
    assert open_ticket_from_osticket(payload(phone=phone), None).phone is None


def test_ip_in_payload_wins_over_remote_address() -> None:
    command = open_ticket_from_osticket(payload(ip="198.51.100.7"), "192.0.2.1")
    assert command.source_ip == "198.51.100.7"


def test_flags_and_topic_are_carried() -> None:
    command = open_ticket_from_osticket(payload(alert=False, autorespond=False, topicId="7"), None)
    assert (command.alert, command.autorespond, command.help_topic_id) == (False, False, 7)
