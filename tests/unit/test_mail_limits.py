"""What one email may cost to read (RELIABILITY S3): inputs that took minutes of CPU are cut
or simplified, and the result says what was left out and keeps the message as received."""

from __future__ import annotations

import time

import pytest

from libs.platform.settings import Settings, SettingsError, email_bytes_for
from services.intake.domain.mail.limits import MimeLimits, cut_parts, html_depth
from services.intake.domain.mail.parsed import ParsedEmail
from services.intake.domain.mail.parser import parse_email
from tests.unit.test_mail_parser import PLAIN, mail, multipart

LIMIT = 8 * 1024 * 1024


def parse(raw: bytes, limits: MimeLimits | None = None) -> ParsedEmail:
    return parse_email(raw, max_attachment_bytes=LIMIT, limits=limits)


def original(email: ParsedEmail) -> bytes:
    (kept,) = [a for a in email.attachments if a.filename == "original-message.eml"]
    assert kept.content_type == "message/rfc822"
    return kept.data


def test_html_nested_150000_deep_is_shown_as_text_with_the_original_kept() -> None:
    # 1.7 MB, under the size cap: minutes of sanitiser CPU before the depth cap.
    markup = "<div>" * 150_000 + "Printer on fire" + "</div>" * 150_000
    raw = mail("Content-Type: text/html; charset=utf-8", markup)
    email = parse(raw)
    assert email.body == "Printer on fire"
    assert email.body_html is None
    assert email.cut == ("HTML nested over 256 levels is shown as text",)
    assert original(email) == raw


def test_html_over_the_size_cap_is_shown_as_text() -> None:
    raw = mail("Content-Type: text/html", "<p>" + "word " * 1000 + "</p>")
    email = parse(raw, MimeLimits(max_html_bytes=1000))
    assert email.body.startswith("word word") and email.body_html is None
    assert email.cut == ("an HTML part over 1000 characters is shown as text",)


def test_ordinary_html_is_still_sanitised() -> None:
    raw = mail("Content-Type: text/html", "<table><tr><td><b>Hi</b><script>x()</script>")
    email = parse(raw)
    assert email.body_html is not None and "<b>Hi</b>" in email.body_html
    assert "script" not in email.body_html
    assert email.cut == () and email.attachments == ()


def test_150000_flat_parts_are_cut_to_the_first_thousand() -> None:
    # 3 MB; the stdlib parser alone took over a minute on it.
    parts = [f"\r\npart {i}".encode() for i in range(150_000)]
    raw = mail('Content-Type: multipart/mixed; boundary="b"', multipart("mixed", "b", *parts))
    email = parse(raw)
    assert email.body.startswith("part 0\n\npart 1\n\n")
    shown = email.body.split("\n\n")
    assert len(shown) <= 1000 and shown[-1] == f"part {len(shown) - 1}"
    assert email.cut == ("150001 MIME parts: only the first 1000 were read",)
    assert original(email) == raw


def test_text_nested_deeper_than_the_walk_is_shown_not_dropped() -> None:
    # Item 7 of issue 10: 33 to 999 levels deep, the text vanished (body "-").
    for levels in (33, 200, 450):  # 450: as deep as the part cap lets through
        body = PLAIN + b"Deep text."
        for level in range(levels):
            body = b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % level + multipart(
                "mixed", f"b{level}", body
            )
        email = parse(
            mail("Subject: deep", body.split(b"\r\n\r\n", 1)[1]).replace(
                b"Subject: deep", body.split(b"\r\n\r\n", 1)[0]
            )
        )
        assert email.body == "Deep text.", levels
        assert email.cut == ("MIME parts nested deeper than 32 levels are shown one after another",)
        assert original(email)


def test_a_cut_message_too_large_to_attach_is_listed_as_not_kept() -> None:
    raw = mail("Content-Type: text/html", "<div>" * 300 + "x")
    email = parse_email(raw, max_attachment_bytes=100)
    assert email.cut and email.attachments == ()
    assert email.refused_attachments[0].filename == "original-message.eml"


def test_every_cap_holds_in_bounded_time() -> None:
    """Not a benchmark (bench/mimecost.py is): a guard that none of these is pathological."""
    inputs = [
        mail("Content-Type: text/html", "<a" * 500_000),  # tags that never close
        mail("Content-Type: text/html", "<span>" * 300_000),
        mail("Subject: " + " =?utf-8?q?a?=" * 100_000),
        mail("\r\n".join(f"X-H{i}: v" for i in range(100_000))),
    ]
    for raw in inputs:
        began = time.process_time()
        parse(raw)
        assert time.process_time() - began < 5
    # Over the HTML size cap, shown as text: the text rendering must be linear too.
    began = time.process_time()
    email = parse(mail("Content-Type: text/html", "<a" * 1_000_000), MimeLimits(max_html_bytes=10))
    assert time.process_time() - began < 5 and email.body.startswith("<a<a")


@pytest.mark.parametrize(
    ("markup", "depth"),
    [
        ("<div><div><b>x</b></div></div>", 3),
        ("<p>one<p>two<p>three<br><img src=x>", 0),  # closed by the parser, void
        ("<div/><div/><div/>", 0),
        ("a < b and <<<<", 0),
        ("<table><tr><td><table><tr><td>x", 2),
    ],
)
def test_html_depth_counts_what_the_parser_nests(markup: str, depth: int) -> None:
    assert html_depth(markup, 1000) == depth


def test_cut_parts_leaves_a_message_within_the_cap_alone() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    assert cut_parts(raw, 2) == (raw, 0)
    cut, found = cut_parts(raw, 1)
    assert (cut, found) == (raw[: raw.index(b"--b--")], 2)


def test_a_read_receipt_is_a_report_naming_its_original() -> None:
    report = b"Reporting-UA: mail.example.org\r\nOriginal-Message-ID: <ours@deskstream.local>\r\n"
    report += b"Disposition: manual-action/MDN-sent-manually; displayed\r\n"
    body = multipart(
        "report",
        "r",
        PLAIN + b"Your message was displayed.",
        b"Content-Type: message/disposition-notification\r\n\r\n" + report,
    )
    raw = mail(
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="r"\r\n'
        "Subject: Read: Printer on fire",
        body,
    )
    email = parse(raw)
    assert email.read_receipt and email.delivery_report and email.auto_reply
    assert not email.bounce
    assert email.bounced_message_ids == ("<ours@deskstream.local>",)
    assert email.attachments == ()


MiB = 1024 * 1024


def test_limits_that_contradict_each_other_are_refused_at_load() -> None:
    assert Settings().max_email_bytes == email_bytes_for(8 * MiB) == 12 * MiB
    derived = Settings.from_env({"DESKSTREAM_MAX_ATTACHMENT_BYTES": str(20 * MiB)})
    assert derived.max_email_bytes >= 20 * MiB * 4 // 3 and derived.max_request_bytes >= (
        derived.max_email_bytes
    )
    with pytest.raises(SettingsError, match="DESKSTREAM_MAX_EMAIL_BYTES"):
        Settings.from_env({"DESKSTREAM_MAX_EMAIL_BYTES": str(10 * MiB)})
