"""Normalisation rules (docs/architecture.md, "Normalised keys"), without a database."""

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


@pytest.mark.parametrize(
    "value", ["plainaddress", "nul\x00@example.com", "x" * 250 + "@example.com", "", "x" * 65 + "@example.com"]
)
def test_invalid_emails(value: str) -> None:
    """Malformed, control-character and over-long addresses are refused with a reason."""
    assert normalize.email_problem(value)


def test_email_key_lower_cases_the_local_part_and_encodes_the_domain() -> None:
    """Unicode lower case, no case folding, in the local part; the domain's IDNA A-label form."""
    assert normalize.email_key(" Straße@Example.COM ") == "straße@example.com" != normalize.email_key("strasse@x.com")
    assert normalize.email_key("\ufb01nance@example.com") != normalize.email_key("finance@example.com")
    assert normalize.email_key("jdoe@Müller.de") == normalize.email_key("JDOE@xn--MLLER-kva.de")
    assert normalize.email_key("e\u0301@example.com") == normalize.email_key("\u00e9@example.com")
    # Not valid IDNA (two hyphens in third and fourth place, an underscore, no @): lower case, no error.
    assert normalize.email_key("a@AB--cd.example") == "a@ab--cd.example"
    assert normalize.email_key("a@Under_Score.example") == "a@under_score.example"
    assert normalize.email_key("NoAt") == "noat"


@pytest.mark.parametrize("value", ["jdoe@contoso.local", "jdoe@x.test", "jdoe@home.arpa", "jdoe@intranet", "a@b"])
def test_any_domain_is_accepted(value: str) -> None:
    """A directory, not a mailer: special-use and single-label domains name people too."""
    assert normalize.email_problem(value) is None


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
