"""Users > Import in headless Chromium at 1366 and 390 wide (README.md, "Imports"): a teams, memberships or custom
variables file (or a workbook's sheet) with bad cells shows those rows as a grid of inputs, the bad cells marked and
the problem beside them; fixed there and re-checked without uploading again (the cells typed before are kept), it
imports once every row is valid, and nothing is written before. The teams journey runs without JavaScript."""

from __future__ import annotations

import io

import openpyxl
import pytest
from playwright.sync_api import Page, expect

from payroster.db.engine import Database
from tests.conftest import WS
from tests.web.conftest import Look, browser_login, make_user


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level page tests cover PostgreSQL too."""
    return "sqlite"


def upload(page: Page, base_url: str, kind: str, name: str, content: bytes) -> None:
    page.goto(base_url + "/imports")
    page.get_by_label("The file holds").select_option(label=kind)
    page.get_by_label("File (CSV, TSV or XLSX)").set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": content}
    )
    page.get_by_role("button", name="Preview").click()


def problems_of(page: Page, place: str) -> str:
    row = page.locator(f'tr[data-place="{place}"]')
    return row.locator(".problems-cell").inner_text()


def test_a_teams_file_fixed_in_the_grid_without_javascript(
    nojs: Page, base_url: str, plain_look: Look, ws: WS, db: Database, client: object
) -> None:
    page = nojs
    make_user(db, ws.id, "chief@acme.example", "FullAdmin")
    browser_login(page, base_url, "chief@acme.example")
    upload(page, base_url, "Teams", "teams.csv", (
        b"name,description,parentTeam,managerCanViewResults\n"
        b"Sales,Everyone selling,,maybe\n"
        b"West,West coast,Nowhere,true\n"
    ))  # fmt: skip
    # The cell the first pass refuses: marked, its problem beside it, its row's other cells editable too.
    expect(page.locator("#problems")).to_contain_text("Nothing was imported")
    bad = page.get_by_label("line 2 managerCanViewResults")
    expect(bad).to_have_value("maybe")
    expect(bad).to_have_attribute("aria-invalid", "true")
    assert "managerCanViewResults must be true or false" in problems_of(page, "line 2")
    expect(page.get_by_label("line 2 description")).to_have_value("Everyone selling")
    plain_look(page, "teams-bad-cell")
    bad.fill("true")
    page.get_by_role("button", name="Re-check").click()
    # Line 2 is fine now; what the database sees comes next: a parent no team has as its name.
    expect(page.locator('tr[data-place="line 2"]')).to_have_count(0)
    expect(page.get_by_label("line 3 parentTeam")).to_have_attribute("aria-invalid", "true")
    assert "no team of this workspace has this name" in problems_of(page, "line 3")
    plain_look(page, "teams-unknown-parent")
    page.get_by_label("line 3 parentTeam").fill("Sales")
    page.get_by_role("button", name="Re-check").click()
    expect(page.locator("#preview")).to_contain_text("Ready to import")
    expect(page.locator("#preview tbody tr").first).to_contain_text("Teams")
    assert [c.inner_text() for c in page.locator("#preview tbody td").all()][1:3] == ["2", "2"]
    plain_look(page, "teams-ready")
    # Nothing was written by the previews.
    page.goto(base_url + "/teams")
    expect(page.get_by_role("link", name="Sales", exact=True)).to_have_count(0)
    page.go_back()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".notice")).to_contain_text("Imported. Teams: 2 rows, 2 created")
    page.goto(base_url + "/teams")
    page.get_by_role("link", name="West", exact=True).click()
    # Both fixes applied: line 2's (kept while line 3 was fixed) and line 3's.
    expect(page.locator("main")).to_contain_text("Sales")
    page.goto(base_url + "/teams")
    page.get_by_role("link", name="Sales", exact=True).first.click()
    expect(page.locator("main")).to_contain_text("Everyone selling")
    flags = page.locator("dt", has_text="Manager can view results").locator("xpath=following-sibling::dd[1]")
    expect(flags).to_have_text("Yes")


def test_a_memberships_file_fixed_in_the_grid(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "chief@acme.example", "FullAdmin")
    make_user(db, ws.id, "ann@acme.example", "Participant")
    make_user(db, ws.id, "bo@acme.example", "Participant")
    browser_login(page, base_url, "chief@acme.example")
    upload(page, base_url, "Teams", "t.csv", b"name\nSales\n")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".notice")).to_contain_text("Imported.")

    upload(page, base_url, "Memberships", "m.csv", (
        b"teamName;emailAddress;validFrom;validTo\n"
        b"Sales;ann@acme.example;31/12/2026;\n"
        b"Sales;nobody@acme.example;2026-01-01;2026-12-31\n"
    ))  # fmt: skip
    expect(page.get_by_label("line 2 validFrom")).to_have_attribute("aria-invalid", "true")
    assert "validFrom" in problems_of(page, "line 2")
    look(page, "memberships-bad-date")
    page.get_by_label("line 2 validFrom").fill("2026-01-01")
    page.get_by_role("button", name="Re-check").click()
    expect(page.get_by_label("line 3 emailAddress")).to_have_attribute("aria-invalid", "true")
    assert "no user of this workspace has this e-mail" in problems_of(page, "line 3")
    page.get_by_label("line 3 emailAddress").fill("bo@acme.example")
    page.get_by_role("button", name="Re-check").click()
    expect(page.locator("#preview")).to_contain_text("Memberships")
    look(page, "memberships-ready")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".notice")).to_contain_text("Memberships: 2 rows, 2 created")
    page.goto(base_url + "/teams")
    page.get_by_role("link", name="Sales", exact=True).first.click()
    page.get_by_role("link", name="Members").first.click()
    page.get_by_label("As of").fill("2026-06-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#members")).to_contain_text("ann@acme.example")
    expect(page.locator("#members")).to_contain_text("bo@acme.example")


def test_a_workbooks_custom_variables_sheet_fixed_in_the_grid(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "chief@acme.example", "FullAdmin")
    browser_login(page, base_url, "chief@acme.example")
    book = openpyxl.Workbook()
    teams = book.active
    assert teams is not None
    teams.title = "Teams"
    teams.append(["name", "description"])
    teams.append(["Hunters", "New business"])
    variables = book.create_sheet("CustomVariables")
    variables.append(["targetType", "target", "name", "value", "startDate", "endDate"])
    variables.append(["Squad", "Hunters", "quota", "120000", "2026-01-01", ""])
    variables.append(["Team", "Hunters", "region", "West", "2026-01-01", "2025-01-01"])
    out = io.BytesIO()
    book.save(out)
    upload(page, base_url, "Workbook (Users, Teams, Memberships, CustomVariables sheets)", "book.xlsx", out.getvalue())
    # Two bad rows of the CustomVariables sheet, each with its problem; the Teams sheet is fine.
    grid = page.locator("#bad-custom-variables")
    expect(grid.locator("tr.bad-row")).to_have_count(2)
    expect(page.locator("#bad-teams")).to_have_count(0)
    expect(page.get_by_label("CustomVariables, row 2 targetType")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("CustomVariables, row 3 endDate")).to_have_attribute("aria-invalid", "true")
    assert "targetType must be User or Team" in problems_of(page, "CustomVariables, row 2")
    look(page, "variables-bad-cells")
    page.get_by_label("CustomVariables, row 2 targetType").fill("Team")
    page.get_by_label("CustomVariables, row 3 endDate").fill("")  # emptied: open-ended
    page.get_by_role("button", name="Re-check").click()
    expect(page.locator("#preview")).to_contain_text("CustomVariables")
    look(page, "variables-ready")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".notice")).to_contain_text("CustomVariables: 2 rows, 1 created")
    page.goto(base_url + "/teams")
    page.get_by_role("link", name="Hunters", exact=True).click()
    page.get_by_role("link", name="Custom").first.click()
    table = page.locator("table.custom")
    expect(table).to_contain_text("quota")
    expect(table).to_contain_text("120000")
    expect(table).to_contain_text("region")
