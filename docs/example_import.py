"""Writes docs/example-import.xlsx: a workbook of the four sheets ``payroster import workbook`` reads (README.md,
"Imports"). Run ``.venv/bin/python docs/example_import.py``; tests/cli/test_import_example.py imports it."""

from __future__ import annotations

import sys
from pathlib import Path

import xlsxwriter

SHEETS: dict[str, list[list[str]]] = {
    "Users": [
        ["emailAddress", "role", "firstName", "lastName", "directManagerEmail", "tags", "aliases"],
        ["li.wei@example.com", "Participant", "Li", "Wei", "maria.lopez@example.com", "AE|APAC", "LW-7"],
        ["maria.lopez@example.com", "LimitedAdmin", "María", "López", "", "Sales|EMEA", "ML-001"],
        ["sam.carter@example.com", "Participant", "Sam", "Carter", "maria.lopez@example.com", "AE|EMEA", ""],
    ],
    "Teams": [
        ["name", "description", "parentTeam", "managerEmail", "managerCanViewResults", "managerCanViewCredits",
         "membersCanViewCredits"],
        ["EMEA Sales", "Europe, Middle East and Africa", "Sales", "maria.lopez@example.com", "true", "true", "false"],
        ["Sales", "Every quota-carrying team", "", "", "false", "false", "false"],
    ],  # fmt: skip
    "Memberships": [
        ["teamName", "emailAddress", "validFrom", "validTo"],
        ["EMEA Sales", "sam.carter@example.com", "2026-01-01", ""],
        ["EMEA Sales", "li.wei@example.com", "2026-01-01", "2026-07-01"],
    ],
    "CustomVariables": [
        ["targetType", "target", "name", "value", "startDate", "endDate"],
        ["User", "sam.carter@example.com", "Quota", "120000", "2026-01-01T00:00:00", "2027-01-01T00:00:00"],
        ["User", "sam.carter@example.com", "Region", "North", "", ""],
        ["Team", "EMEA Sales", "Target", "1.5", "2026-01-01T00:00:00", ""],
    ],
}


def write(path: Path) -> None:
    """The example workbook at ``path``; every cell is text, as an export writes it."""
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False})
    book.set_properties({"created": None})  # no creation time: the file is the same each time it is made
    bold = book.add_format({"bold": True})
    for name, rows in SHEETS.items():
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, rows[0], bold)
        for r, row in enumerate(rows[1:], 1):
            for c, value in enumerate(row):
                if value:
                    sheet.write_string(r, c, value)
        sheet.freeze_panes(1, 0)
    book.close()


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("example-import.xlsx"))
