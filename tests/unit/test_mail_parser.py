"""Raw email -> ParsedEmail: what the help desk reads off a message, built case by case."""

from __future__ import annotations

import base64
import textwrap

import pytest

from services.intake.domain.mail.parsed import Mailbox, ParsedEmail, RefusedAttachment, Unparseable
from services.intake.domain.mail.parser import canonical_header_name, parse_email

LIMIT = 64 * 1024


def mail(headers: str, body: bytes | str = b"Hello.\r\n") -> bytes:
    """A message from header lines (one per line) and a body; From is added unless given."""
    lines = [line.rstrip() for line in textwrap.dedent(headers).splitlines() if line.strip()]
    if not any(line.lower().startswith("from:") for line in lines):
        lines.insert(0, "From: Ada Lovelace <ada@example.com>")
    head = "\r\n".join(lines).encode("utf-8")
    payload = body.encode("utf-8") if isinstance(body, str) else body
    return head + b"\r\n\r\n" + payload


def parse(raw: bytes, limit: int = LIMIT) -> ParsedEmail:
    return parse_email(raw, max_attachment_bytes=limit)


def multipart(subtype: str, boundary: str, *parts: bytes) -> bytes:
    out = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return out + b"--" + boundary.encode() + b"--\r\n"


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ("=?UTF-8?B?w4lsw6huZSdzIHByaW50ZXI=?=", "Élène's printer"),
        ("=?iso-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
        ("=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "テスト"),
        ("=?windows-1251?B?z/Do4uXy?=", "Привет"),
        ("=?KOI8-R?Q?=F0=D2=C9=D7=C5=D4?=", "Привет"),
        ("=?ks_c_5601-1987?B?x9Gx2w==?=", "한글"),
        ("=?gb2312?B?1tDOxA==?=", "中文"),
        ("=?big5?B?pKSk5Q==?=", "中文"),
        # a character split across two words; the space between encoded words is not text
        ("=?UTF-8?B?4oI=?= =?UTF-8?B?rCAxMA==?=", "€ 10"),
        ("Re: =?UTF-8?Q?na=C3=AFve?= idea", "Re: naïve idea"),
        ("=?utf-8*en?Q?language_tag?=", "language tag"),
    ],
)
def test_encoded_word_subjects_decode_in_every_charset(header: str, subject: str) -> None:
    assert parse(mail(f"Subject: {header}")).subject == subject


def test_utf8_headers_rfc6532_decode() -> None:
    raw = 'From: "Jöhn Doe" <jdöe@mächine.example>\r\nSubject: Säying Hello\r\n\r\nbody'.encode()
    email = parse(raw)
    assert email.sender == Mailbox("jdöe@mächine.example", "Jöhn Doe")
    assert email.subject == "Säying Hello"


def test_subject_whitespace_is_folded_and_an_empty_subject_named() -> None:
    assert parse(mail("Subject:  Printer\r\n\t  on   fire ")).subject == "Printer on fire"
    assert parse(mail("Subject:   ")).subject == "[No Subject]"
    assert parse(mail("To: x@example.com")).subject == "[No Subject]"


def test_sender_and_recipients_are_mailboxes_with_decoded_names() -> None:
    email = parse(
        mail(
            """
            From: "Lovelace, Ada (Analytical)" <Ada@Example.COM>, other@example.com
            Reply-To: =?utf-8?Q?Bj=C3=B6rn?= <bjorn@example.com>
            To: desk@example.com, "Bob" <bob@example.org>
            Cc: carol@example.net (Carol C.), undisclosed-recipients:;
            Delivered-To: desk@example.com
            Delivered-To: desk@example.com
            """
        )
    )
    assert email.sender == Mailbox("ada@example.com", "Lovelace, Ada (Analytical)")
    assert email.reply_to == Mailbox("bjorn@example.com", "Björn")
    assert email.to == (Mailbox("desk@example.com"), Mailbox("bob@example.org", "Bob"))
    assert email.cc == (Mailbox("carol@example.net", "Carol C."),)
    assert email.delivered_to == (Mailbox("desk@example.com"),)


