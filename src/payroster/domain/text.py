"""Text no door can accept: NUL, which PostgreSQL's text cannot hold (SQLite can, so the two would differ), and
unpaired surrogates, which JSON's ``\\u`` escapes can write (a pair is decoded as the one character it stands for)
but no encoder can write back out."""

from __future__ import annotations

import re

UNUSABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "NUL characters and unpaired surrogates are not allowed"


def unusable(value: str) -> bool:
    """Whether ``value`` holds a NUL or an unpaired surrogate."""
    return UNUSABLE.search(value) is not None


def shown(value: str) -> str:
    """``value`` safe to write into an answer: every unusable character becomes U+FFFD."""
    return UNUSABLE.sub("\ufffd", value)
