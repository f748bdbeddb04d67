"""Neutralised cells (domain/cells.py): what a spreadsheet would run goes out behind a quote and comes back."""

from __future__ import annotations

import pytest

from payroster.domain.cells import neutralise, restore
from payroster.services import csvimport

# OWASP's CSV injection triggers, a value that begins with a quote already, and values left alone.
CASES = [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
    ("+1", "'+1"),
    ("-5", "'-5"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"),
    ("\rx", "'\rx"),
    ("'abc", "''abc"),
    ("'=x", "''=x"),
    ("'", "''"),
    ("plain", "plain"),
    ("a=b", "a=b"),
    ("", ""),
]


@pytest.mark.parametrize(("value", "written"), CASES)
def test_neutralised_and_restored(value: str, written: str) -> None:
    assert neutralise(value) == written
    assert restore(written) == value


def test_a_hand_written_quote_before_plain_text_is_kept() -> None:
    assert restore("'abc") == "'abc"
    assert restore("O'Brien") == "O'Brien"


def test_the_user_import_restores_neutralised_cells() -> None:
    text = "emailAddress,firstName,lastName,tags\r\na@x.example,'=1+2,'-Smith,'@t|u\r\n"
    assert csvimport.parse(text) == [
        {"emailAddress": "a@x.example", "firstName": "=1+2", "lastName": "-Smith", "tags": "@t|u"}
    ]