@pytest.mark.parametrize(
    ("header", "sender"),
    [
        ("From: ada@example.com", Mailbox("ada@example.com")),
        ("From: <ada@example.com>", Mailbox("ada@example.com")),
        ("From: 'Ada' <ada@example.com>", Mailbox("ada@example.com", "Ada")),
        ("From: ada@example.com (Ada Lovelace)", Mailbox("ada@example.com", "Ada Lovelace")),
        ("From: ada@example.com <ada@example.com>", Mailbox("ada@example.com", "ada@example.com")),
        ("From: Ada Lovelace ada@example.com", Mailbox("ada@example.com")),
        ("From: nobody, Ada <ada@example.com>", Mailbox("ada@example.com", "Ada")),
    ],
)
def test_sender_is_the_first_valid_from_address(header: str, sender: Mailbox) -> None:
    assert parse(mail(header)).sender == sender


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "no email headers"),
        (b"just some words\r\nand more\r\n", "no email headers"),
        (b"\x00\xff\xfe garbage", "no email headers"),
        (b"Subject: hi\r\n\r\nno sender", "no valid sender"),
        (b"From: Ada Lovelace\r\nSubject: hi\r\n\r\nbody", "no valid sender"),
        (b"From: <>\r\n\r\nbody", "no valid sender"),
    ],
)
def test_no_headers_or_no_sender_is_unparseable(raw: bytes, reason: str) -> None:
    with pytest.raises(Unparseable, match=reason):
        parse(raw)


def test_non_bytes_input_is_unparseable() -> None:
    with pytest.raises(Unparseable):
        parse_email("From: a@b.example\r\n\r\nx", max_attachment_bytes=LIMIT)  # type: ignore[arg-type]


def test_message_ids_are_normalised_tokens() -> None:
    email = parse(
        mail(
            """
            Message-ID: 1234.5678@mail.example.com
            In-Reply-To: <parent@example.com> (sent by Ada)
            References: <root@example.com>
             <parent@example.com> <broken
            """
        )
    )
    assert email.message_id == "<1234.5678@mail.example.com>"
    assert email.in_reply_to == ("<parent@example.com>",)
    assert email.references == ("<root@example.com>", "<parent@example.com>")


def test_an_address_hidden_in_an_encoded_display_name_is_never_the_sender() -> None:
    name = base64.b64encode(b"attacker@evil.example\r\n").decode()
    email = parse(mail(f"From: =?utf-8?b?{name}?= <ada@example.com>"))
    assert email.sender is not None and email.sender.email == "ada@example.com"


def test_a_mime_encoded_in_reply_to_still_names_its_parent() -> None:
    # Python's email package writes a long In-Reply-To as encoded words; the reply must thread.
    email = parse(
        mail(
            """
            In-Reply-To: =?utf-8?q?=3Cds=2E0b7c2a9e00004000800000000000000a=2Eabcdef0123?=
             =?utf-8?q?=2E0123456789abcdef=40deskstream=2Elocal=3E?=
            """
        )
    )
    assert email.in_reply_to == (
        "<ds.0b7c2a9e00004000800000000000000a.abcdef0123.0123456789abcdef@deskstream.local>",
    )


def test_a_missing_message_id_is_synthesised_deterministically() -> None:
    raw = mail("To: desk@example.com\r\nSubject: No id\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000")
    first = parse(raw).message_id
    assert first.startswith("<") and first.endswith("@deskstream.local>")
    assert len(first) == len("<@deskstream.local>") + 32
    # Redelivered: the MTA adds trace headers, the id stays the same and so the copy dedupes.
    redelivered = b"Received: from mx by desk; Mon, 1 Jan 2024 10:00:05 +0000\r\n" + raw
    assert parse(redelivered).message_id == first
    # A different message (another body) gets another id.
    assert parse(raw.replace(b"Hello.", b"Hello again.")).message_id != first


