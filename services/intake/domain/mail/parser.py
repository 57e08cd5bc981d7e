"""Raw RFC 822 bytes -> `ParsedEmail`, following osTicket's parsing rules (Mail_Parse).

The rule: a message either parses (however broken its MIME, charsets or encodings: what was
worked around is listed in `defects`) or it raises `Unparseable` because it has no headers or
no sender. Nothing else ever escapes, whatever the bytes: this runs on every email received.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import html
import io
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy

from libs.events.types.fields import NAME_LENGTH
from services.intake.domain.mail.limits import MimeLimits, cut_parts, html_depth
from services.intake.domain.mail.parsed import (
    MailAttachment,
    Mailbox,
    ParsedEmail,
    RefusedAttachment,
    Unparseable,
)
from services.intake.domain.payloads import html_to_text, sanitize_html
from services.intake.domain.text import clean as _clean
from services.intake.domain.text import collapse as _collapse
from services.intake.domain.text import safe_filename as _safe_filename

_PARSER = BytesParser(policy=default_policy)
_LEGACY_PARSER = BytesParser(policy=compat32)  # its forgiving header reading, for the worst mail
# Re-serialises an attached message/rfc822 with its headers exactly as received.
_VERBATIM = default_policy.clone(refold_source="none", cte_type="8bit", linesep="\r\n")
_MAX_DEFECTS = 25
_MAX_CONTENT_TYPE = 16 * 1024
# A Content-Type line (with its continuations) longer than any mail client writes.
_CONTENT_TYPE = re.compile(rb"(?im)^content-type[ \t]*:(?:[^\n]|\n[ \t]){%d}" % _MAX_CONTENT_TYPE)
_NO_SUBJECT = "[No Subject]"
_QUOTED_MESSAGE_ID = re.compile(r"(?im)^message-id:\s*(\S+)")

# ---------------------------------------------------------------------------------------------
# Charsets (osTicket's include/class.charset.php): aliases, bogus labels, a fallback that never
# raises. Labels in the Latin-1 family are read as windows-1252 (as browsers do: the C1 range is
# never text), and as UTF-8 when the bytes are valid UTF-8: mislabelled UTF-8 is the commonest
# charset bug in mail, and real Latin-1 text is practically never valid UTF-8.

_BOGUS = {"", "default", "x-user-defined", "iso", "unknown-8bit", "unknown", "x-unknown"}
_ALIASES = {  # osTicket's, plus the Windows supersets mail clients actually write
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949",
    "gb2312": "gbk", "gb_2312-80": "gbk", "x-gbk": "gbk", "big5": "cp950",
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932",
    "utf8mb4": "utf-8",
}  # fmt: skip
_LATIN1_FAMILY = {"ascii", "latin-1", "iso8859-1", "cp1252"}
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_NOT_TEXT = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}


@functools.lru_cache(maxsize=256)
def _codec(label: str) -> str | None:
    """A Python codec name for a MIME charset label; "latin-1" for bogus ones, None if unknown."""
    name = label.strip().strip("\"'").lower()
    if name in _BOGUS:
        return "latin-1"
    name = _ALIASES.get(name, name)
    windows = re.fullmatch(r"(?:x-)?(?:windows|win|cp)[-_ ]?(\d{3,5})", name)
    iso = re.fullmatch(r"(?:x-)?iso[-_ ]?(8859|2022)[-_ ]?([\w-]+?)(?:-[ie])?(?::\d+)?", name)
    candidates = [name]
    if windows:
        candidates.append(f"cp{windows[1]}")
    if iso:
        candidates.append(f"iso{iso[1]}-{iso[2]}")
    candidates.append(name.removeprefix("x-"))
    for candidate in candidates:
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        if info._is_text_encoding and info.name not in _NOT_TEXT:
            return info.name
    return None


def _windows_1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # five bytes windows-1252 leaves undefined keep their Latin-1 sense
        text = data.decode("cp1252", "surrogateescape")
        return re.sub("[\udc80-\udcff]", lambda m: chr(ord(m[0]) - 0xDC00), text)


def _utf8_or_1252(data: bytes) -> str:
    """Valid UTF-8 sequences as UTF-8, every other byte as windows-1252: right for Latin-1, for
    mislabelled UTF-8 and for the two mixed in one message."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if not _UTF8_SEQUENCE.search(data):  # no UTF-8 in it at all: plain windows-1252
            return _windows_1252(data)
    text = data.decode("utf-8", "surrogateescape")
    return re.sub(
        "[\udc80-\udcff]+", lambda m: _windows_1252(m[0].encode("utf-8", "surrogateescape")), text
    )


