"""Effective dating of custom variables, without a database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from payroster.domain import effective


@dataclass
class E:
    name: str
    start: dt.datetime | None
    end: dt.datetime | None


def d(text: str) -> dt.datetime:
    return effective.parse_instant(text)


def test_parse_instant_forms() -> None:
    """A date means 00:00; no offset means UTC; an offset converts to UTC."""
    assert d("2020-01-01") == dt.datetime(2020, 1, 1)
    assert d("2020-01-01T10:30:00") == dt.datetime(2020, 1, 1, 10, 30)
    assert d("2020-01-01T10:30:00+02:00") == dt.datetime(2020, 1, 1, 8, 30)
    assert d("2020-01-01T10:30:00Z") == dt.datetime(2020, 1, 1, 10, 30)
    assert effective.format_instant(d("2020-01-01")) == "2020-01-01T00:00:00"


def test_contains_is_half_open() -> None:
    """Start inclusive, end exclusive, None open."""
    e = E("Quota", d("2026-02-01"), d("2026-05-01"))
    assert effective.contains(e, d("2026-02-01"))
    assert not effective.contains(e, d("2026-05-01"))
    assert effective.contains(E("Quota", None, None), d("1999-01-01"))


def test_overlapping_same_name_only() -> None:
    """Same name (any case) ranges that share an instant overlap; touching ranges and other names do not."""
    entries = [
        E("Quota", None, d("2026-05-01")),
        E("quota", d("2026-05-01"), None),
        E("Rate", None, None),
        E("QUOTA", d("2026-04-01"), d("2026-06-01")),
    ]
    assert effective.overlapping(entries) == [(0, 3), (1, 3)]


def test_sort_key_orders_name_then_start_null_first() -> None:
    """Entries sort by name, then start with the open start first."""
    entries = [E("b", None, None), E("a", d("2026-01-01"), None), E("a", None, d("2026-01-01"))]
    ordered = sorted(entries, key=effective.sort_key)
    assert [(e.name, e.start) for e in ordered] == [("a", None), ("a", d("2026-01-01")), ("b", None)]


def test_format_instant_writes_four_digit_years_and_never_drops_a_fraction() -> None:
    """Year 1 is ``0001`` (``strftime`` wrote ``1``); a stored fraction of a second is shown, not cut off."""
    assert effective.format_instant(dt.datetime(1, 1, 1)) == "0001-01-01T00:00:00"
    assert effective.format_instant(dt.datetime(999, 12, 31, 23, 59, 59)) == "0999-12-31T23:59:59"
    assert effective.format_instant(dt.datetime(2024, 1, 1, 0, 0, 0, 500)) == "2024-01-01T00:00:00.000500"


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"])
def test_an_offset_past_the_calendar_is_a_value_error(text: str) -> None:
    """Converted to UTC these fall outside years 1 to 9999: a ValueError like any other bad date."""
    with pytest.raises(ValueError, match="outside years 1 to 9999"):
        effective.parse_instant(text)