def test_headers_keep_the_first_value_decoded_under_canonical_names() -> None:
    email = parse(
        mail(
            """
            auto-submitted: =?UTF-8?Q?auto-generated?=
            X-MSMail-Priority: High
            X-Custom: first
            X-CUSTOM: second
            """
        )
    )
    assert email.headers["Auto-Submitted"] == "auto-generated"
    assert email.headers["X-Custom"] == "first"
    assert email.headers["X-Msmail-Priority"] == "High"
    assert canonical_header_name("x-autoreply-from") == "X-Autoreply-From"


@pytest.mark.parametrize(
    ("header", "priority"),
    [
        ("X-Priority: 1 (Highest)", "high"),
        ("X-Priority: 2", "high"),
        ("X-Priority: 3 (Normal)", "normal"),
        ("X-Priority: 4", "low"),
        ("X-Priority: 5 (Lowest)", "low"),
        ("Priority: urgent", "high"),
        ("Priority: non-urgent", "low"),
        ("Importance: High", "high"),
        ("Importance: normal", "normal"),
        ("Importance: low", "low"),
        ("X-Priority: whatever", None),
        ("X-Mailer: none", None),
    ],
)
def test_priority_comes_from_x_priority_priority_or_importance(
    header: str, priority: str | None
) -> None:
    assert parse(mail(header)).priority == priority


# --- auto-replies and bounces -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated (warning-timeout)",
        "Auto-Submitted: =?UTF-8?Q?auto-generated?=",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Precedence: auto_reply",
        "X-Precedence: bulk",
        "X-Autoreply: yes",
        "X-Autogenerated: Reply",
        "X-Autorespond: anything",
        "X-Autoresponse: ",
        "X-AutoReply-From: ada@example.com",
        "X-Mail-Autoreply: 1",
        "Subject: Out of Office: back on Monday",
        "Subject: Auto: Re: your ticket",
        "Subject: Automatic reply: Printer",
        "Subject: AUTOREPLY",
        "Subject: Abwesenheitsnotiz: Urlaub",
        "Subject: Vacation",
    ],
)
def test_auto_reply_markers(header: str) -> None:
    email = parse(mail(header))
    assert email.auto_reply is True
    assert email.bounce is False


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "X-Auto-Response-Suppress: All",  # asks others not to auto-reply; not itself one
        "Precedence: first-class",
        "Subject: Re: my vacation photos",
        "X-Autoreply: no",
    ],
)
def test_not_auto_replies(header: str) -> None:
    assert parse(mail(header)).auto_reply is False


@pytest.mark.parametrize(
    "header",
    [
        "From: MAILER-DAEMON@mx.example.com",
        "From: Mail Delivery System <postmaster@example.com>",
        "Subject: Undeliverable: Printer on fire",
        "Subject: DELIVERY FAILURE: user unknown",
        "Subject: Delivery Status Notification (Failure)",
        "Subject: Undelivered Mail Returned to Sender",
        "Return-Path: <>",
        "X-Failed-Recipients: gone@example.org",
    ],
)
def test_header_identified_bounces(header: str) -> None:
    email = parse(mail(header, "Original message:\r\nMessage-ID: <lost@desk.example>\r\n"))
    assert email.bounce is True
    # Without a structured report, the original's id is read from the quoted headers.
    assert email.bounced_message_ids == ("<lost@desk.example>",)


DSN_BOUNDARY = "dsn-boundary"


def delivery_report(action: str, original: bytes) -> bytes:
    body = multipart(
        "report",
        DSN_BOUNDARY,
        b"Content-Type: text/plain\r\n\r\nYour message could not be delivered to gone@example.org.",
        b"Content-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: "
        + action.encode()
        + b"\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 no such user\r\n",
        original,
    )
    headers = f"""
        From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <dsn-1@mx.example.org>
        Content-Type: multipart/report; report-type=delivery-status; boundary="{DSN_BOUNDARY}"
        """
    return mail(headers, body)


ORIGINAL = (
    b"Content-Type: message/rfc822\r\n\r\n"
    b"From: agent@desk.example\r\nTo: gone@example.org\r\nSubject: Re: [#123] Printer\r\n"
    b"Message-ID: <reply-2@desk.example>\r\nIn-Reply-To: <customer-1@example.org>\r\n"
    b"References: <ticket-0@desk.example> <customer-1@example.org>\r\n\r\nWe fixed it.\r\n"
)


