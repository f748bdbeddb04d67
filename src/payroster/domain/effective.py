"""Effective dating of custom variables: parsing instants, overlap checks, value at an instant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from payroster.domain.normalize import key


class Dated(Protocol):
    """Anything with a name and a half-open ``[start, end)`` range; None is open."""

    name: str
    start: dt.datetime | None
    end: dt.datetime | None


def parse_instant(value: str) -> dt.datetime:
    """A date (00:00) or datetime (UTC unless an offset is given), as a naive UTC datetime; ValueError when it is
    none, or when its offset carries it out of years 1 to 9999."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) == 10:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError(f"{value!r} in UTC is outside years 1 to 9999") from None
    return parsed


def format_instant(value: dt.datetime | None) -> str | None:
    """The output form of README.md (Custom variables), ``YYYY-MM-DDTHH:MM:SS``, with four-digit years (year 1 is
    ``0001``); a fraction of a second, which no input keeps any more, is shown rather than dropped."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")


def format_day(value: dt.datetime | None) -> str | None:
    """An instant as pages show it: a date alone at midnight UTC (what a date typed without a time is), else the
    date and time in UTC."""
    if value is None:
        return None
    if value.time() == dt.time():
        return value.date().isoformat()
    return value.strftime("%Y-%m-%d %H:%M:%S" if value.second or value.microsecond else "%Y-%m-%d %H:%M") + " UTC"


def contains(entry: Dated, at: dt.datetime) -> bool:
    """True when ``at`` falls in the entry's half-open range."""
    return (entry.start is None or entry.start <= at) and (entry.end is None or at < entry.end)


def overlapping(entries: Sequence[Dated]) -> list[tuple[int, int]]:
    """Index pairs of same-name (case-insensitive) entries whose ranges overlap."""
    pairs: list[tuple[int, int]] = []
    for i, a in enumerate(entries):
        for j in range(i + 1, len(entries)):
            b = entries[j]
            if key(a.name) != key(b.name):
                continue
            a_before_b = a.end is not None and b.start is not None and a.end <= b.start
            b_before_a = b.end is not None and a.start is not None and b.end <= a.start
            if not (a_before_b or b_before_a):
                pairs.append((i, j))
    return pairs


def sort_key(entry: Dated) -> tuple[str, int, dt.datetime]:
    """Order by name, then start (open start first)."""
    return (key(entry.name), 0 if entry.start is None else 1, entry.start or dt.datetime.min)
