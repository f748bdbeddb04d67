"""CSV import parsing of contract §6, without a database."""

from __future__ import annotations

import pytest

from payroster.domain.errors import Invalid
from payroster.services import csvimport


def test_semicolon_bom_and_header_case() -> None:
    """A BOM, a semicolon delimiter and header names in any case are understood; empty cells are omitted."""
    raw = "\ufeffEMAILADDRESS;Role;tags\r\na@example.com;Participant;AE|West\r\nb@example.com;;\r\n".encode()
    rows = csvimport.parse(csvimport.decode(raw))
    assert rows == [
        {"EMAILADDRESS": "a@example.com", "Role": "Participant", "tags": "AE|West"},
        {"EMAILADDRESS": "b@example.com"},
    ]


def test_comma_and_quoted_cells() -> None:
    """Commas are detected and quoted cells may hold the delimiter."""
    rows = csvimport.parse('emailAddress,lastName\nc@example.com,"Smith, Jr."\n')
    assert rows == [{"emailAddress": "c@example.com", "lastName": "Smith, Jr."}]


def test_cp1252_file() -> None:
    """A spreadsheet saved as Windows-1252 decodes."""
    assert csvimport.decode("firstName\nJosé\n".encode("cp1252")) == "firstName\nJosé\n"


def test_empty_file_refused() -> None:
    """A file without a header row is refused, at its first line."""
    with pytest.raises(Invalid) as refused:
        csvimport.parse("")
    assert [d.target for d in refused.value.details] == ["line 1"]


def test_each_row_is_numbered_by_the_line_it_starts_on() -> None:
    """Blank lines are skipped and a quoted cell may run over several lines: a row's number is still the line of
    the file it starts on (what the import's messages name), header on line 1, with \\n, \\r\\n or \\r endings."""
    text = 'emailAddress,lastName\n\na@example.com,"Two\nLines"\n\n\nb@example.com,Smith\n'
    expected = [(3, {"emailAddress": "a@example.com", "lastName": "Two\nLines"}),
                (7, {"emailAddress": "b@example.com", "lastName": "Smith"})]  # fmt: skip
    assert csvimport.parse_numbered(text) == expected
    assert list(csvimport.iter_numbered(text)) == expected
    for ending in ("\r\n", "\r"):
        assert [line for line, _ in csvimport.parse_numbered(text.replace("\n", ending))] == [3, 7]


def test_the_delimiter_is_read_from_the_first_line_only() -> None:
    """Semicolons in later lines do not make a comma file a semicolon file."""
    rows = csvimport.parse("emailAddress,lastName\na@example.com,Smith; Jr.\n")
    assert rows == [{"emailAddress": "a@example.com", "lastName": "Smith; Jr."}]
    with pytest.raises(Invalid):
        csvimport.iter_numbered("\n\nemailAddress\n")  # refused at once, before any row is read


def test_a_record_the_reader_refuses_is_invalid_input_with_its_line() -> None:
    """A cell over the CSV reader's size limit is bad input (``Invalid``, naming the line), not an error of
    the program."""
    with pytest.raises(Invalid, match="at line 3"):
        csvimport.parse("emailAddress,lastName\na@example.com,Smith\nb@example.com," + "x" * 200_000 + "\n")