def _decode(data: bytes, label: str | None, defects: list[str]) -> str:
    """Bytes in the declared charset -> text; never raises, never silently mojibakes."""
    codec = _codec(label or "")
    if codec is None:
        _note(defects, f"unknown charset {label!r}: read as UTF-8 or Latin-1")
        return _utf8_or_1252(data)
    if codec in _LATIN1_FAMILY:
        return _utf8_or_1252(data)
    try:
        return data.decode(codec)
    except ValueError:  # UnicodeDecodeError, or a codec's own complaint
        pass
    if codec == "utf-8":
        _note(defects, "bytes that are not UTF-8 were read as windows-1252")
        return _utf8_or_1252(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _note(defects, f"bytes undecodable in {label!r} were replaced")
        try:
            return data.decode(codec, "replace")
        except ValueError:
            return _utf8_or_1252(data)
    _note(defects, f"text labelled {label!r} is UTF-8: read as UTF-8")
    return text


# ---------------------------------------------------------------------------------------------
# Header values: unfolded, raw 8-bit bytes decoded (RFC 6532 UTF-8, else the message's charset),
# RFC 2047 encoded words decoded (also inside quoted strings and parameters, as clients do).

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unfold(value: str) -> str:
    return re.sub(r"[\r\n]+", "", value)


def _fix_8bit(value: str, charset: str | None, defects: list[str]) -> str:
    """Raw header bytes arrive surrogate-escaped: decode them as UTF-8, else as `charset`."""
    if not _SURROGATE.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode(data, charset, defects)


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        data = re.sub(r"[^A-Za-z0-9+/]", "", text).encode("ascii")
        data = data[: len(data) - 1] if len(data) % 4 == 1 else data
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    raw = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), raw)


