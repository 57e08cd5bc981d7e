"""Every message of a real-world corpus (the Ruby `mail` library's fixtures: plain, MIME, many
charsets, RFC 2822 edge cases, RFC 6532, bounces, deliberately broken mail) either parses into
a sender, a subject and body text a person can read, or is refused with a reason."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.intake.domain.mail.parsed import Mailbox, ParsedEmail, Unparseable
from services.intake.domain.mail.parser import parse_email
from tests.support.mail import CORPUS, corpus_files

FILES = [str(p.relative_to(CORPUS)) for p in corpus_files()]
LIMIT = 1024 * 1024

# Messages whose body is truly empty: attachment-only mail, an HTML body that is just an image,
# and fixtures cut off after the headers.
EMPTY_BODY = {
    "attachment_emails/attachment_message_rfc822_inline_image.eml",
    "attachment_emails/attachment_only_email.eml",
    "attachment_emails/attachment_with_quoted_filename.eml",
    "error_emails/bad_date_header.eml",
    "error_emails/bad_date_header2.eml",
    "error_emails/empty_in_reply_to.eml",
    "error_emails/missing_body.eml",
    "error_emails/missing_content_disposition.eml",
    "error_emails/must_supply_encoding.eml",
    "mime_emails/raw_email_with_binary_encoded.eml",
    "multi_charset/japanese_attachment_long_name.eml",
}
# UTF-8 read as Latin-1 or windows-1252 ("Ã©" for "é", "â€™" for a right single quote).
DOUBLE_ENCODED = re.compile("[ÂÃ][\u0080-\u00bf]|â€")


def parse(name: str) -> ParsedEmail:
    return parse_email((CORPUS / name).read_bytes(), max_attachment_bytes=LIMIT)


def test_the_corpus_is_all_there() -> None:
    assert len(FILES) > 100
    assert {f.split("/")[0] for f in FILES} >= {
        "plain_emails",
        "mime_emails",
        "multi_charset",
        "rfc2822",
        "rfc6532",
        "attachment_emails",
        "multipart_report_emails",
        "error_emails",
    }


@pytest.mark.parametrize("name", FILES)
def test_every_message_parses_readably_or_is_refused_with_a_reason(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    try:
        email = parse_email(raw, max_attachment_bytes=LIMIT)
    except Unparseable as refusal:
        assert str(refusal).strip()
        return
    assert email.sender is not None and "@" in email.sender.email
    assert email.subject.strip()
    assert email.body.strip() or name in EMPTY_BODY
    readable = [email.subject, email.body, email.sender.name or ""]
    for text in readable:
        assert not DOUBLE_ENCODED.search(text), text
        if b"\xef\xbf\xbd" not in raw:  # the file itself holds no U+FFFD
            assert "\ufffd" not in text, text
    assert email.message_id.startswith("<") and email.message_id.endswith(">")


def attachments(email: ParsedEmail) -> list[tuple[str, str, int]]:
    return [(a.filename, a.content_type, len(a.data)) for a in email.attachments]


# What a person reading each message would say it holds. `body` is exact, `body_has` a fragment.
EXPECTED: dict[str, dict[str, Any]] = {
    "plain_emails/basic_email.eml": {
        "sender": Mailbox("test@lindsaar.net", "Mikel Lindsaar"),
        "subject": "Testing 123",
        "body": "Plain email.\n\nHope it works well!\n\nMikel",
        "message_id": "<6B7EC235-5B17-4CA8-B2B8-39290DEB43A3@test.lindsaar.net>",
        "to": (Mailbox("raasdnil@gmail.com", "Mikel Lindsaar"),),
        "delivered_to": (Mailbox("raasdnil@gmail.com"),),
    },
    "plain_emails/raw_email.eml": {  # EUC-KR: a Q-encoded subject and a base64 body
        "sender": Mailbox("jamis@37signals.com", "Jamis Buck"),
        "subject": "NOTE: 한국말로 하는 것",
        "body": "대부분의 마찬가지로, 우리는 하나님을 믿습니다.\n\n제 이름은 Jamis입니다.",
    },
    "plain_emails/raw_email_reply.eml": {
        "subject": "Re: Test reply email",
        "in_reply_to": ("<348F04F142D69C21-291E56D292BC@xxxx.net>",),
        "references": ("<473FF3B8.9020707@xxx.org>", "<348F04F142D69C21-291E56D292BC@xxxx.net>"),
        "body": "Message body",
    },
    "plain_emails/raw_email_multiple_from.eml": {"sender": Mailbox("tim@powerupdev.com")},
    "plain_emails/raw_email_incorrect_header.eml": {  # a junk line among the headers
        "sender": Mailbox("xxx@xxx.xxx", "xxx xxx"),
        "subject": "Stop adware/spyware once and for all.",
        "body_has": "You are infected with:",
    },
    "plain_emails/raw_email10.eml": {  # charset=X-UNKNOWN
        "subject": "[No Subject]",
        "priority": "normal",
        "body_has": "Envoyé par le service de messagerie texte de Bell Mobilité.",
    },
    "plain_emails/raw_email_with_partially_quoted_subject.eml": {
        "subject": 'Re: Test: "漢字" mid "漢字" tail',
    },
    "plain_emails/raw_email_with_at_display_name.eml": {
        "sender": Mailbox("test@lindsaar.net", "Mikel Lindsaar"),
        "to": (
            Mailbox("smith@gmail.com"),
            Mailbox("raasdnil@gmail.com", "Mikel@Lindsaar"),
            Mailbox("tom@gmail.com"),
        ),
    },
    "multi_charset/japanese.eml": {
        "subject": "まみむめも",
        "to": (Mailbox("raasdnil@gmail.com", "みける"),),
        "body": "かきくえこ\n\n-- \nhttp://lindsaar.net/\nRails, RSpec and Life blog....",
    },
    "multi_charset/japanese_iso_2022.eml": {"body": "すみません。"},
    "multi_charset/japanese_shift_jis.eml": {
        "body": "あいうえお\n\nこのメールはテスト用のメールです。\n\n今後ともよろしくお願い申し上げます\uff01",
    },
    "multi_charset/ks_c_5601-1987.eml": {"body": "스티해"},
    "multi_charset/japanese_attachment.eml": {
        "body_has": "testing",
        "attachments": [("てすと.txt", "text/plain", 33)],
    },
    "rfc6532/utf8_headers.eml": {
        "sender": Mailbox("jdöe@mächine.example", "Jöhn Doe"),
        "to": (Mailbox("märy@exämple.net", "Märy Smith"),),
        "subject": "Säying Hello",
        "body": "body",
    },
    "rfc2822/example10.eml": {  # comments everywhere
        "sender": Mailbox("pete@silly.test", "Pete"),
        "to": (
            Mailbox("c@public.example", "Chris Jones"),
            Mailbox("joe@example.org"),
            Mailbox("jdoe@one.test", "John"),
        ),
    },
    "rfc2822/example13.eml": {  # obsolete syntax: spaces before the colons
        "sender": Mailbox("jdoe@machine.example", "John Doe"),
        "subject": "Saying Hello",
        "to": (Mailbox("mary@example.net", "Mary Smith"),),
    },
    "attachment_emails/attachment_pdf.eml": {
        "subject": "Another PDF with 🎉 Unicode chars in it 🍿",
        "sender": Mailbox("xxxx@xxxx.com", "Test Tester"),
        "body_has": "Just attaching another PDF, here, to see what the message looks like,",
        "attachments": [("broken.pdf", "application/pdf", 1026)],
    },
    "attachment_emails/attachment_with_quoted_filename.eml": {  # RFC 2231 filename*
        "subject": "Eelanalüüsi päring",
        "attachments": [("Eelanalüüsi päring.jpg", "image/jpeg", 1952)],
    },
    "attachment_emails/attachment_with_base64_encoded_name.eml": {
        "attachments": [("This is a test.pdf", "application/pdf", 399)],
    },
    "attachment_emails/attachment_with_unquoted_name.eml": {
        "body": "This is the first part.",
        "attachments": [("This is a test.txt", "text/plain", 11)],
    },
    "attachment_emails/attachment_nonascii_filename.eml": {
        "attachments": [("ciële.txt", "text/plain", 11)],
    },
    "attachment_emails/attachment_content_location.eml": {
        "attachments": [("Photo25.jpg", "image/jpeg", 227)],
    },
    "attachment_emails/attachment_message_rfc822.eml": {
        "body": "This is the first part.",
        "attachments": [("ForwardedMessage.eml", "message/rfc822", 3736)],
    },
    "attachment_emails/attachment_message_rfc822_inline_image.eml": {
        "attachments": [("img.png", "image/png", 370), ("Testmail.eml", "message/rfc822", 1808)],
        "inline": [True, False],
    },
    "attachment_emails/attachment_only_email.eml": {
        "body": "",
        "attachments": [("blah.gz", "application/x-gzip", 288)],
    },
    "mime_emails/raw_email7.eml": {  # nested multiparts
        "body": "This is the first part.",
        "attachments": [
            ("test.rb", "text/x-ruby-script", 25),
            ("test.pdf", "application/pdf", 14),
            ("smime.p7s", "application/pkcs7-signature", 227),
        ],
    },
    "mime_emails/raw_email_with_illegal_boundary.eml": {  # boundary=----=_NextPart unquoted
        "body": "Hello\nThis is an outlook test\n\nSo there.\n\nMe.",
    },
    "mime_emails/raw_email_with_mimepart_without_content_type.eml": {  # a delay warning
        "auto_reply": True,
        "bounce": False,
    },
    "multipart_report_emails/multi_address_bounce1.eml": {
        "sender": Mailbox("mailer-daemon@lvmail01.ll.com", "Mail Delivery System"),
        "bounce": True,
        "auto_reply": True,
        "bounced_message_ids": ("<118707422.15521266992174819.JavaMail.root@lvmail01>",),
        "body_has": "I'm sorry to have to inform you that your message could not",
        "attachments": [("Test of bounce email.eml", "message/rfc822", 1381)],
    },
    "multipart_report_emails/report_530.eml": {  # the original as text/rfc822-headers
        "bounce": True,
        "bounced_message_ids": ("<200712232303.lBNN3jDq002941@mail12.rrrr.com.au>",),
        "body_has": "----- The following addresses had permanent fatal errors -----",
        "attachments": [],
    },
    "multipart_report_emails/report_422.eml": {  # Action: delayed
        "bounce": False,
        "auto_reply": True,
        "delivery_report": True,
        "bounced_message_ids": (
            "<15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au>",
        ),
        "body_has": "THIS IS A WARNING MESSAGE ONLY",
    },
    "multipart_report_emails/multipart_report_multiple_status.eml": {
        "bounce": True,
        "bounced_message_ids": ("<4c2a146147ac8_61ff157c4ec1652df@s.h.c.mail>",),
        "body_has": "<u@ci.com> has restricted SMS e-mail",
    },
    "error_emails/bad_encoded_subject.eml": {"unparseable": "no valid sender"},
    "error_emails/invalid_subject_characters.eml": {  # raw Latin-1 in a header
        "sender": Mailbox("info@formacaofrenetik.info", "Formação Frenetikpolis"),
        "subject": "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro",
    },
    "error_emails/bad_subject.eml": {  # encoded words split mid-word
        "sender": Mailbox("carol@mysurvey.com", "MySurvey.com & Carol Adams"),
        "subject": "MySurvey.com: You have a survey waiting! 91123105",
        "reply_to": Mailbox("carol@reply.mysurvey.com"),
    },
    "error_emails/header_fields_with_empty_values.eml": {
        "sender": Mailbox("jorn@prikkprikkprikk.no", "Jørn Støylen"),
        "body": "--\nJørn Støylen -- http://www.prikkprikkprikk.no\n924 38 051 -- jorn@prikkprikkprikk.no",
    },
    "error_emails/content_transfer_encoding_7-bit.eml": {"body_has": "DISCOVERÆ CARD"},
    "error_emails/content_transfer_encoding_qp_with_space.eml": {
        "body_has": "If you're in need of a good RX site for online purchases, we are your answer.",
    },
    "error_emails/multiple_invalid_content_dispositions.eml": {"body": "foo"},
    "error_emails/multiple_references_with_one_invalid.eml": {
        "references": ("<foo@bar.net>", "<baz@bar.net>"),
        "body": "foo",
    },
    "error_emails/encoding_madness.eml": {"reply_to": None, "body": "Body Text"},
    "error_emails/weird_to_header.eml": {
        "subject": "[No Subject]",
        "to": (Mailbox("user-example@aol.com"), Mailbox("e-s-a-s-2200@app.ar.com")),
    },
    "error_emails/missing_content_disposition.eml": {
        "attachments": [("somefile.jpg", "image/jpg", 1311)],
    },
}


def test_the_expectations_name_real_files() -> None:
    assert set(EXPECTED) <= set(FILES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_what_a_reader_sees_in_specific_messages(name: str) -> None:
    expected = dict(EXPECTED[name])
    if "unparseable" in expected:
        with pytest.raises(Unparseable, match=expected["unparseable"]):
            parse(name)
        return
    email = parse(name)
    if "body_has" in expected:
        assert expected.pop("body_has") in email.body
    if "attachments" in expected:
        assert attachments(email) == expected.pop("attachments")
    if "inline" in expected:
        assert [a.inline for a in email.attachments] == expected.pop("inline")
    for field, value in expected.items():
        assert getattr(email, field) == value, field
