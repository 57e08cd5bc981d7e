"""osTicket XML -> OpenTicket: the XML an osTicket client sends opens the ticket the JSON would."""

from __future__ import annotations

import base64

import pytest

from libs.platform.errors import ValidationFailed
from services.intake.domain.payloads import open_ticket_from_osticket
from services.intake.domain.tickets import Attachment, OpenTicket, Requester
from services.intake.domain.xml_payload import osticket_xml_payload


def ticket(xml: str) -> OpenTicket:
    return open_ticket_from_osticket(osticket_xml_payload(xml.encode()), "192.0.2.1")


def refusal(xml: str | bytes) -> ValidationFailed:
    raw = xml.encode() if isinstance(xml, str) else xml
    with pytest.raises(ValidationFailed) as info:
        open_ticket_from_osticket(osticket_xml_payload(raw), "192.0.2.1")
    return info.value


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# osTicket's documented example (setup/doc/api/tickets.md), with a custom field
OSTICKET_EXAMPLE = f"""<?xml version="1.0" encoding="UTF-8"?>
<ticket alert="true" autorespond="true" source="API">
    <name>Angry User</name>
    <email>api@osticket.com</email>
    <subject>Testing API</subject>
    <phone>318-555-8634x123</phone>
    <message type="text/plain"><![CDATA[Message content here]]></message>
    <attachments>
        <file name="file.txt" type="text/plain"><![CDATA[
            File content is here and is automatically trimmed
        ]]></file>
        <file name="image.gif" type="image/gif" encoding="base64">
            {b64(b"GIF89a-pixels")[:8]}
            {b64(b"GIF89a-pixels")[8:]}
        </file>
    </attachments>
    <ip>123.211.233.122</ip>
    <order_ref>A-77</order_ref>
</ticket>"""


def test_osticket_example_opens_the_same_ticket_as_json() -> None:
    command = ticket(OSTICKET_EXAMPLE)

    assert command.subject == "Testing API"
    assert command.body == "Message content here" and command.body_html is None
    assert command.requester == Requester("api@osticket.com", "Angry User")
    assert command.channel == "api"
    assert command.phone == "318-555-8634X123"
    assert command.source_ip == "123.211.233.122"
    assert command.alert is True and command.autorespond is True
    assert command.attachments == (
        Attachment("file.txt", "text/plain", b"File content is here and is automatically trimmed"),
        Attachment("image.gif", "image/gif", b"GIF89a-pixels"),
    )
    assert command.fields == {"order_ref": "A-77"}  # custom fields by name


def test_fields_as_attributes_or_elements_and_elements_win() -> None:
    as_attributes = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="From attributes" '
        'message="Body" topicId="1" priorityId="3"/>'
    )
    assert as_attributes.subject == "From attributes" and as_attributes.body == "Body"
    assert as_attributes.help_topic_id == 1 and as_attributes.priority == "high"

    both = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="attribute">'
        "<subject>element</subject><message>Body</message></ticket>"
    )
    assert both.subject == "element"


def test_html_message_is_sanitised_and_has_a_text_version() -> None:
    escaped = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="s">'
        '<message type="text/html"><![CDATA[<p>Hello <b>there</b></p><script>x()</script>]]>'
        "</message></ticket>"
    )
    assert escaped.body_html == "<p>Hello <b>there</b></p>"
    assert escaped.body == "Hello there"

    as_elements = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="s">'
        '<message type="text/html"><p>Hello <b>there</b></p></message></ticket>'
    )
    assert as_elements.body_html == "<p>Hello <b>there</b></p>"


def test_base64_message_is_decoded_as_text_or_html() -> None:
    text = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="s">'
        f'<message encoding="base64">{b64("Grüße".encode())}</message></ticket>'
    )
    assert text.body == "Grüße" and text.body_html is None

    html = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="s">'
        f'<message type="text/html" encoding="base64">\n  {b64(b"<p>Hi</p>")}\n</message>'
        "</ticket>"
    )
    assert html.body_html == "<p>Hi</p>" and html.body == "Hi"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("FALSE", False), ("true", True), ("0", True), ("no", True), ("", True)],
)
def test_alert_and_autorespond_are_false_only_when_they_say_false(
    value: str, expected: bool
) -> None:
    command = ticket(
        f'<ticket alert="{value}" name="Ada" email="ada@example.com" subject="s">'
        f"<autorespond>{value}</autorespond><message>m</message></ticket>"
    )
    assert command.alert is expected and command.autorespond is expected


def test_a_priority_number_is_an_id_as_in_json() -> None:
    command = ticket(
        '<ticket name="Ada" email="ada@example.com" subject="s" priority="4">'
        "<message>m</message></ticket>"
    )
    assert command.priority == "emergency"


@pytest.mark.parametrize(
    ("xml", "field", "words"),
    [
        ('<ticket email="ada@example.com" subject="s"><message>m</message></ticket>', "name", ""),
        ('<ticket name="A" email="nope" subject="s"><message>m</message></ticket>', "email", ""),
        (
            '<ticket name="A" email="a@example.com" subject="s"><message> </message></ticket>',
            "message",
            "",
        ),
        (
            '<ticket name="A" email="a@example.com" subject="s" source="pigeon"><message>m</message></ticket>',
            "source",
            "origin",
        ),
        (
            '<ticket name="A" email="a@example.com" subject="s"><message encoding="base64">@@@</message></ticket>',
            None,
            "base64",
        ),
        (
            '<ticket name="A" email="a@example.com" subject="s"><message>m</message>'
            '<attachments><file type="text/plain">x</file></attachments></ticket>',
            "attachments",
            "name",
        ),
        (
            '<ticket name="A" email="a@example.com" subject="s"><message>m</message>'
            '<attachments><file name="a.bin" encoding="base64">@@@</file></attachments></ticket>',
            None,
            "base64",
        ),
    ],
)
def test_the_json_validator_refuses_bad_fields(xml: str, field: str | None, words: str) -> None:
    error = refusal(xml)
    if field is not None:
        assert error.details["field"] == field
    assert words in error.message


@pytest.mark.parametrize(
    ("xml", "words"),
    [
        ("<ticket><name>Ada</ticket>", "Malformed XML"),
        ("not xml at all", "Malformed XML"),
        ('{"name": "Ada"}', "Malformed XML"),
        ("<email><name>Ada</name></email>", "root must be <ticket>"),
    ],
)
def test_malformed_xml_or_another_root_is_refused(xml: str, words: str) -> None:
    assert words in refusal(xml).message


def test_billion_laughs_is_refused_without_expanding() -> None:
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE ticket [{lol}]><ticket><name>&lol9;</name></ticket>'
    assert "XML refused" in refusal(bomb).message


def test_external_entities_are_refused() -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE ticket [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<ticket><name>&x;</name></ticket>"
    )
    assert "XML refused" in refusal(xxe).message
