"""Normalisation rules of contract §1, without a database."""

from __future__ import annotations

import pytest

from payroster.domain import normalize


def test_key_is_nfc_casefold_strip() -> None:
    """Keys fold case (ß → ss), trim, and compose to NFC so visually equal strings compare equal."""
    assert normalize.key("  Straße@Example.COM ") == "strasse@example.com"
    assert normalize.key("e\u0301") == normalize.key("\u00e9")


def test_split_items_pipe_and_array() -> None:
    """'A|B' and arrays split alike: trimmed, empties dropped, duplicates merged case-insensitively."""
    assert normalize.split_items(" AE | SouthEast||ae ") == ["AE", "SouthEast"]
    assert normalize.split_items(["West", " west", "", "East"]) == ["West", "East"]


@pytest.mark.parametrize("value", ["test@example.com", "用户@例子.广告", "o'brien+tag@example.co.uk"])
def test_valid_emails(value: str) -> None:
    """Ordinary and internationalised addresses are accepted."""
    assert normalize.email_problem(value) is None


@pytest.mark.parametrize("value", ["plainaddress", "a@b", "nul\x00@example.com", "x" * 250 + "@example.com", ""])
def test_invalid_emails(value: str) -> None:
    """Malformed, control-character and over-long addresses are refused with a reason."""
    assert normalize.email_problem(value)


def test_parse_role_case_insensitive() -> None:
    """Roles match case-insensitively; unknown roles are None."""
    assert normalize.parse_role("fulladmin") == "FullAdmin"
    assert normalize.parse_role(" DEACTIVATED ") == "Deactivated"
    assert normalize.parse_role("Owner") is None


def test_item_problems_limits() -> None:
    """Items over 255 characters, control characters and more than 1,000 items are reported."""
    problems = normalize.item_problems(["x" * 256, "ok", "bad\x07"], "tags")
    assert {p.code for p in problems} == {"tooLong", "invalidCharacters"}
    assert [p.target for p in problems if p.code == "tooLong"] == ["tags/0"]
    assert normalize.item_problems([str(i) for i in range(1001)], "tags")[0].code == "tooMany"
