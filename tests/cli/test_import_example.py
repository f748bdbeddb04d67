"""docs/example-import.xlsx, the README's example workbook: made by docs/example_import.py, and imported whole by
``payroster import workbook``."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import create_workspace
from tests.procs import run_cli

EXAMPLE = Path(__file__).parents[2] / "docs" / "example-import.xlsx"


def cells(path: Path) -> dict[str, list[list[object]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
    finally:
        book.close()


def test_the_committed_example_is_what_its_script_writes(tmp_path: Path) -> None:
    script = runpy.run_path(str(EXAMPLE.with_name("example_import.py")))
    script["write"](tmp_path / "again.xlsx")
    assert cells(EXAMPLE) == cells(tmp_path / "again.xlsx")


@pytest.mark.parametrize("env", ["sqlite"], indirect=True)
def test_the_example_workbook_imports_in_one_go(env: dict[str, str]) -> None:
    create_workspace(env)
    done = run_cli(env, "import", "workbook", "--workspace", "acme-corp", str(EXAMPLE), "--json")
    assert done.code == 0, done.err
    # The command's progress: a bar per stage on stderr (its label alone when stderr is not a terminal).
    for stage in ("reading Users", "reading Teams", "writing Users", "writing Memberships", "writing CustomVariables"):
        assert stage in done.err, done.err
    assert json.loads(done.out) == {
        "users": {"rows": 3, "created": 3, "updated": 0, "unchanged": 0},
        "teams": {"rows": 2, "created": 2, "updated": 0, "unchanged": 0},
        "memberships": {"rows": 2, "created": 2, "updated": 0, "unchanged": 0},
        "custom-variables": {"rows": 3, "created": 2, "updated": 0, "unchanged": 0},
    }
    again = run_cli(env, "import", "workbook", "--workspace", "acme-corp", str(EXAMPLE), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["teams"] == {"rows": 2, "created": 0, "updated": 0, "unchanged": 2}
    assert json.loads(again.out)["memberships"] == {"rows": 2, "created": 0, "updated": 0, "unchanged": 2}