def test_a_failed_delivery_report_is_a_bounce_with_the_original_ids() -> None:
    email = parse(delivery_report("failed", ORIGINAL))
    assert email.bounce is True and email.auto_reply is True
    assert email.body == "Your message could not be delivered to gone@example.org."
    assert email.bounced_message_ids == (
        "<reply-2@desk.example>",
        "<customer-1@example.org>",
        "<ticket-0@desk.example>",
    )
    assert email.message_id == "<dsn-1@mx.example.org>"
    (original,) = email.attachments
    assert original.filename == "Re: [#123] Printer.eml"
    assert original.content_type == "message/rfc822"
    assert b"Message-ID: <reply-2@desk.example>" in original.data


def test_a_report_with_only_rfc822_headers_still_names_the_original() -> None:
    headers_only = (
        b"Content-Type: text/rfc822-headers\r\n\r\n"
        b"From: agent@desk.example\r\nMessage-ID: <reply-9@desk.example>\r\n"
    )
    email = parse(delivery_report("failed", headers_only))
    assert email.bounce is True
    assert email.bounced_message_ids == ("<reply-9@desk.example>",)
    assert email.attachments == ()


def test_a_delayed_delivery_report_is_an_auto_reply_not_a_bounce() -> None:
    email = parse(delivery_report("delayed", ORIGINAL))
    assert email.auto_reply is True
    assert email.bounce is False
    # Still a delivery report: it opens no ticket, and names the message it is about.
    assert email.delivery_report is True
    assert email.bounced_message_ids[0] == "<reply-2@desk.example>"


def test_ordinary_mail_is_no_delivery_report() -> None:
    assert parse(mail("Subject: hello")).delivery_report is False


# --- bodies -------------------------------------------------------------------------------------

PLAIN = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'


def test_alternative_prefers_plain_text_and_keeps_sanitised_html() -> None:
    body = multipart(
        "alternative",
        "alt",
        PLAIN + "Grüße, the printer is on fire.".encode(),
        b"Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
        b"\r\n\r\n<html><head><title>x</title></head><body><p>Gr=FC=DFe, the <b>printer</b>=\r\n"
        b' is on fire.</p><script>alert(1)</script><a href=3D"javascript:x()">x</a></body></html>',
    )
    email = parse(mail('Content-Type: multipart/alternative; boundary="alt"', body))
    assert email.body == "Grüße, the printer is on fire."
    assert email.body_html is not None
    assert "<b>printer</b>" in email.body_html and "Grüße" in email.body_html
    assert "script" not in email.body_html and "javascript" not in email.body_html
    assert "<title>" not in email.body_html


def test_html_only_mail_gets_its_text_from_the_html() -> None:
    email = parse(
        mail(
            "Content-Type: text/html; charset=utf-8",
            "<p>Line one<br>Line &amp; two</p><p>Para</p>",
        )
    )
    assert email.body == "Line one\nLine & two\nPara"
    assert email.body_html == "<p>Line one<br>Line &amp; two</p><p>Para</p>"


def test_text_only_mail_has_no_html() -> None:
    email = parse(mail("Content-Type: text/plain; charset=utf-8", "Just text.\r\nTwo lines.\r\n"))
    assert email.body == "Just text.\nTwo lines."
    assert email.body_html is None


def test_format_flowed_lines_are_rejoined() -> None:
    flowed = "Content-Type: text/plain; charset=utf-8; format=flowed"
    body = "A long \r\nparagraph.\r\n> quoted \r\n> line\r\n>> deeper\r\n-- \r\nsig"
    assert parse(mail(flowed, body)).body == "A long paragraph.\n> quoted line\n>> deeper\n-- \nsig"
    delsp = parse(mail(flowed + "; delsp=yes", "Split mid-wo \r\nrd.\r\n"))
    assert delsp.body == "Split mid-word."


