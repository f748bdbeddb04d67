"""Spreadsheet files read row by row: CSV or TSV (UTF-8, UTF-16 with its BOM, or Windows-1252) and XLSX workbooks.

Every reader streams: a row is read, handed on and forgotten, so memory does not grow with the file (README.md,
"Imports"). A workbook is checked before openpyxl parses it (:func:`inspect_xlsx`), because its read-only mode
still holds a whole ``<row>`` element, the shared strings table and any one text in memory: a compressed "bomb",
a row of a million cells or a text of hundreds of megabytes would exhaust the machine. Such a file is refused
with a message naming what is wrong; so are merged cells, whose value openpyxl gives for one cell of the range
only (the others would be read as empty and silently change the rows).
"""

from __future__ import annotations

import codecs
import datetime as dt
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from payroster.domain import wire
from payroster.domain.cells import restore
from payroster.domain.errors import Detail, Invalid
from payroster.services import csvimport

MAX_COLUMNS = 16_384  # Excel's own limit (column XFD): a row with more cells is no spreadsheet's
MAX_TEXT = 1 << 20  # bytes of XML between two tags: an Excel cell holds 32,767 characters (128 KiB in UTF-8)
MAX_SHARED = 64 << 20  # bytes of the shared strings table, which openpyxl holds in memory whole
MAX_RATIO = 100  # uncompressed / compressed size of a large member: sheet XML compresses some 5 to 20 times
RATIO_FROM = 32 << 20  # bytes uncompressed from which the ratio is checked
MAX_TOTAL = 8 << 30  # bytes uncompressed in all
SCAN = 1 << 20  # bytes of a sheet's XML scanned at a time

Row = tuple[int, dict[str, str]]  # (the row's number in its sheet or line in its file, cells by field name)


def _refuse(message: str, where: str = "file") -> Invalid:
    return Invalid(message, details=[Detail("invalidFile", message, where)])


def is_xlsx(path: Path) -> bool:
    """Whether the file is a zip archive (an XLSX workbook), by its first bytes."""
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


# -- CSV ------------------------------------------------------------------------------------------------------


def encoding_of(path: Path) -> str:
    """UTF-8 or UTF-16 by their byte order mark; without one UTF-8 when every byte decodes as UTF-8 (checked
    incrementally, a chunk at a time), else Windows-1252 as spreadsheets on Windows save it."""
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := f.read(SCAN):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def csv_rows(path: Path) -> Iterator[Row]:
    """The rows of a CSV or TSV file with their lines, cells by field name (``csvimport``'s header rules)."""
    encoding = encoding_of(path)
    with path.open(encoding=encoding, errors="replace" if encoding == "cp1252" else "strict", newline="") as f:
        try:
            yield from csv_stream(f)
        except UnicodeDecodeError as exc:
            raise _refused_encoding(encoding, exc) from None


def _refused_encoding(encoding: str, exc: UnicodeDecodeError) -> Invalid:
    name = "UTF-16" if encoding == "utf-16" else encoding.upper()
    return _refuse(f"the file is not valid {name} text: {exc.reason}; save it as CSV UTF-8")


def csv_stream(f: IO[str]) -> Iterator[Row]:
    """``csv_rows`` over an open text stream (``newline=""``)."""
    header = f.readline()
    return csvimport.iter_lines(itertools.chain([header], f), header)


# -- XLSX -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """A worksheet of a workbook: its name as shown and its part in the archive."""

    name: str
    part: str


_ROW = re.compile(rb"<(?:\w+:)?row[\s>/]")
_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s[^>]*ref="[A-Z]*\d*:?([A-Z]+)\d*"')
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*ref="([^"]+)"')


