"""``payroster import`` given hostile or awkward files (README.md, "Imports"): a compression bomb, a million
columns, merged cells, dates typed as text or as dates, UTF-16 text from Excel. Each ends in a clear error or a
correct read, never a traceback, in bounded memory (the command's own peak RSS, read by bench/peak_rss.py)."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import xlsxwriter

from tests.conftest import create_workspace
from tests.procs import Run

pytestmark = pytest.mark.parametrize("env", ["sqlite"], indirect=True)
BOUND_MIB = 300


def run_measured(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[Run, float]:
    """``payroster ARGS`` and its peak RSS in MiB."""
    peak = tmp_path / "peak"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.peak_rss", str(peak), "payroster", *args],
        env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr), int(peak.read_text()) / 1024


def small_workbook(rows: list[list[str]], sheet: str = "Users") -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    ws = book.add_worksheet(sheet)
    for r, row in enumerate(rows):
        ws.write_row(r, 0, row)
    book.close()
    return out.getvalue()


def with_sheet_xml(workbook: bytes, path: Path, write: Callable[[io.BufferedIOBase], None]) -> None:
    """``workbook`` saved at ``path`` with its first sheet's XML written by ``write`` (streamed into the zip)."""
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with out.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
                    write(part)  # type: ignore[arg-type]
            else:
                out.writestr(info, source.read(info))


HEAD = b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def test_a_compression_bomb_is_refused_in_bounded_memory(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    bomb = tmp_path / "bomb.xlsx"

    def write(part: io.BufferedIOBase) -> None:
        part.write(HEAD + b'<sheetData><row r="1"><c t="inlineStr"><is><t>emailAddress</t></is></c></row>')
        row = b'<row><c t="inlineStr"><is><t>' + b"a" * 4000 + b"</t></is></c></row>"
        for _ in range(200 * 2**20 // len(row)):  # 200 MiB unpacked
            part.write(row)
        part.write(b"</sheetData></worksheet>")

    with_sheet_xml(small_workbook([["emailAddress"]]), bomb, write)
    assert bomb.stat().st_size < 2 * 2**20
    done, peak = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(bomb))
    assert done.code == 1 and "compression bomb" in done.err and "Traceback" not in done.err, done.err
    assert peak < BOUND_MIB


def column(n: int) -> str:
    letters = ""
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def declaring(last: str) -> Callable[[io.BufferedIOBase], None]:
    """A sheet of two rows that declares its size as ``A1:{last}``."""

    def write(part: io.BufferedIOBase) -> None:
        part.write(HEAD + f'<dimension ref="A1:{last}"/><sheetData>'.encode())
        for r, cells in enumerate((("emailAddress", "role"), ("wide@acme.example", "Participant")), 1):
            xml = "".join(
                f'<c r="{column(c)}{r}" t="inlineStr"><is><t>{v}</t></is></c>' for c, v in enumerate(cells, 1)
            )
            part.write(f'<row r="{r}">{xml}</row>'.encode())
        part.write(b"</sheetData></worksheet>")

    return write


def test_a_million_columns_declared_or_written_are_refused(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    # Excel's largest sheet declared (16,384 columns by 1,048,576 rows): the two rows written are read.
    largest = tmp_path / "largest.xlsx"
    with_sheet_xml(small_workbook([["x"]]), largest, declaring("XFD1048576"))
    done, peak = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(largest), "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"rows": 1, "created": 1, "updated": 0, "unchanged": 0}
    assert peak < BOUND_MIB

    declared = tmp_path / "declared.xlsx"
    with_sheet_xml(small_workbook([["x"]]), declared, declaring(f"{column(1_000_000)}3"))
    refused, _ = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(declared))
    assert refused.code == 1 and "declares 1,000,000 columns" in refused.err and "Traceback" not in refused.err

    wide = tmp_path / "wide.xlsx"

    def write_wide(part: io.BufferedIOBase) -> None:
        part.write(HEAD + b'<sheetData><row r="1">')
        for _ in range(1000):
            part.write(b"<c><v>1</v></c>" * 1000)
        part.write(b"</row></sheetData></worksheet>")

    with_sheet_xml(small_workbook([["x"]]), wide, write_wide)
    refused, peak = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(wide))
    assert refused.code == 1 and "more than 16,384 cells" in refused.err and "Traceback" not in refused.err
    assert peak < BOUND_MIB