def test_parts_in_a_mixed_message_are_read_in_order() -> None:
    body = multipart(
        "mixed",
        "mix",
        PLAIN + b"First part.",
        b"Content-Type: text/html\r\n\r\n<p>Second <i>part</i>.</p>",
        b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nnotes",
        PLAIN + b"Signature.",
    )
    email = parse(mail('Content-Type: multipart/mixed; boundary="mix"', body))
    assert email.body == "First part.\n\nSecond part.\n\nSignature."
    assert email.body_html is not None and "<i>part</i>" in email.body_html
    assert [(a.filename, a.data) for a in email.attachments] == [("notes.txt", b"notes")]


def test_a_boundary_python_misreads_is_recovered() -> None:
    body = b"preamble\r\n" + multipart("alternative", "----=_Part_1", PLAIN + b"The body.")
    email = parse(mail("Content-Type: multipart/alternative; boundary=----=_Part_1", body))
    assert email.body == "The body."


@pytest.mark.parametrize(
    ("charset", "raw", "text"),
    [
        ("iso-8859-1", b"caf\xe9", "café"),
        ("windows-1252", b"\x93quoted\x94 \x80", "“quoted” €"),
        ("win-1251", b"\xcf\xf0\xe8\xe2\xe5\xf2", "Привет"),
        ("ks_c_5601-1987", b"\xc7\xd1\xb1\xdb", "한글"),
        ("gb2312", b"\xd6\xd0\xce\xc4", "中文"),
        ("shift_jis", b"\x83e\x83X\x83g", "テスト"),
        ("iso-2022-jp", b"\x1b$B%F%9%H\x1b(B", "テスト"),
        ("us-ascii", "naïve".encode(), "naïve"),  # mislabelled UTF-8
        ("iso-8859-1", "déjà".encode(), "déjà"),  # mislabelled UTF-8, not "dÃ©jÃ "
        ("default", b"caf\xe9", "café"),
        ("x-user-defined", b"caf\xe9", "café"),
        ("", b"caf\xe9", "café"),
        ("unknown-8bit", b"caf\xe9", "café"),
        ("utf-8", b"caf\xe9 is not utf-8", "café is not utf-8"),
    ],
)
def test_body_charsets_decode_without_mojibake(charset: str, raw: bytes, text: str) -> None:
    header = f'Content-Type: text/plain; charset="{charset}"\r\nContent-Transfer-Encoding: 8bit'
    assert parse(mail(header, raw)).body == text


def test_an_unknown_charset_falls_back_and_says_so() -> None:
    header = "Content-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit"
    utf8 = parse(mail(header, "Grüße".encode()))
    assert utf8.body == "Grüße"
    assert any("x-klingon" in defect for defect in utf8.defects)
    assert parse(mail(header, b"Gr\xfc\xdfe")).body == "Grüße"


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("base64", base64.b64encode("Grüße".encode())),
        ("base64", b"R3L DvMOf\r\nZQ"),  # stray space, missing padding
        ("quoted-printable", b"Gr=C3=BC=C3=9Fe"),
        ("quoted printable", b"Gr=C3=BC=C3=9Fe"),
        ("8bit", "Grüße".encode()),
        ("7-bit", "Grüße".encode()),
    ],
)
def test_transfer_encodings_decode_leniently(encoding: str, payload: bytes) -> None:
    header = f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}"
    assert parse(mail(header, payload)).body == "Grüße"


# --- attachments --------------------------------------------------------------------------------

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_a_cid_image_referenced_by_the_html_is_inline() -> None:
    image = (
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <logo@desk>\r\n\r\n" + base64.b64encode(PNG)
    )
    unreferenced = (
        b"Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-ID: <other@desk>\r\n\r\n" + base64.b64encode(b"GIF89a")
    )
    related = multipart(
        "related",
        "rel",
        b'Content-Type: text/html\r\n\r\n<p>Logo: <img src="cid:logo@desk"></p>',
        image,
        unreferenced,
    )
    email = parse(mail('Content-Type: multipart/related; boundary="rel"', related))
    logo, other = email.attachments
    assert (logo.filename, logo.content_type, logo.data) == ("image-1.png", "image/png", PNG)
    assert (logo.content_id, logo.inline) == ("logo@desk", True)
    assert (other.filename, other.content_id, other.inline) == ("image-2.gif", "other@desk", False)
    assert email.body_html is not None and 'src="cid:logo@desk"' in email.body_html
    assert email.body == "Logo:"


