"""Header values of outgoing mail (RELIABILITY.md S5): plain text in, encoded words out.

Every value taken from a ticket, an event or the settings passes `header_text` (the one rule:
no control or line-breaking character, bounded length) and is then written by this module as
RFC 2047 encoded words where needed. It is never handed to `email`'s header parser: that parser
decodes encoded words, so `=?utf-8?b?...?=` hiding CR/LF would become new header lines (a Bcc:,
a blank line and a body of the sender's choosing). A value that merely *looks* like an encoded
word is itself encoded, so a reader decodes it back to the literal text.

Addresses are not text: a recipient is one plain addr-spec (`safe_address`) or nothing is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.base64mime import header_encode
from email.policy import Policy

TEXT_LIMIT = 255  # characters of one header value (tickets.subject is 255)
_LINE_WIDTH = 78  # RFC 5322's "SHOULD"; no token we write is longer than this on its own
_EW_PAYLOAD_BYTES = 45  # base64 of 45 bytes + "=?utf-8?b??=" is 72: under RFC 2047's 75

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls and DEL. Whitespace among them (CR, LF, TAB, NEL...) and the Unicode line
# and paragraph separators are handled first, by str.split(), as word breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# A word a header may carry as it is: printable ASCII, and in a display name only RFC 5322
# atext (no specials that would start a quoted string, a comment or another address).
_UNSTRUCTURED_WORD = re.compile(r"[!-~]{1,77}")
_PHRASE_WORD = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,77}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_MSG_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*>")
_ADDRESS_LIMIT = 254  # RFC 5321's path limit


class UnsafeAddress(ValueError):
    """Not one plain addr-spec: no mail goes to (or claims to come from) it."""


def header_text(value: str | None, limit: int = TEXT_LIMIT) -> str:
    """The header-safety rule: `value` as one line of plain text that any header may carry.

    Line breaks, tabs and every other whitespace (U+2028/U+2029 included) become one space;
    other controls (NUL, ESC, C1) are dropped; lone surrogates become U+FFFD; at most `limit`
    characters, an ellipsis marking a cut. Idempotent."""
    text = _SURROGATE.sub("\ufffd", value or "")
    text = _CONTROL.sub("", " ".join(text.split()))
    text = " ".join(text.split())  # a dropped control may have joined two spaces
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text


def safe_address(address: str) -> str:
    """`address` as one plain addr-spec (dot-atom local part, host name domain in ASCII, an
    internationalised domain as punycode), or UnsafeAddress. No display name, no list, no
    quoted local part, no comment, no encoded word: nothing a reader could take for a second
    recipient."""
    local, at, domain = address.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeAddress(f"{address!r} has no valid domain") from exc
    if (
        not at
        or "=?" in local
        or not _LOCAL_PART.fullmatch(local)
        or not _DOMAIN.fullmatch(domain)
        or len(local) + 1 + len(domain) > _ADDRESS_LIMIT
    ):
        raise UnsafeAddress(f"{address!r} is not a single plain email address")
    return f"{local}@{domain}"


class EncodedHeader(str):
    """A custom header object as `email.policy.EmailPolicy` defines one (a `name` and a
    `fold(policy=)`): the message stores it unparsed and writes exactly these tokens.
    As a string it is the plain text (what `message["Subject"]` reads back)."""

    name: str
    tokens: tuple[str, ...]

    def __new__(cls, name: str, text: str, tokens: Sequence[str]) -> EncodedHeader:
        header = super().__new__(cls, text)
        header.name = name
        header.tokens = tuple(tokens)
        return header

    def fold(self, *, policy: Policy) -> str:
        """Tokens joined by one space, a line broken before a token that would pass the width
        (unfolding restores the single space, so the value reads back unchanged)."""
        lines = [f"{self.name}:"]
        for token in self.tokens:
            if len(lines[-1]) + 1 + len(token) > _LINE_WIDTH and lines[-1] != f"{self.name}:":
                lines.append(" " + token)
            else:
                lines[-1] += " " + token
        return policy.linesep.join(lines) + policy.linesep


def unstructured(name: str, value: str | None) -> EncodedHeader:
    """Subject and other free text."""
    text = header_text(value)
    return EncodedHeader(name, text, _words(text, _UNSTRUCTURED_WORD))


def mailbox(name: str, display_name: str | None, address: str) -> EncodedHeader:
    """From/To: an optional display name (encoded words unless plain atoms) and one address."""
    addr_spec = safe_address(address)
    display = header_text(display_name)
    tokens = _words(display, _PHRASE_WORD)
    if not tokens:
        return EncodedHeader(name, addr_spec, [addr_spec])
    return EncodedHeader(name, f"{display} <{addr_spec}>", [*tokens, f"<{addr_spec}>"])


def identifier(name: str, msg_id: str) -> EncodedHeader:
    """Message-ID (and In-Reply-To/References of one id): `<dot-atom@host>` or ValueError."""
    if not _MSG_ID.fullmatch(msg_id):
        raise ValueError(f"{name} {msg_id!r} is not a plain <local@domain> message id")
    return EncodedHeader(name, msg_id, [msg_id])


def _words(text: str, plain: re.Pattern[str]) -> list[str]:
    """`text` as header tokens: a word `plain` accepts (and that holds no `=?`) as it is, each
    run of other words as encoded words. Between adjacent encoded words a reader drops the
    whitespace, so a run's own spaces travel inside the encoding."""
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" ") if text else []:
        if plain.fullmatch(word) and "=?" not in word:
            if run:
                tokens += _encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return tokens


def _encoded_words(text: str) -> list[str]:
    """UTF-8 base64 encoded words, each whole characters (RFC 2047 section 5) and short."""
    words: list[str] = []
    chunk = ""
    for character in text:
        if len((chunk + character).encode()) > _EW_PAYLOAD_BYTES:
            words.append(header_encode(chunk, charset="utf-8"))
            chunk = ""
        chunk += character
    if chunk:
        words.append(header_encode(chunk, charset="utf-8"))
    return words