def test_merged_cells_are_refused_naming_the_range(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    path = tmp_path / "merged.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Teams")
    sheet.write_row(0, 0, ["name", "description"])
    sheet.merge_range("A2:B3", "Sales")
    book.close()
    done = subprocess.run(
        [sys.executable, "-m", "payroster", "import", "teams", "--workspace", "acme-corp", str(path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "merged cells (A2:B3)" in done.stderr, done.stderr


def test_dates_as_dates_read_and_dates_as_text_are_named(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    people = tmp_path / "people.csv"
    people.write_text("emailAddress,role\nann@acme.example,Participant\n", encoding="utf-8")
    assert run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(people))[0].code == 0
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    teams = book.add_worksheet("Teams")
    teams.write_row(0, 0, ["name", "managerEmail"])
    teams.write_row(1, 0, ["Sales", "ann@acme.example"])
    members = book.add_worksheet("Memberships")
    members.write_row(0, 0, ["teamName", "emailAddress", "validFrom", "validTo"])
    members.write_string(1, 0, "Sales")
    members.write_string(1, 1, "ann@acme.example")
    members.write_datetime(1, 2, dt.datetime(2026, 1, 1), book.add_format({"num_format": "dd/mm/yyyy"}))
    members.write_string(1, 3, "31/12/2026")  # typed as text, in a day-first order
    book.close()
    args = ("import", "workbook", "--workspace", "acme-corp", str(path), "--json")
    refused, _ = run_measured(env, tmp_path, *args)
    assert refused.code == 1 and "Memberships, row 2, validTo: validTo must be a date YYYY-MM-DD" in refused.err

    book = xlsxwriter.Workbook(str(path))
    teams = book.add_worksheet("Teams")
    teams.write_row(0, 0, ["name", "managerEmail"])
    teams.write_row(1, 0, ["Sales", "ann@acme.example"])
    members = book.add_worksheet("Memberships")
    members.write_row(0, 0, ["teamName", "emailAddress", "validFrom", "validTo"])
    members.write_row(1, 0, ["Sales", "ann@acme.example"])
    members.write_datetime(1, 2, dt.datetime(2026, 1, 1), book.add_format({"num_format": "dd/mm/yyyy"}))
    members.write_string(1, 3, "2026-12-31")
    book.close()
    done, _ = run_measured(env, tmp_path, *args)
    assert done.code == 0, done.err
    assert json.loads(done.out) == {
        "teams": {"rows": 1, "created": 1, "updated": 0, "unchanged": 0},
        "memberships": {"rows": 1, "created": 1, "updated": 0, "unchanged": 0},
    }


def test_utf16_text_saved_by_excel_reads_with_its_accents(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    path = tmp_path / "unicode.txt"
    # Excel's "Unicode Text": UTF-16 with a byte order mark, cells separated by tabs.
    path.write_bytes("Email\tRole\tFirst Name\nzoe@acme.example\tParticipant\tZoë\n".encode("utf-16"))
    done, _ = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(path), "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["created"] == 1
    export = tmp_path / "again.csv"
    export.write_text("emailAddress,firstName\nzoe@acme.example,Zoë\n", encoding="utf-8")
    again, _ = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(export), "--json")
    assert json.loads(again.out) == {"rows": 1, "created": 0, "updated": 0, "unchanged": 1}  # the same name


def test_a_formula_cell_is_read_as_the_value_excel_saved_never_evaluated(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    path = tmp_path / "people.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Users")
    sheet.write_row(0, 0, ["emailAddress", "role", "firstName"])
    sheet.write_row(1, 0, ["ann@acme.example", "Participant"])
    sheet.write_formula(1, 2, '=UPPER("ann")', None, "Saved Ann")  # the value Excel saved beside its formula
    book.close()
    done, _ = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(path), "--json")
    assert done.code == 0, done.err
    # The same person with the saved value typed: nothing changes, so neither the formula nor "ANN" was stored.
    again = tmp_path / "again.csv"
    again.write_text("emailAddress,role,firstName\nann@acme.example,Participant,Saved Ann\n", encoding="utf-8")
    same, _ = run_measured(env, tmp_path, "import", "users", "--workspace", "acme-corp", str(again), "--json")
    assert same.code == 0, same.err
    assert json.loads(same.out) == {"rows": 1, "created": 0, "updated": 0, "unchanged": 1}
