"""Cleaning text every intake channel stores: one rule for mail, JSON, XML and the v1 API.

A filename from any channel is stored as the mail path stores it: no path, no control or
bidirectional-override characters (an RLO turns `exe.txt` into what looks like `txt.exe`),
no NUL or lone surrogate (PostgreSQL and UTF-8 cannot hold them), at most 255 characters.
"""

from __future__ import annotations

import re

from libs.events.types.fields import FILENAME_LENGTH

_WHITESPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls, DEL, and the Unicode bidi embeddings, overrides, isolates and marks.
_UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def collapse(text: str) -> str:
    """Runs of whitespace as one space, trimmed."""
    return _WHITESPACE.sub(" ", text).strip()


def clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def safe_filename(name: str) -> str:
    """The last path segment, without controls or bidi characters, at most 255 characters
    (an extension is kept when the name is cut). May be empty: the caller names it then."""
    name = clean(_UNSAFE_IN_NAMES.sub("", name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = collapse(name).strip(". ")
    if len(name) > FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        name = (
            (stem[: FILENAME_LENGTH - 1 - len(extension)] + dot + extension)
            if dot and len(extension) < 16
            else name[:FILENAME_LENGTH]
        )
    return name
