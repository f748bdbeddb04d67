"""JSON numbers kept exactly: integers past 64 bits as Decimals, and a bound on how many digits a number may have.

README.md (Custom variables): numbers keep their exact digits. Python's ``int`` refuses to convert more than
4,300 digits from text, orjson (the audit trail) writes no integer past 64 bits, and a double holds 17
significant digits; a Decimal built from the number's text keeps every digit and goes out as written.
"""

from __future__ import annotations

from decimal import Decimal

# The longest number kept, written out without an exponent: far past any quota or rate, short enough that
# PostgreSQL's NUMERIC holds it exactly (131,072 digits before the point, 16,383 after).
MAX_DIGITS = 1000
# Integers of up to 18 digits fit a signed 64-bit integer whatever they are.
_SHORT = 18


def integer(text: str) -> int | Decimal:
    """A JSON integer: an ``int`` when it fits 64 bits, else an exact ``Decimal`` (``json``'s ``parse_int``)."""
    if len(text.lstrip("-")) <= _SHORT:
        return int(text)
    return Decimal(text)


def too_long(value: Decimal) -> bool:
    """Whether ``value`` written out in full (``1e3`` as ``1000``) has more than ``MAX_DIGITS`` digits."""
    if not value.is_finite():
        return True
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    whole = max(len(digits) + exponent, 1)
    return whole + max(-exponent, 0) > MAX_DIGITS
