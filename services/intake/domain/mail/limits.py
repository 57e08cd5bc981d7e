"""Caps that bound the CPU one message can cost, whatever its bytes (RELIABILITY S3).

Python's MIME parser is superlinear in the number of parts, and the HTML sanitiser in the depth
of the markup: a 2 MB message of 200,000 nested `<div>`s cost minutes. So the raw message is
cut before the part that would exceed `max_parts`, and HTML too large or too deep is shown as
text instead of sanitised. Each scan here is one linear pass. What a cap cut is reported in
`ParsedEmail.cut`: the ticket gets a note and the raw message as an attachment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MimeLimits:
    max_parts: int = 1000  # boundary lines, and Content-Type headers, per message
    max_depth: int = 32  # MIME nesting walked as a tree; deeper parts are read flat
    max_html_bytes: int = 2 * 1024 * 1024  # per HTML part, before sanitising
    max_html_depth: int = 256  # element nesting, before sanitising


# Where a MIME entity can start: a boundary line, or a Content-Type header.
_ENTITY_MARK = re.compile(rb"(?im)^(?:(--)|content-type[ \t]*:)")


def cut_parts(raw: bytes, max_parts: int) -> tuple[bytes, int]:
    """`raw` up to the line that would make more than `max_parts` boundary lines or
    Content-Type headers, and how many there were in all (0 when nothing was cut)."""
    boundaries = types = 0
    cut_at = None
    for mark in _ENTITY_MARK.finditer(raw):
        if mark[1]:
            boundaries += 1
        else:
            types += 1
        if cut_at is None and max(boundaries, types) > max_parts:
            cut_at = mark.start()
    if cut_at is None:
        return raw, 0
    return raw[:cut_at], max(boundaries, types)


# `[^<>]*` (not `[^>]*`): a `<` never followed by `>` must not make the scan quadratic.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)[^<>]*>")
# Elements that never hold others, or that the HTML parser closes by itself when the next
# sibling starts: an unclosed one does not make the tree deeper.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}  # fmt: skip
_FLAT = frozenset(_VOID | {"p", "li", "dt", "dd", "tr", "td", "th", "option"})


def html_depth(markup: str, ceiling: int) -> int:
    """How deeply the elements of `markup` nest, counted until it passes `ceiling`."""
    depth = deepest = 0
    for tag in _TAG.finditer(markup):
        name = tag[2].lower()
        if name in _FLAT or tag[0].endswith("/>"):
            continue
        if tag[1]:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > ceiling:
                break
    return deepest
