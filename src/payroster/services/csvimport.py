"""CSV import (README.md, "CSV import"): header of field names or their ordinary synonyms, UTF-8 with or without
BOM, cells separated by ',', ';' or a tab (rows pasted from a spreadsheet)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

from payroster.domain.cells import restore
from payroster.domain.errors import Detail, Invalid


def decode(raw: bytes) -> str:
    """The file's text: UTF-8 (BOM optional), else Windows-1252 as spreadsheets on Windows save it."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse(text: str) -> list[dict[str, Any]]:
    """Rows as upsert objects; empty cells are omitted (they keep the stored value)."""
    return [row for _, row in parse_numbered(text)]


# The titles spreadsheets and HR exports give these columns, as ``header_name`` reads them (case-insensitive,
# spaces, ``_`` and ``-`` dropped, so ``E-mail`` is ``email``), and the field each means. One table for every door
# that reads a file (the CLI import, the web's Bulk add and its column matching); the field names themselves match
# without it.
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(("email", "mail", "workemail", "emailid", "businessemail", "useremail"), "emailAddress"),
    **dict.fromkeys(("first", "givenname", "forename", "firstnames"), "firstName"),
    **dict.fromkeys(("last", "surname", "familyname", "lastnames"), "lastName"),
    **dict.fromkeys(("userrole", "accessrole", "payrosterrole"), "role"),
    **dict.fromkeys(("tag", "labels", "label"), "tags"),
    **dict.fromkeys(("alias", "aka", "alternateemails", "otheremails"), "aliases"),
    **dict.fromkeys(("managerid", "managerguid", "directmanagerguid"), "directManagerId"),
}


def header_name(cell: str) -> str:
    """A column title as a field name: ``Email Address`` and ``email_address`` both mean ``emailAddress``
    (field names match case-insensitively, so dropping spaces, ``_`` and ``-`` is enough), and an ordinary title
    of ``SYNONYMS`` (``Email``, ``Given Name``, ``Surname``) the field it means."""
    name = "".join(ch for ch in cell.strip() if ch not in " _-")
    return SYNONYMS.get(name.casefold(), name)


def parse_numbered(text: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs, ``line`` being where the row starts in the file (the header is line 1)."""
    return list(iter_numbered(text))


def iter_numbered(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``parse_numbered`` one row at a time (a large file's rows need not all be held as dictionaries at once);
    an empty file is refused here, before the first row."""
    header_line = text.partition("\n")[0].partition("\r")[0]
    if not header_line.strip():
        raise Invalid(
            "the file is empty: the first row must name the columns",
            details=[Detail("required", "header row missing", "line 1")],
        )
    delimiter = delimiter_of(header_line)
    # newline="": lines end at \n, \r\n or a lone \r (as spreadsheets on older Macs save them), and the reader
    # keeps line breaks inside quoted cells as written. strict: a quoted cell the file never closes is an error
    # (the lenient reader ran it to the end of the file, and the rows it swallowed were reported as "control
    # characters" in one cell), and so is text after a closing quote (lenient, ``"a"b`` silently became ``ab``).
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        titles = next(reader)
    except csv.Error as exc:
        raise _refused(reader, exc, 1) from None
    return _rows(reader, _header(titles))


DELIMITERS = (",", ";", "\t")


def delimiter_of(header_line: str) -> str:
    """The cell separator: whichever of comma, semicolon and tab the header row holds most (a comma on a tie).

    Counted on the header line rather than guessed by ``csv.Sniffer``: the sniffer weighs every character of a
    sample and, on a few rows of names and e-mails, picks a space, ``@`` or ``.`` as readily as a comma, and it
    raises instead of answering on one-column files. A header names fields, which hold none of the three, so its
    counts decide without ambiguity, and the same rule serves an upload, a paste from Excel (tabs) and the CLI.
    """
    counts = {d: header_line.count(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equals: ',' when none is present


def iter_lines(lines: Iterator[str], header_line: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``iter_numbered`` over lines read from a file as they come (``header_line`` being the first of them), so
    that the file's text is never held whole (services/sheets.py)."""
    if not header_line.strip():
        raise Invalid(
            "the file is empty: the first row must name the columns",
            details=[Detail("required", "header row missing", "line 1")],
        )
    reader = csv.reader(lines, delimiter=delimiter_of(header_line.rstrip("\r\n")), strict=True)
    try:
        titles = next(reader)
    except csv.Error as exc:
        raise _refused(reader, exc, 1) from None
    return _rows(reader, _header(titles))


def _header(titles: list[str]) -> list[str]:
    return header_of(titles, lambda column: f"line 1, column {column}")


def header_of(titles: list[str], where: Callable[[int], str]) -> list[str]:
    """The field names of the header row; a name given twice (in any case or spelling that means the same field,
    ``Email Address`` and ``emailAddress``) is refused, as a JSON key given twice is."""
    header = [header_name(h) for h in titles]
    first: dict[str, int] = {}
    problems: list[Detail] = []
    for column, name in enumerate(header, 1):
        if not name:
            continue
        seen = first.setdefault(name.casefold(), column)
        if seen != column:
            both = f"columns {seen} ('{titles[seen - 1].strip()}') and {column} ('{titles[column - 1].strip()}')"
            problems.append(Detail("duplicateField", f"{both} name the same field", where(column)))
    if problems:
        raise Invalid(
            "the header row names a field twice: " + "; ".join(p.message for p in problems[:5]), details=problems
        )
    return header


def _refused(reader: Any, exc: csv.Error, start: int) -> Invalid:
    """A record the CSV reader refuses as bad input naming its line, not as the reader's own error: a quoted cell
    never closed (named by the line it opens on), text after a closing quote, a cell longer than the reader's limit
    of 131,072 characters."""
    reason = str(exc)
    if reason == "unexpected end of data":
        line = start
        reason = "a quoted cell is not closed (unterminated quoted field): the file ends inside it"
    else:
        line = reader.line_num
        if "expected after" in reason:
            reason = 'text follows a closing quote (write a quote inside a quoted cell as "")'
    return Invalid(
        f"the file is not valid CSV at line {line}: {reason}", details=[Detail("invalidCsv", reason, f"line {line}")]
    )


def _rows(reader: Any, header: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            row: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=False):
                if cell.strip():
                    row[name] = restore(cell)  # an export's neutralised cell is its value again (domain/cells.py)
            if len(cells) > len(header):
                row[f"column{len(header) + 1}"] = cells[len(header)]
            yield line, row
    except csv.Error as exc:
        raise _refused(reader, exc, start) from None