@pytest.mark.parametrize(
    ("disposition", "content_type", "filename"),
    [
        (
            "attachment; filename*=UTF-8''R%C3%A9sum%C3%A9%20final.pdf",
            "application/pdf",
            "Résumé final.pdf",
        ),
        (
            "attachment; filename*0*=iso-8859-1''Gr%FC%DF; filename*1*=e%20an; filename*2=\" Bob.txt\"",
            "text/plain",
            "Grüße an Bob.txt",
        ),
        (
            'attachment; filename="=?UTF-8?B?0L7RgtGH0ZHRgi5kb2N4?="',
            "application/octet-stream",
            "отчёт.docx",
        ),
        ("attachment; filename=unquoted name.txt", "text/plain", "unquoted name.txt"),
        ('attachment; filename="../../etc/passwd"', "text/plain", "passwd"),
        ("attachment", 'application/pdf; name="from-content-type.pdf"', "from-content-type.pdf"),
        ("inline; filename=shown.txt", "text/plain", "shown.txt"),
        ("attachment", "application/pdf", "attachment-1.pdf"),
    ],
)
def test_attachment_filenames(disposition: str, content_type: str, filename: str) -> None:
    part = (
        f"Content-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n\r\ndata".encode()
    )
    body = multipart("mixed", "b", PLAIN + b"See attached.", part)
    email = parse(mail('Content-Type: multipart/mixed; boundary="b"', body))
    assert email.body == "See attached."
    assert [a.filename for a in email.attachments] == [filename]