def inspect_xlsx(path: Path) -> list[Sheet]:
    """The workbook's worksheets, once the archive is found safe to read in bounded memory; ``Invalid`` naming
    the problem otherwise."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise _refuse("the file is not an XLSX workbook (not a valid zip archive)") from None
    with archive:
        infos = archive.infolist()
        if sum(i.file_size for i in infos) > MAX_TOTAL:
            raise _refuse(f"the workbook unpacks to more than {MAX_TOTAL >> 30} GiB: split it or import CSV")
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FROM and ratio > MAX_RATIO:
                raise _refuse(
                    f"the workbook's part {info.filename} unpacks {ratio:,.0f} times larger than it is stored"
                    f" ({info.file_size >> 20:,} MiB): it is refused as a compression bomb"
                )
            if info.filename.endswith("sharedStrings.xml") and info.file_size > MAX_SHARED:
                raise _refuse(
                    f"the workbook's shared strings take {info.file_size >> 20:,} MiB (more than {MAX_SHARED >> 20}"
                    " MiB): save the sheets as CSV and import those"
                )
        sheets = _sheets(path)
        for sheet in sheets:
            _scan(archive, sheet)
    return sheets


def _sheets(path: Path) -> list[Sheet]:
    """Worksheet names and parts from the workbook's own list, through openpyxl's reader of it."""
    from openpyxl.reader.excel import ExcelReader

    # A file object, not its name: openpyxl refuses a name without an Excel extension (an upload's).
    with path.open("rb") as f:
        try:
            reader = ExcelReader(f, read_only=True, data_only=True)
            reader.read_manifest()
            reader.read_workbook()
            return [Sheet(s.name, rel.target) for s, rel in reader.parser.find_sheets()]
        except Exception as exc:  # openpyxl raises what its parsers raise: KeyError, ValueError, XML errors
            message = f"the workbook cannot be read ({type(exc).__name__}): save it again from a spreadsheet"
            raise _refuse(message) from None


def _scan(archive: zipfile.ZipFile, sheet: Sheet) -> None:
    """One pass over the sheet's XML as bytes (no parse): cells per row, the longest text, merged ranges."""
    where = f"sheet {sheet.name}"
    try:
        stream = archive.open(sheet.part.lstrip("/"))
    except KeyError:
        raise _refuse(f"{where} is missing from the workbook", where) from None
    cells = 0  # in the row read so far
    row = 0
    tail = b""
    merged: list[str] = []
    with stream:
        while chunk := stream.read(SCAN):
            data = tail + chunk
            cut = data.rfind(b"<")
            if cut <= 0 and len(data) > MAX_TEXT:
                raise _refuse(f"{where} holds a text longer than {MAX_TEXT >> 10:,} KiB, no cell's", where)
            if cut <= 0:
                tail = data
                continue
            body, tail = data[:cut], data[cut:]
            if row == 0 and (declared := _DIMENSION.search(body)) is not None:
                letters = declared.group(1).decode()
                if _column_number(letters) > MAX_COLUMNS:
                    raise _refuse(
                        f"{where} declares {_column_number(letters):,} columns (up to {letters}), more than Excel's"
                        f" {MAX_COLUMNS:,}: save it again from a spreadsheet",
                        where,
                    )
            if len(tail) > MAX_TEXT:
                raise _refuse(f"{where} holds a text longer than {MAX_TEXT >> 10:,} KiB, no cell's", where)
            start = 0
            for m in _ROW.finditer(body):
                cells += len(_CELL.findall(body, start, m.start()))
                if cells > MAX_COLUMNS:
                    break
                row, cells, start = row + 1, 0, m.end()
            cells += len(_CELL.findall(body, start))
            if cells > MAX_COLUMNS:
                raise _refuse(
                    f"{where}, row {max(row, 1)} has more than {MAX_COLUMNS:,} cells (Excel's limit of columns)", where
                )
            merged += (m.group(1).decode("ascii", "replace") for m in _MERGE.finditer(body))
    merged += (m.group(1).decode("ascii", "replace") for m in _MERGE.finditer(tail))
    if merged:
        shown = ", ".join(merged[:5]) + (" ..." if len(merged) > 5 else "")
        raise _refuse(f"{where} has merged cells ({shown}): unmerge them so that every cell holds its value", where)


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def cell_text(value: Any) -> str:
    """A cell's value as the text an export would hold: dates as ``YYYY-MM-DD`` (with a time, ISO 8601 in
    UTC), whole numbers without a decimal point, booleans as ``true``/``false``. A formula is read as the value
    Excel last computed (openpyxl's ``data_only``), never evaluated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return wire.time(value.replace(tzinfo=None), "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return str(value)


def xlsx_rows(path: Path, sheet: Sheet) -> Iterator[Row]:
    """The rows of one worksheet (checked by :func:`inspect_xlsx` first) with their numbers, cells by field
    name; the first row names the columns."""

    with path.open("rb") as f:
        yield from _book_rows(f, sheet)


def _book_rows(f: IO[bytes], sheet: Sheet) -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(f, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises what its parsers raise
        raise _refuse(f"the workbook cannot be read ({type(exc).__name__}): save it again from a spreadsheet") from None
    try:
        ws = book[sheet.name]
        # Never without max_col: read-only padding follows the sheet's declared dimension, which a file may set
        # to a million columns.
        titles = next(ws.iter_rows(max_row=1, max_col=MAX_COLUMNS, values_only=True), ())
        texts = [cell_text(t) for t in titles]
        while texts and not texts[-1].strip():
            texts.pop()
        if not texts:
            raise Invalid(
                f"sheet {sheet.name} is empty: the first row must name the columns",
                details=[Detail("required", "header row missing", f"{sheet.name}, row 1")],
            )
        header = csvimport.header_of(texts, lambda c: f"{sheet.name}, row 1, column {c}")
        width = len(header)
        for number, values in enumerate(ws.iter_rows(min_row=2, max_col=width, values_only=True), 2):
            row: dict[str, str] = {}
            for name, value in zip(header, values, strict=False):
                text = cell_text(value)
                if name and text.strip():
                    row[name] = restore(text)
            if row:
                yield number, row
    finally:
        book.close()
