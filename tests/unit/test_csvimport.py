"""CSV import parsing (README.md, "CSV import"), without a database."""

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


@pytest.mark.parametrize(
    "header",
    ["emailAddress,role,emailAddress", "emailAddress,role,EMAILADDRESS", "Email Address;role;email_address"],
)
def test_a_field_named_by_two_columns_is_refused(header: str) -> None:
    """Two columns for one field (in any case or spelling) are refused with both named, never the second used."""
    sep = ";" if ";" in header else ","
    with pytest.raises(Invalid, match="twice") as refused:
        csvimport.parse(header + "\n" + sep.join(["a@example.com", "Participant", "b@example.com"]) + "\n")
    assert [(d.code, d.target) for d in refused.value.details] == [("duplicateField", "line 1, column 3")]
    assert "columns 1" in refused.value.details[0].message and "and 3" in refused.value.details[0].message


def test_empty_column_titles_are_not_duplicates() -> None:
    """Spreadsheets leave trailing columns without a title: they are not a field given twice."""
    assert csvimport.parse("emailAddress,,\na@example.com,,\n") == [{"emailAddress": "a@example.com"}]


def test_an_unterminated_quote_is_named_with_the_line_it_opens_on() -> None:
    """A quoted cell the file never closes is reported as such, at the line where the quote opens (the lenient
    reader swallowed the rest of the file into that cell, reported as "control characters")."""
    text = 'emailAddress,lastName\na@example.com,Smith\nb@example.com,"Jones\nc@example.com,Brown\nd@example.com,X\n'
    with pytest.raises(Invalid, match="not closed") as refused:
        csvimport.parse(text)
    assert "unterminated quoted field" in refused.value.message and "line 3" in refused.value.message
    assert [(d.code, d.target) for d in refused.value.details] == [("invalidCsv", "line 3")]
    with pytest.raises(Invalid, match="at line 1: a quoted cell is not closed"):
        csvimport.parse('"emailAddress,lastName\n')


def test_text_after_a_closing_quote_is_refused_not_joined() -> None:
    """``"Smith"Jr`` is not valid CSV: refused at its line instead of silently read as ``SmithJr``."""
    with pytest.raises(Invalid, match="at line 2: text follows a closing quote"):
        csvimport.parse('emailAddress,lastName\na@example.com,"Smith"Jr\n')
