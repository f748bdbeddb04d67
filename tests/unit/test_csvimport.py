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
    """A file without a header row is refused."""
    with pytest.raises(Invalid):
        csvimport.parse("")
