"""A Custom tab's value as typed (README: Web app): numbers with thousands separators, and a question when the
digits could be read two ways."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payroster.domain.errors import Invalid
from payroster.web.shared import parse_value


@pytest.mark.parametrize(
    ("typed", "value"),
    [("120,000", 120000), ("1,234,567.50", Decimal("1234567.50")), ("120 000", 120000), ("120\u202f000", 120000),
     ("120'000", 120000), ("-3,000", -3000), ("120000", 120000), ("0.05", Decimal("0.05")), ("true", True),
     ("West, East", "West, East"), ("2027-01-01", "2027-01-01")],
)  # fmt: skip
def test_numbers_as_people_type_them(typed: str, value: object) -> None:
    """Grouped digits are the number; text stays text."""
    assert parse_value(typed) == value and type(parse_value(typed)) is type(value)


@pytest.mark.parametrize("typed", ["12,50", "1.234,56", "1,2345", "120,000 000"])
def test_digits_read_two_ways_are_a_question(typed: str) -> None:
    """Not stored as text: the admin is asked which number was meant."""
    with pytest.raises(Invalid, match=r"^is .* the number"):
        parse_value(typed)
