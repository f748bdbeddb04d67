"""Text no door can accept: NUL, which PostgreSQL's text cannot hold (SQLite can, so the two would differ), and
unpaired surrogates, which JSON's ``\\u`` escapes can write (a pair is decoded as the one character it stands for)
but no encoder can write back out."""

from __future__ import annotations

import re
from collections.abc import Iterable

from payroster.domain.errors import BadRequest, Detail

UNUSABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "NUL characters and unpaired surrogates are not allowed"


def unusable(value: str) -> bool:
    """Whether ``value`` holds a NUL or an unpaired surrogate."""
    return UNUSABLE.search(value) is not None


def shown(value: str) -> str:
    """``value`` safe to write into an answer: every unusable character becomes U+FFFD."""
    return UNUSABLE.sub("\ufffd", value)


def refuse_unusable(parameters: Iterable[tuple[str, str]]) -> None:
    """A 400 naming the first query parameter whose name or value holds unusable text (every door's query string
    is read through this, before any handler compares it with stored text)."""
    for name, value in parameters:
        if unusable(name) or unusable(value):
            raise BadRequest(
                f"query parameter '{shown(name)}': {MESSAGE}",
                details=[Detail("invalidCharacters", MESSAGE, shown(name))],
            )
