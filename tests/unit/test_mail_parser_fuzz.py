"""Whatever bytes arrive, the parser answers with a ParsedEmail or an Unparseable refusal, and
what it answers can be stored: no NUL, no lone surrogate, a sender, a subject, a "<...>" id."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.domain.mail.parsed import ParsedEmail, Unparseable
from services.intake.domain.mail.parser import parse_email
from tests.support.mail import corpus_files

SAMPLES = sorted(p.read_bytes() for p in corpus_files())

# Header lines that have tripped mail parsers: broken MIME parameters, encoded words, charsets.
NASTY_HEADERS = [
    b"Content-Type: multipart/mixed; boundary=",
    b'Content-Type: multipart/alternative; boundary="x"',
    b"Content-Type: multipart/mixed; boundary=----=_Part=1",
    b"Content-Type: message/rfc822",
    b"Content-Type: message/delivery-status",
    b"Content-Type: text/rfc822-headers",
    b"Content-Type: text/plain; charset=x-no-such-charset",
    b"Content-Type: text/plain; charset=unicode_escape",
    b"Content-Type: text/plain; charset=utf-7",
    b"Content-Type: text/html; charset*=utf-8''%E2%82",
    b"Content-Type: application/pdf; name*0*=utf-8''a%20; name*1=b.pdf; name*5*=%FF",
    b"Content-Type: ; ; ;",
    b'Content-Type: text/plain; charset="',
    b"Content-Disposition: attachment; filename==?utf-8?B?////?=",
    b"Content-Disposition: inline; filename*=bogus'en'%00%01.txt",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Transfer-Encoding: x-uuencode",
    b"Content-ID: <>",
    b"From: =?utf-8?q?=00?= <a@b.example>",
    b'From: "unterminated <a@b.example',
    b"From: <@>, @, a@, @b, ,,,",
    b"From: =?x-unknown?B?//79?= <\xff@\xfe.example>",
    b"To: group: a@b.example, (comment \\) ; c@d.example",
    b"Subject: =?utf-8?B?4oKs?= =?iso-2022-jp?B?GyRCJEgbKEI=?= =?bad?Q?=ZZ?=",
    b"Subject: \x00\xff\xfe",
    b"Message-ID: <<<>>>",
    b"References: <a@b> <c@d",
    b"Auto-Submitted: =?UTF-8?Q?auto-generated?=",
    b"X-Priority: \xff",
    b"Return-Path: <>",
    b"Received: from nowhere",
    b"Bad Header Line: value",
    b"  folded continuation",
    b":",
]


def mutate(sample: bytes, data: st.DataObject) -> bytes:
    body = bytearray(sample)
    for _ in range(data.draw(st.integers(0, 6), label="mutations")):
        if not body:
            break
        where = data.draw(st.integers(0, len(body) - 1), label="at")
        kind = data.draw(st.sampled_from(["flip", "cut", "splice", "drop", "repeat"]), label="kind")
        if kind == "flip":
            body[where] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "cut":
            del body[where:]
        elif kind == "splice":  # a header line inserted at a line start (or anywhere)
            line_start = body.rfind(b"\n", 0, where) + 1
            at = line_start if data.draw(st.booleans(), label="at line start") else where
            body[at:at] = data.draw(st.sampled_from(NASTY_HEADERS), label="header") + b"\r\n"
        elif kind == "drop":
            del body[where : where + data.draw(st.integers(1, 80), label="length")]
        else:
            chunk = body[where : where + data.draw(st.integers(1, 400), label="length")]
            body[where:where] = chunk
    return bytes(body)


def check(raw: bytes) -> None:
    try:
        email = parse_email(raw, max_attachment_bytes=2048)
    except Unparseable as refusal:
        assert str(refusal)
        return
    assert isinstance(email, ParsedEmail)
    assert email.sender is not None and "@" in email.sender.email
    assert email.subject
    assert email.message_id.startswith("<") and email.message_id.endswith(">")
    texts = [email.subject, email.body, email.body_html or "", email.message_id]
    texts += [m.email + (m.name or "") for m in (email.sender, *email.to, *email.cc)]
    texts += [k + v for k, v in email.headers.items()]
    texts += [a.filename for a in email.attachments]
    texts += [r.filename for r in email.refused_attachments]
    for text in texts:
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: everything can be stored as UTF-8
    assert all(len(a.data) <= 2048 for a in email.attachments)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash_the_parser(raw: bytes) -> None:
    check(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NASTY_HEADERS), max_size=12), st.binary(max_size=300))
def test_piles_of_nasty_headers_never_crash_the_parser(headers: list[bytes], body: bytes) -> None:
    check(b"From: a@b.example\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_real_mail_never_crashes_the_parser(sample: bytes, data: st.DataObject) -> None:
    check(mutate(sample, data))