def _decode_words(value: str, defects: list[str]) -> str:
    """RFC 2047: adjacent words of one charset are joined as bytes before decoding (a multi-byte
    character may be split across them), and whitespace between two words is dropped."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset = ""
    position = 0

    def flush() -> None:
        if pending:
            out.append(_decode(b"".join(pending), pending_charset, defects))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        if gap and not (pending and gap.isspace()):
            flush()
            out.append(gap)
        charset = match[1].split("*", 1)[0]  # RFC 2231 language suffix: =?utf-8*en?Q?...?=
        if pending and charset.lower() != pending_charset.lower():
            flush()
        pending_charset = charset
        pending.append(_word_bytes(match[2], match[3]))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def _header_text(raw: str, charset: str | None, defects: list[str]) -> str:
    return _clean(_collapse(_decode_words(_fix_8bit(_unfold(raw), charset, defects), defects)))


def canonical_header_name(name: str) -> str:
    """`auto-submitted` -> `Auto-Submitted`: the key of `ParsedEmail.headers`."""
    return "-".join(piece.capitalize() for piece in name.strip().split("-"))


_PARAMETER = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_RFC2231_NAME = re.compile(r"([^*]+)\*(?:(\d+)(\*)?)?")


def _parameters(value: str, defects: list[str]) -> tuple[str, dict[str, str]]:
    """`type/sub; a=1; b*=utf-8''x%20y` -> ("type/sub", {"a": "1", "b": "x y"}). Lenient where
    the stdlib is not: unquoted values with spaces, encoded words, RFC 2231 continuations."""
    main, _, rest = value.partition(";")
    plain: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for match in _PARAMETER.finditer(";" + rest):
        name, text = match[1].lower(), match[2].strip()
        if text.startswith('"'):
            text = re.sub(
                r"\\(.)", r"\1", text[1:-1] if len(text) > 1 and text[-1] == '"' else text[1:]
            )
        extended = _RFC2231_NAME.fullmatch(name)
        if extended:
            index = int(extended[2]) if extended[2] and len(extended[2]) < 4 else 0
            encoded = extended[2] is None or extended[3] is not None
            pieces.setdefault(extended[1], []).append((index, encoded, text))
        else:
            plain.setdefault(name, _decode_words(text, defects))
    for name, parts in pieces.items():
        charset, chunks = None, []
        for index, encoded, text in sorted(parts, key=lambda part: part[0]):
            if encoded and index == 0 and text.count("'") >= 2:
                charset, _, text = text.split("'", 2)
            data = text.encode("utf-8", "surrogateescape")
            chunks.append(urllib.parse.unquote_to_bytes(data) if encoded else data)
        plain[name] = _decode(b"".join(chunks), charset or "us-ascii", defects)
    return main.strip().strip('"').lower(), plain


# ---------------------------------------------------------------------------------------------
# Addresses and ids.

_ADDRESS_DELIMITERS = re.compile(r'[\s<>()\[\],;:"]+')
_LOCAL = re.compile(r"[^\s<>()\[\],;:\"@]+")
_DOMAIN = re.compile(r"(?:[^\s<>()\[\],;:\"@.]+\.)*[^\s<>()\[\],;:\"@.]+|\[[^\[\]\s]+\]")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_AT_IN_NAME = re.compile(r'(^|,)([^,"<>@]*@[^,"<>]*)<')
# Longer address lists skip the stdlib's parser, which is not linear in the worst case.
_MAX_ADDRESS_HEADER = 32 * 1024


def _mailboxes(raw_values: Iterable[str], charset: str | None, defects: list[str]) -> list[Mailbox]:
    found: list[Mailbox] = []
    for raw in raw_values:
        value = _fix_8bit(_unfold(raw), charset, defects)
        found.extend(_parse_addresses(value, defects))
    unique: dict[str, Mailbox] = {}
    for mailbox in found:
        unique.setdefault(mailbox.email, mailbox)
    return list(unique.values())


def _parse_addresses(value: str, defects: list[str]) -> list[Mailbox]:
    # `john@example.com <john@example.com>`: an unquoted display name with an @ makes the stdlib
    # take the name for the address; quoted, it is read as mail clients show it.
    value = _AT_IN_NAME.sub(lambda m: f'{m[1]} "{m[2].strip()}" <', value)
    result = []
    try:
        if len(value) > _MAX_ADDRESS_HEADER:
            raise ValueError("address header too long")
        addresses = default_policy.header_factory("to", value).addresses
    except Exception:  # the stdlib's RFC 5322 parser trips on some garbage; the pattern won't
        addresses = ()
        _note(defects, "unparseable address header: addresses found by pattern")
    for address in addresses:
        local, domain = address.username, address.domain
        if _LOCAL.fullmatch(local or "") and _DOMAIN.fullmatch(domain or ""):
            email = _clean(f"{local}@{domain}".lower())
            name = address.display_name
            if len(addresses) == 1 and "=?" in value and "<" in value:
                # The stdlib puts a space between adjacent encoded words; RFC 2047 does not.
                name = value[: value.index("<")].strip()
                name = name if name.startswith('"') else re.sub(r"\([^()]*\)", "", name)
                name = _decode_words(name, defects)
            result.append(Mailbox(email, _display_name(name, email, value, defects)))
    if not result:  # "Big Bug bb@bug.com", "a@b.example c@d.example": the addresses that are there
        # Searched as written, never decoded: an address inside an encoded display name is text,
        # and taking it would let a crafted name pose as another sender (RELIABILITY S6).
        for token in _ADDRESS_DELIMITERS.split(value):
            local, at, domain = token.partition("@")
            if at and _LOCAL.fullmatch(local) and _DOMAIN.fullmatch(domain):
                result.append(Mailbox(_clean(token.lower())))
    return result


def _display_name(name: str, email: str, header: str, defects: list[str]) -> str | None:
    if not name:  # legacy "addr (Full Name)": the comment is the name, as osTicket reads it
        comment = re.search(re.escape(email) + r">?\s*\(([^()]*)\)", header, re.IGNORECASE)
        name = comment[1] if comment else ""
    name = _collapse(_clean(_decode_words(_fix_8bit(name, None, defects), defects)))
    # A name is what a person reads; past what a ticket stores, the rest is cut, not refused.
    return name.strip("\"'").strip()[:NAME_LENGTH].strip() or None


def _message_id(raw: str | None) -> str | None:
    """`<id>` as written; a bare id gets its brackets, comments and stray spaces go."""
    if raw is None:
        return None
    value = re.sub(r"\([^()]*\)", "", _unfold(raw))
    match = _MESSAGE_ID.search(value)
    if match:
        return match[0]
    bracketed = re.search(r"<([^<>]*)>", value)
    inner = re.sub(r"\s+", "", bracketed[1]) if bracketed else (value.split() or [""])[0]
    inner = inner.strip("<>")
    return f"<{inner}>" if inner else None


def _reply_ids(envelope: _Envelope, name: str) -> tuple[str, ...]:
    """Message-ID tokens of In-Reply-To/References. Some writers (Python's own email package
    among them) MIME-encode a long one as if it were text: read the decoded value then."""
    tokens = _id_tokens(envelope.raw.get(name, []))
    if not tokens and name in envelope.headers:
        tokens = _id_tokens([envelope.headers[name]])
    return tuple(_clean(i) for i in tokens)


def _id_tokens(values: Iterable[str]) -> list[str]:
    return [token for value in values for token in _MESSAGE_ID.findall(_unfold(value))]


def _note(defects: list[str], text: str) -> None:
    if text not in defects and len(defects) < _MAX_DEFECTS:
        defects.append(text)


# ---------------------------------------------------------------------------------------------
# The raw header block: osTicket and most mail readers accept two things Python's parser does
# not — a space before the colon (RFC 5322 obsolete syntax) and a junk line among the headers
# (Python ends the headers there, losing From and Subject).

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _repair_header_block(raw: bytes, defects: list[str]) -> bytes:
    end = _HEADER_END.search(raw)
    cut = end.start() if end else len(raw)
    lines = raw[:cut].split(b"\n")
    kinds = []
    for number, line in enumerate(lines):
        if _HEADER_LINE.match(line):
            kinds.append("header")
        elif line[:1] in (b" ", b"\t") or (number == 0 and line.startswith(b"From ")):
            kinds.append("continuation")  # a folded line, or the mbox "From " line
        else:
            kinds.append("junk")
    if "header" not in kinds:
        return raw
    last_header = max(i for i, kind in enumerate(kinds) if kind == "header")
    repaired = []
    skipping = False  # the folded lines of a skipped would-be header ("Na me: ...") go with it
    for number, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        if number < last_header and (kind == "junk" or (skipping and kind == "continuation")):
            _note(defects, "a malformed header line was skipped")
            skipping = skipping if kind == "continuation" else b":" in line
            continue
        skipping = False
        if kind == "header":
            line = re.sub(rb"^([!-9;-~]+)[ \t]+:", rb"\1:", line)
        repaired.append(line)
    block = b"\n".join(repaired)
    return raw if block == raw[:cut] else block + raw[cut:]


# ---------------------------------------------------------------------------------------------
# What the headers say.

_TRACE = {"received", "return-path", "delivered-to", "x-original-to", "envelope-to"}
_ID_FIELDS = ("from", "sender", "reply-to", "to", "cc", "date", "subject", "in-reply-to",
              "references", "content-type")  # fmt: skip
_AUTO_TOKENS = {
    "Precedence": ("AUTO_REPLY", "BULK", "JUNK", "LIST"),
    "X-Precedence": ("AUTO_REPLY", "BULK", "JUNK", "LIST"),
    "X-Autoreply": ("YES",),
    "X-Autogenerated": ("REPLY",),
    "X-Amazon-Mail-Relay-Type": ("NOTIFICATION",),
}
_AUTO_PRESENCE = ("X-Autorespond", "X-Autoresponse", "X-Autoreply-From", "X-Mail-Autoreply")
_VACATION = re.compile(
    r"(out of office|auto: |automatic reply|autoreply|abwesenheitsnotiz|vacation)", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"(delivery failure|delivery status|undeliverable:|undelivered mail returned)", re.IGNORECASE
)
_PRIORITY_WORDS = {
    "high": "high", "highest": "high", "urgent": "high", "h": "high", "u": "high",
    "normal": "normal", "medium": "normal", "n": "normal",
    "low": "low", "lowest": "low", "non-urgent": "low", "l": "low",
}  # fmt: skip
_PRIORITY_DIGITS = {"1": "high", "2": "high", "3": "normal", "4": "low", "5": "low"}


@dataclass
class _Envelope:
    headers: dict[str, str]
    raw: dict[str, list[str]]  # canonical name -> raw values, every occurrence
    charset: str | None  # the message's declared charset: the best guess for raw 8-bit headers
    defects: list[str]

    def first(self, name: str) -> str | None:
        values = self.raw.get(name)
        return values[0] if values else None

    def mailboxes(self, *names: str) -> list[Mailbox]:
        raw = [value for name in names for value in self.raw.get(name, ())]
        return _mailboxes(raw, self.charset, self.defects)


def _envelope(message: Message, defects: list[str]) -> _Envelope:
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        raw.setdefault(canonical_header_name(name), []).append(str(value))
    content_type = _fix_8bit(_unfold(raw.get("Content-Type", [""])[0]), None, defects)
    charset = _parameters(content_type, defects)[1].get("charset")
    charset = charset if charset and _codec(charset) not in (None, "ascii", "utf-8") else None
    headers = {name: _header_text(values[0], charset, defects) for name, values in raw.items()}
    return _Envelope(headers, raw, charset, defects)


def _synthetic_message_id(message: Message, raw: bytes) -> str:
    """Deterministic, so a redelivered copy dedupes: the originator's fields plus the body, not
    the trace fields each delivery adds (Received, Delivered-To, ...)."""
    items = [(k, v) for k, v in message.raw_items() if k.lower() not in _TRACE]
    chosen = [(k, v) for k, v in items if k.lower() in _ID_FIELDS] or items
    digest = hashlib.sha256()
    for name, value in chosen:
        digest.update(
            f"{name.lower()}:{_unfold(str(value)).strip()}\n".encode("utf-8", "surrogateescape")
        )
    end = _HEADER_END.search(raw)
    digest.update(b"\n" + (raw[end.end() :] if end else b""))
    return f"<{digest.hexdigest()[:32]}@deskstream.local>"


def _priority(envelope: _Envelope) -> str | None:
    for name in ("X-Priority", "Priority", "Importance"):
        value = envelope.headers.get(name, "").strip().lower()
        if not value:
            continue
        if value[0] in _PRIORITY_DIGITS:
            return _PRIORITY_DIGITS[value[0]]
        word = _PRIORITY_WORDS.get(value.split()[0].strip("(),;"))
        if word:
            return word
    return None


def _auto_reply_headers(headers: dict[str, str], subject: str) -> bool:
    submitted = headers.get("Auto-Submitted", "").strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    for name, tokens in _AUTO_TOKENS.items():
        if headers.get(name, "").strip().upper().startswith(tokens):
            return True
    return any(name in headers for name in _AUTO_PRESENCE) or bool(_VACATION.match(subject))


def _bounce_headers(headers: dict[str, str], subject: str) -> bool:
    sender = headers.get("From", "").lower()
    content_type = re.sub(r'[\s"]', "", headers.get("Content-Type", "")).lower()
    return (
        "mailer-daemon" in sender
        or "<>" in sender
        or "postmaster@" in sender
        or bool(_BOUNCE_SUBJECT.match(subject))
        or headers.get("Return-Path", "").strip() == "<>"
        or "report-type=delivery-status" in content_type
        or "@" in headers.get("X-Failed-Recipients", "")
    )


# ---------------------------------------------------------------------------------------------
# The body and the attachments: one walk over the MIME tree.

_CID_REFERENCE = re.compile(r"""cid:([^\s"'<>)]+)""", re.IGNORECASE)
_HEAD_START = re.compile(r"<head[\s>]", re.IGNORECASE)
_ORIGINAL = "original-message-id"  # the field of a read receipt naming what was read
_IDENTITY_ENCODINGS = {"", "7bit", "8bit", "binary", "7", "8", "none", "plain", "text"}


@dataclass
class _Segment:
    """One piece of body: its plain text, its (sanitised) HTML, or both (an alternative)."""

    plain: str | None = None
    html: str | None = None


@dataclass
class _Content:
    body: str
    body_html: str | None
    attachments: list[MailAttachment]
    refused: list[RefusedAttachment]
    delivery_actions: list[str] = field(default_factory=list)  # DSN "Action:" values
    original_ids: list[str] = field(default_factory=list)  # ids of the message a DSN returns
    cut: list[str] = field(default_factory=list)  # what the content limits left out
    receipt: bool = False  # a read receipt (disposition notification)


class _Walk:
    def __init__(
        self, charset: str | None, limit: int, limits: MimeLimits, defects: list[str]
    ) -> None:
        self.charset = charset
        self.limit = limit
        self.limits = limits
        self.defects = defects
        self.cut: list[str] = []  # what the content limits left out: a note on the ticket
        self.receipt = False  # a message/disposition-notification part: a read receipt
        self.attachments: list[MailAttachment] = []
        self.refused: list[RefusedAttachment] = []
        self.raw_html: list[str] = []  # before sanitising: what cid: URLs it references
        self.actions: list[str] = []
        self.report_text: list[str] = []  # prose a broken DSN put in its delivery-status part
        self.summary: list[str] = []  # "who: action (status)", for a DSN without any prose
        self.originals: list[list[tuple[str, str]]] = []  # headers of attached messages
        self.generated = 0

    def content(self, message: Message) -> _Content:
        segments = self.part(message, 0, in_alternative=False, wrapper=True)
        body = _as_plain(segments) or "\n\n".join(self.report_text) or "\n".join(self.summary)
        has_html = any(segment.html is not None for segment in segments)
        body_html = _as_html(segments).strip() if has_html else ""
        cids = {
            urllib.parse.unquote(c).lower()
            for text in self.raw_html
            for c in _CID_REFERENCE.findall(text)
        }
        attachments = [
            replace(a, inline=a.content_id.lower() in cids) if a.content_id else a
            for a in self.attachments
        ]
        originals = [i for headers in self.originals for i in _original_ids(headers)]
        return _Content(
            _clean(body),
            _clean(body_html) or None,
            attachments,
            self.refused,
            self.actions,
            list(dict.fromkeys(originals)),
            self.cut,
            self.receipt,
        )

    def part(
        self, part: Message, depth: int, *, in_alternative: bool, wrapper: bool = False
    ) -> list[_Segment]:
        if depth > self.limits.max_depth:
            return self.flat(part)
        content_type = part.get_content_type()
        maintype = content_type.split("/", 1)[0]
        payload = part.get_payload() if part.is_multipart() else getattr(part, "_payload", "")
        if maintype == "multipart" and isinstance(payload, str):
            recovered = self.recover_boundary(part, content_type, payload)
            if recovered is not None:
                _note(self.defects, "a multipart boundary the stdlib misread was recovered")
                return self.part(recovered, depth + 1, in_alternative=in_alternative)
        for defect in part.defects:
            _note(self.defects, _describe(defect))
        if content_type == "message/delivery-status":
            self.delivery_status(payload)
            return []
        if content_type == "message/disposition-notification":
            self.disposition_notification(payload)
            return []
        if maintype == "message" and isinstance(payload, list) and payload:
            inner = payload[0]
            if isinstance(inner, Message):
                self.originals.append([(str(k), str(v)) for k, v in inner.raw_items()])
                subject = _header_text(self.header(inner, "subject"), self.charset, self.defects)
                params = self.parameters(part, "content-disposition")[1]
                named = _filename(params, self.parameters(part, "content-type")[1])
                self.attach(
                    part,
                    _serialise(inner, self.defects),
                    content_type,
                    named or f"{subject or 'message'}.eml",
                )
                if wrapper:  # the whole mail wraps a message: its text is the body
                    shown = self.part(inner, depth + 1, in_alternative=False, wrapper=depth < 2)
                    return [self.forwarded_head(inner), *shown]
            return []
        if isinstance(payload, list):
            children = [child for child in payload if isinstance(child, Message)]
            if content_type == "multipart/alternative":
                return self.alternative(children, depth)
            segments: list[_Segment] = []
            for child in children:
                segments += self.part(child, depth + 1, in_alternative=in_alternative)
            return segments
        return self.leaf(part, content_type, in_alternative=in_alternative)

    def flat(self, top: Message) -> list[_Segment]:
        """Parts nested deeper than the walk recurses, read one after another (a loop, not
        recursion, so no depth costs a stack frame): their text stays in the body."""
        depth = self.limits.max_depth
        self.cut_note(f"MIME parts nested deeper than {depth} levels are shown one after another")
        segments: list[_Segment] = []
        stack = [top]
        while stack:
            part = stack.pop()
            children = part.get_payload() if part.is_multipart() else None
            if isinstance(children, list) and part.get_content_maintype() == "multipart":
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            else:
                segments += self.part(part, depth, in_alternative=False)
        return segments

    def forwarded_head(self, inner: Message) -> _Segment:
        lines = ["---------- Forwarded message ----------"]
        for name in ("From", "Date", "Subject", "To"):
            value = _header_text(self.header(inner, name.lower()), self.charset, self.defects)
            if value:
                lines.append(f"{name}: {value}")
        return _Segment(plain="\n".join(lines))

    def cut_note(self, text: str) -> None:
        if text not in self.cut:
            self.cut.append(text)

    def recover_boundary(self, part: Message, content_type: str, payload: str) -> Message | None:
        """`boundary=----=_NextPart...` unquoted: Python stops at the `=`, mail clients do not."""
        boundary = self.parameters(part, "content-type")[1].get("boundary")
        if not boundary or '"' in boundary or boundary == part.get_boundary():
            return None
        if f"--{boundary}" not in payload:
            return None
        head = f'Content-Type: {content_type}; boundary="{boundary}"\r\n\r\n'
        rebuilt = _PARSER.parsebytes((head + payload).encode("utf-8", "surrogateescape"))
        return rebuilt if rebuilt.is_multipart() else None

    def alternative(self, children: list[Message], depth: int) -> list[_Segment]:
        # Each alternative renders the same message: plain text from the first that has it,
        # HTML from the last (the richest, RFC 2046); attachments from all of them.
        walked = [self.part(child, depth + 1, in_alternative=True) for child in children]
        plain = next((s for s in walked if any(x.plain is not None for x in s)), None)
        rich = next((s for s in reversed(walked) if any(x.html is not None for x in s)), None)
        if plain is None and rich is None:
            return []
        return [
            _Segment(
                plain=None if plain is None else _as_plain(plain),
                html=None if rich is None else _as_html(rich),
            )
        ]

    def leaf(self, part: Message, content_type: str, *, in_alternative: bool) -> list[_Segment]:
        disposition, disposition_params = self.parameters(part, "content-disposition")
        if disposition not in ("", "inline", "attachment"):
            _note(self.defects, f"unrecognised Content-Disposition {disposition!r} ignored")
            disposition = ""
        type_params = self.parameters(part, "content-type")[1]
        filename = _filename(disposition_params, type_params)
        data = self.payload(part)
        if content_type == "text/rfc822-headers":  # a DSN's copy of the returned message's head
            headers = _headers_only(data)
            self.originals.append([(str(k), str(v)) for k, v in headers.raw_items()])
            return []
        maintype = content_type.split("/", 1)[0]
        if maintype == "multipart":  # a multipart whose boundary never appears: read it as text
            content_type = "text/plain"
        if (
            content_type in ("text/plain", "text/html")
            and not filename
            and disposition != "attachment"
        ):
            text = _decode(data, type_params.get("charset"), self.defects)
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if content_type == "text/html":
                self.raw_html.append(text)
                return [self.html(text)]
            if type_params.get("format", "").lower() == "flowed":
                text = _unflow(text, delsp=type_params.get("delsp", "").lower() == "yes")
            return [_Segment(plain=text)]
        if in_alternative and maintype == "text" and not filename:
            return []  # text/enriched and friends: another rendering of the body
        location = _basename(self.header(part, "content-location"))
        self.attach(part, data, content_type, filename or location)
        return []

    def html(self, text: str) -> _Segment:
        """Sanitised HTML; as text when it is too large or too deep to sanitise in bounded
        time (the sanitiser's cost grows with size times depth)."""
        limits = self.limits
        if len(text) > limits.max_html_bytes:
            self.cut_note(f"an HTML part over {limits.max_html_bytes} characters is shown as text")
        elif html_depth(text, limits.max_html_depth) > limits.max_html_depth:
            self.cut_note(f"HTML nested over {limits.max_html_depth} levels is shown as text")
        else:
            return _Segment(html=sanitize_html(_without_head(text)))
        return _Segment(plain=html_to_text(_without_head(text)))

    def parameters(self, part: Message, name: str) -> tuple[str, dict[str, str]]:
        return _parameters(self.header(part, name), self.defects)

    def attach(self, part: Message, data: bytes, content_type: str, filename: str) -> None:
        content_id = _clean(self.header(part, "content-id").strip().strip("<>").strip()) or None
        maintype, _, subtype = content_type.partition("/")
        filename = _safe_filename(filename)
        if not filename:
            self.generated += 1
            prefix = "image" if maintype == "image" and content_id else "attachment"
            extension = subtype if re.fullmatch(r"[a-z0-9]{1,8}", subtype) else "bin"
            filename = f"{prefix}-{self.generated}.{extension}"
        if len(data) > self.limit:
            self.refused.append(_refused(filename, content_type, len(data), self.limit))
        else:
            self.attachments.append(MailAttachment(filename, content_type, data, content_id))

    def delivery_status(self, payload: object) -> None:
        for block in payload if isinstance(payload, list) else []:
            if not isinstance(block, Message):
                continue
            fields = {canonical_header_name(k): str(v) for k, v in block.raw_items()}
            if "Action" in fields:
                action = _collapse(fields["Action"]).lower()
                self.actions.append(action)
                who = fields.get("Final-Recipient", "").split(";")[-1]
                self.summary.append(_collapse(f"{who}: {action} ({fields.get('Status', '')})"))
            text = getattr(block, "_payload", "")
            if not fields and isinstance(text, str) and text.strip():  # prose in the wrong part
                prose = _decode(text.encode("utf-8", "surrogateescape"), None, self.defects)
                self.report_text.append(prose.replace("\r\n", "\n").strip())

    def disposition_notification(self, payload: object) -> None:
        """A read receipt (RFC 8098): remember the original's Message-ID, keep no file."""
        self.receipt = True
        if isinstance(payload, list):  # the stdlib reads its fields as a message's headers
            blocks = [block for block in payload if isinstance(block, Message)]
        else:
            text = payload if isinstance(payload, str) else ""
            blocks = [_headers_only(text.encode("utf-8", "surrogateescape"))]
        for block in blocks:
            self.originals.append(
                [("Message-Id", str(v)) for k, v in block.raw_items() if k.lower() == _ORIGINAL]
            )

    def header(self, part: Message, name: str) -> str:
        for key, value in part.raw_items():
            if key.lower() == name:
                return _fix_8bit(_unfold(str(value)), self.charset, self.defects)
        return ""

    def payload(self, part: Message) -> bytes:
        """The part's content, transfer-decoded once; lenient with broken encodings."""
        # The stored payload, not get_payload(): that re-decodes raw 8-bit text with the declared
        # charset, "replace"-ing what does not fit before we could try anything better.
        payload = getattr(part, "_payload", "")
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        declared = self.header(part, "content-transfer-encoding").split(";")[0]
        encoding = re.sub(r"[\s_-]", "", declared).lower()
        if encoding == "base64":
            try:
                return binascii.a2b_base64(data)
            except binascii.Error:
                _note(self.defects, "invalid base64 was decoded as far as possible")
                return _word_bytes("b", data.decode("ascii", "replace"))
        if encoding in ("quotedprintable", "qp"):
            return binascii.a2b_qp(data)
        if encoding in ("xuuencode", "uuencode", "uue", "xuue"):
            return _uudecode(data)
        if encoding not in _IDENTITY_ENCODINGS:
            _note(self.defects, f"unknown Content-Transfer-Encoding {declared!r}: read as is")
        return data


def _without_head(markup: str) -> str:
    """The HTML minus its <head>: nh3 keeps the text of <title>, which is not body text."""
    start = _HEAD_START.search(markup)
    end = markup.lower().find("</head>", start.start()) if start else -1
    return markup[: start.start()] + markup[end + 7 :] if start and end >= 0 else markup


def _as_plain(segments: list[_Segment]) -> str:
    texts = [
        segment.plain if segment.plain is not None else html_to_text(segment.html or "")
        for segment in segments
    ]
    return "\n\n".join(text.strip("\n") for text in texts if text.strip())


def _as_html(segments: list[_Segment]) -> str:
    return "\n".join(
        segment.html
        if segment.html is not None
        else "<p>" + html.escape(segment.plain or "").replace("\n", "<br>\n") + "</p>"
        for segment in segments
        if (segment.html if segment.html is not None else segment.plain or "").strip()
    )


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: soft line breaks (a trailing space) join, quote depth kept."""
    out: list[str] = []
    paragraph: list[str] = []
    depth = -1
    for line in text.split("\n"):
        quotes = len(line) - len(line.lstrip(">"))
        content = line[quotes:]
        content = content[1:] if content.startswith(" ") else content  # space-stuffing
        flowed = content.endswith(" ") and content != "-- "
        if paragraph and quotes != depth:  # a change of quote depth ends a paragraph
            out.append(_quoted(depth, "".join(paragraph)))
            paragraph = []
        depth = quotes
        paragraph.append(content[:-1] if flowed and delsp else content)
        if not flowed:
            out.append(_quoted(depth, "".join(paragraph)))
            paragraph = []
    if paragraph:
        out.append(_quoted(depth, "".join(paragraph)))
    return "\n".join(out)


def _quoted(depth: int, content: str) -> str:
    return (">" * depth + " " + content) if depth else content


def _uudecode(data: bytes) -> bytes:
    out = bytearray()
    inside = False
    for line in data.splitlines():
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`", b""):
            if line.strip() == b"end":
                break
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:  # the encoders that pad lines wrongly (the stdlib's workaround)
            length = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out += binascii.a2b_uu(line[:length])
            except binascii.Error:
                continue
    return bytes(out)


def _serialise(message: Message, defects: list[str]) -> bytes:
    """An attached message back to bytes, its headers as received (the parser keeps no offsets)."""
    buffer = io.BytesIO()
    try:
        if isinstance(message, EmailMessage):
            BytesGenerator(buffer, mangle_from_=False, policy=_VERBATIM).flatten(message)
            return buffer.getvalue()
    except Exception:  # a nested message too broken to write back out: kept as far as it went
        pass
    _note(defects, "an attached message could not be re-serialised exactly")
    return buffer.getvalue()


def _filename(disposition: dict[str, str], content_type: dict[str, str]) -> str:
    """osTicket's order: the disposition's filename (RFC 2231 too), then the type's name."""
    return _safe_filename(disposition.get("filename") or content_type.get("name") or "")


def _basename(location: str) -> str:
    path = urllib.parse.urlsplit(location.strip()).path if location.strip() else ""
    return path.rsplit("/", 1)[-1]


def _original_ids(items: list[tuple[str, str]]) -> list[str]:
    """The bounced message's ids, most specific first: its Message-ID, what it replied to, then
    its References newest first."""
    by_name: dict[str, list[str]] = {}
    for name, value in items:
        by_name.setdefault(canonical_header_name(name), []).append(value)
    ids = [_message_id(value) for value in by_name.get("Message-Id", [])[:1]]
    ids += _id_tokens(by_name.get("In-Reply-To", []))
    ids += list(reversed(_id_tokens(by_name.get("References", []))))
    return [i for i in ids if i]


def _describe(defect: Exception) -> str:
    text = {
        "StartBoundaryNotFoundDefect": "multipart boundary never found: body read as text",
        "CloseBoundaryNotFoundDefect": "multipart not closed: read to the end",
        "MissingHeaderBodySeparatorDefect": "no blank line after the headers",
        "MultipartInvariantViolationDefect": "multipart without parts",
        "NoBoundaryInMultipartDefect": "multipart without a boundary: body read as text",
    }.get(type(defect).__name__)
    return text or f"{type(defect).__name__}: {defect}"[:200]


# ---------------------------------------------------------------------------------------------
# The whole message.


def parse_email(
    raw: bytes, *, max_attachment_bytes: int, limits: MimeLimits | None = None
) -> ParsedEmail:
    """Raw RFC 822 bytes -> ParsedEmail; `Unparseable` when they are not an email with a sender."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise Unparseable("the message is not bytes")
    raw = bytes(raw)
    try:
        return _parse(raw, max_attachment_bytes, limits or MimeLimits())
    except Unparseable:
        raise
    except Exception as exc:  # the last line of defence: a refusal with a reason, never a crash
        raise Unparseable(f"unreadable message ({type(exc).__name__}: {exc})"[:300]) from None


def _parse(raw: bytes, limit: int, limits: MimeLimits) -> ParsedEmail:
    defects: list[str] = []
    repaired = _repair_header_block(raw, defects)
    # Python's MIME parser is superlinear in the number of parts: it reads no more than the cap.
    repaired, parts = cut_parts(repaired, limits.max_parts)
    failure: Exception | None = None
    try:
        if _CONTENT_TYPE.search(repaired):  # the stdlib reads these in quadratic time
            raise ValueError(f"a Content-Type header longer than {_MAX_CONTENT_TYPE} bytes")
        message: Message = _PARSER.parsebytes(repaired)
    except Exception as exc:  # structure the stdlib cannot walk: keep the headers, say why
        failure = exc
        message = _headers_only(repaired)
    if not list(message.raw_items()):
        raise Unparseable("no email headers found")

    # Identity, threading and the ban list read only this message's own headers, the ones its
    # MTA saw: a message it wraps (message/rfc822 at the top) is content (RELIABILITY S6).
    envelope = _envelope(message, defects)
    senders = envelope.mailboxes("From")
    if not senders:
        raise Unparseable("no valid sender address in From")
    subject = envelope.headers.get("Subject", "") or _wrapped_subject(message, defects)
    message_id = _message_id(envelope.first("Message-Id")) or _synthetic_message_id(message, raw)

    content: _Content | None = None
    if failure is None:
        try:
            content = _Walk(envelope.charset, limit, limits, defects).content(message)
        except Exception as exc:  # a decoder or the stdlib tripped: osTicket's attachOnParseError
            failure = exc
    if content is None:
        content = _parse_failed(raw, failure, limit, defects)
    if parts:
        content.cut.insert(0, f"{parts} MIME parts: only the first {limits.max_parts} were read")
    if content.cut:  # what was left out stays available: the message as received
        _keep_original(raw, limit, content)

    headers = envelope.headers
    receipt = (
        content.receipt
        or "report-type=disposition-notification"
        in re.sub(r'[\s"]', "", headers.get("Content-Type", "")).lower()
    )
    dsn = bool(content.delivery_actions) or receipt
    bounce = "failed" in content.delivery_actions if dsn else _bounce_headers(headers, subject)
    auto_reply = dsn or _auto_reply_headers(headers, subject)
    bounced_ids: list[str] = []
    if bounce or dsn:  # a bounce without a structured report often quotes the original's headers
        quoted = (_message_id(i) for i in _QUOTED_MESSAGE_ID.findall(content.body))
        bounced_ids = content.original_ids or list(dict.fromkeys(i for i in quoted if i))
    if receipt and not bounced_ids:  # a receipt names its original as the message it answers
        bounced_ids = [*_reply_ids(envelope, "In-Reply-To"), *_reply_ids(envelope, "References")]
    return ParsedEmail(
        message_id=_clean(message_id),
        subject=subject,
        sender=senders[0],
        body=content.body,
        body_html=content.body_html,
        reply_to=next(iter(envelope.mailboxes("Reply-To")), None),
        to=tuple(envelope.mailboxes("To")),
        cc=tuple(envelope.mailboxes("Cc")),
        delivered_to=tuple(envelope.mailboxes("Delivered-To")),
        in_reply_to=_reply_ids(envelope, "In-Reply-To"),
        references=_reply_ids(envelope, "References"),
        headers=headers,
        attachments=tuple(content.attachments),
        refused_attachments=tuple(content.refused),
        priority=_priority(envelope),
        auto_reply=auto_reply,
        bounce=bounce,
        delivery_report=dsn or bounce,
        bounced_message_ids=tuple(_clean(i) for i in bounced_ids),
        read_receipt=receipt,
        cut=tuple(content.cut),
        defects=tuple(defects),
    )


def _headers_only(raw: bytes) -> Message:
    # Even headers-only, the stdlib reads Content-Type, and can trip on it (or take minutes);
    # compat32 reads just its first word.
    return _LEGACY_PARSER.parsebytes(raw, headersonly=True)


def _wrapped_subject(message: Message, defects: list[str]) -> str:
    """A wrapper without a Subject of its own is shown with the one of the message it wraps."""
    try:
        payload = message.get_payload() if message.get_content_maintype() == "message" else None
    except Exception:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return _envelope(payload[0], defects).headers.get("Subject", "") or _NO_SUBJECT
    return _NO_SUBJECT


def _keep_original(raw: bytes, limit: int, content: _Content) -> None:
    name = "original-message.eml"
    if len(raw) <= limit:
        content.attachments.append(MailAttachment(name, "message/rfc822", raw))
    else:
        content.refused.append(_refused(name, "message/rfc822", len(raw), limit))


def _parse_failed(
    raw: bytes, failure: Exception | None, limit: int, defects: list[str]
) -> _Content:
    reason = f"{type(failure).__name__}: {failure}"[:200] if failure else "unknown error"
    _note(defects, f"body unreadable ({reason}): the raw message is attached")
    attachments, refused = [], []
    if len(raw) <= limit:
        attachments.append(MailAttachment("message.eml", "message/rfc822", raw))
    else:
        refused.append(_refused("message.eml", "message/rfc822", len(raw), limit))
    return _Content(_clean(f"Email parse failed: {reason}"), None, attachments, refused)


def _refused(filename: str, content_type: str, size: int, limit: int) -> RefusedAttachment:
    return RefusedAttachment(filename, content_type, size, f"larger than the {limit}-byte limit")