def test_an_oversize_attachment_is_refused_and_the_mail_kept() -> None:
    big = (
        b"Content-Type: application/zip; name=big.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    small = b"Content-Type: text/csv; name=small.csv\r\n\r\na,b\r\n"
    body = multipart(
        "mixed", "b", PLAIN + b"Two files.", big + base64.b64encode(b"x" * 2000), small
    )
    email = parse(mail('Content-Type: multipart/mixed; boundary="b"', body), limit=1000)
    assert email.body == "Two files."
    assert [a.filename for a in email.attachments] == ["small.csv"]
    assert email.refused_attachments == (
        RefusedAttachment("big.zip", "application/zip", 2000, "larger than the 1000-byte limit"),
    )


def test_an_attached_message_is_named_after_its_subject() -> None:
    body = multipart(
        "mixed",
        "b",
        PLAIN + b"Forwarding this.",
        b"Content-Type: message/rfc822\r\n\r\nFrom: x@example.org\r\nSubject: =?utf-8?Q?Caf=C3=A9?=\r\n\r\nhi",
    )
    email = parse(mail('Content-Type: multipart/mixed; boundary="b"', body))
    assert [(a.filename, a.content_type) for a in email.attachments] == [
        ("Café.eml", "message/rfc822")
    ]


def test_a_wrapped_message_is_content_never_the_sender_or_the_thread() -> None:
    """RELIABILITY S6: the MTA checked the outer From; the inner one is anybody's to forge."""
    inner = (
        b"From: Victim <victim@example.org>\r\nReply-To: victim@example.org\r\n"
        b"To: support@example.com\r\nCc: c1@example.org\r\nMessage-ID: <inner@example.org>\r\n"
        b"In-Reply-To: <victims-ticket@deskstream.local>\r\n"
        b"References: <victims-ticket@deskstream.local>\r\n"
        b"Subject: Printer on fire\r\nContent-Type: text/plain\r\n\r\nIt is on fire.\r\n"
    )
    raw = mail(
        """
        From: Attacker <attacker@example.net>
        Delivered-To: support@example.com
        Message-ID: <outer@example.net>
        Content-Type: message/rfc822
        """,
        inner,
    )
    email = parse(raw)
    assert email.sender == Mailbox("attacker@example.net", "Attacker")
    assert email.reply_to is None and email.cc == ()
    assert email.message_id == "<outer@example.net>"
    assert email.in_reply_to == email.references == ()
    assert email.delivered_to == (Mailbox("support@example.com"),)
    assert email.subject == "Printer on fire"  # the outer has none: the wrapped one's, as text
    # The wrapped message is shown, and kept as received.
    assert email.body.startswith("---------- Forwarded message ----------\nFrom: Victim <")
    assert email.body.endswith("To: support@example.com\n\nIt is on fire.")
    (attached,) = email.attachments
    assert (attached.filename, attached.content_type) == ("Printer on fire.eml", "message/rfc822")
    assert b"From: Victim <victim@example.org>" in attached.data


def test_a_wrapper_without_its_own_from_is_no_email_with_a_sender() -> None:
    inner = b"From: victim@example.org\r\nSubject: Hi\r\n\r\nHello."
    with pytest.raises(Unparseable):
        parse(b"Subject: Fwd\r\nContent-Type: message/rfc822\r\n\r\n" + inner)


# --- broken mail --------------------------------------------------------------------------------


def test_a_body_python_cannot_walk_keeps_the_headers_and_attaches_the_raw_message() -> None:
    raw = mail("Subject: Broken\r\nContent-Type: \\;>]@<@;>;b*", "body")
    email = parse(raw)
    assert email.subject == "Broken"
    assert email.sender == Mailbox("ada@example.com", "Ada Lovelace")
    assert email.body.startswith("Email parse failed: ")
    assert [(a.filename, a.data) for a in email.attachments] == [("message.eml", raw)]
    assert any("unreadable" in defect for defect in email.defects)
    too_big = parse(raw, limit=10)
    assert too_big.attachments == ()
    assert too_big.refused_attachments[0].filename == "message.eml"


def test_a_content_type_too_long_to_parse_quickly_is_a_parse_failure() -> None:
    params = "".join(f';\r\n x{i}="{i}"' for i in range(3000))
    email = parse(mail(f"Subject: Huge\r\nContent-Type: text/plain{params}", "body"))
    assert email.subject == "Huge"
    assert email.body.startswith("Email parse failed: ValueError: a Content-Type header longer")
    assert [a.filename for a in email.attachments] == ["message.eml"]


def test_a_mixed_utf8_and_latin1_body_reads_both() -> None:
    header = "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit"
    assert parse(mail(header, "déjà ".encode() + b"vu \xe0 Paris")).body == "déjà vu à Paris"


def test_an_unknown_transfer_encoding_is_read_as_is_and_noted() -> None:
    email = parse(mail("Content-Transfer-Encoding: 7vladi.Pimenovit", "plain words"))
    assert email.body == "plain words"
    assert email.defects == ("unknown Content-Transfer-Encoding '7vladi.Pimenovit': read as is",)


def test_a_junk_line_among_the_headers_is_skipped_not_the_end_of_them() -> None:
    raw = b"Received: by mx\r\nquite Delivered-To: x@example.com\r\nFrom: ada@example.com\r\nSubject: Hi\r\n\r\nBody"
    email = parse(raw)
    assert (email.sender, email.subject, email.body) == (Mailbox("ada@example.com"), "Hi", "Body")
    assert email.defects == ("a malformed header line was skipped",)


def test_a_space_before_the_colon_is_still_a_header() -> None:
    email = parse(b"From  : John Doe <jdoe@machine.example>\r\nSubject : Hello\r\n\r\nHi.")
    assert email.sender == Mailbox("jdoe@machine.example", "John Doe")
    assert email.subject == "Hello"


def test_nul_bytes_and_lone_surrogates_never_reach_the_result() -> None:
    raw = mail("Subject: a\x00b =?utf-7?Q?+2D3-?=", b"body\x00text")
    email = parse(raw)
    assert "\x00" not in email.subject + email.body
    email.subject.encode("utf-8")
