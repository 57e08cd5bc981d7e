"""The shared email corpus, each message given a fresh Message-ID per use so that none is a
duplicate of an earlier run (a duplicate is answered without a commit, and would flatter us).

The Message-ID is rewritten on the bytes, never by re-serialising the message: the broken,
oddly encoded messages must reach the parser exactly as they are, apart from that one header.
"""

from __future__ import annotations

import re
import uuid
from email.parser import BytesHeaderParser
from pathlib import Path

from tests.support.mail import CORPUS

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# The whole header, with its folded continuation lines; the name may be followed by blanks.
_MESSAGE_ID = re.compile(rb"(?im)^(message-id[ \t]*:)[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")
# An mbox envelope line ("From sender date"), which is not a header: a new header goes after it.
_ENVELOPE = re.compile(rb"From [^\s:][^\r\n]*\r?\n")


def load_corpus(root: Path = CORPUS) -> list[tuple[str, bytes]]:
    """(path relative to the corpus, raw bytes) of every email in it (*.eml; the LICENSE and
    the empty sample_output_multipart are not emails)."""
    files = sorted(root.rglob("*.eml"))
    if not files:
        raise RuntimeError(f"no *.eml files under {root}")
    return [(str(path.relative_to(root)), path.read_bytes()) for path in files]


def fresh_message_id(tag: str) -> str:
    return f"<bench-{tag}-{uuid.uuid4().hex}@mail.bench.invalid>"


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """`raw` with its top-level Message-ID header(s) set to `message_id`, or one added at the
    top of the header block (after an mbox envelope line) when it has none.

    Where a header block ends is itself a matter of parsing: a malformed line ends it early for
    Python's parser, and "Message-ID  :" (RFC 2822's obsolete syntax) is no header to it. So
    every Message-ID up to the first blank line is rewritten, and when Python's parser still
    does not see the new one, it is also added at the top: whichever reading the intake's
    parser takes, the id it finds is fresh."""
    end = _HEADER_END.search(raw)
    split = end.start() if end else len(raw)
    head, rest = raw[:split], raw[split:]
    value = b" " + message_id.encode("ascii")
    head, replaced = _MESSAGE_ID.subn(lambda m: m.group(1) + value, head)
    raw = head + rest
    if replaced and _seen_message_id(raw) == message_id:
        return raw
    newline = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    header = b"Message-ID:" + value + newline
    envelope = _ENVELOPE.match(raw)
    at = envelope.end() if envelope else 0
    return raw[:at] + header + raw[at:]


def _seen_message_id(raw: bytes) -> str | None:
    found = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    return str(found).strip() if found is not None else None


def fresh_corpus(corpus: list[tuple[str, bytes]], tag: str) -> list[tuple[str, bytes]]:
    """The corpus again, every message with a Message-ID never used before."""
    return [(name, with_message_id(raw, fresh_message_id(tag))) for name, raw in corpus]
