"""A browser journey in headless Chromium: filter the users page, export it as CSV and as XLSX, open the files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import openpyxl
import pytest
from playwright.sync_api import Page, expect

from payroster.db.engine import Database
from tests.conftest import WS
from tests.web.conftest import Shots, browser_login, make_user


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level export tests cover PostgreSQL too."""
    return "sqlite"


def test_export_the_filtered_users_page_and_open_the_files(
    page: Page, base_url: str, shots: Shots, ws: WS, db: Database, client: httpx.Client
) -> None:
    rows = [
        {"emailAddress": "zoe@acme.example", "role": "Participant", "firstName": "Zoë", "tags": ["West"]},
        {"emailAddress": "max@acme.example", "role": "Participant", "firstName": "=Max", "tags": ["West", "AE"]},
        {"emailAddress": "ida@acme.example", "role": "Participant", "firstName": "Ida", "tags": ["East"]},
    ]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    make_user(db, ws.id, "lim@acme.example", "LimitedAdmin")
    browser_login(page, base_url, "lim@acme.example")
    page.goto(base_url + "/users")
    page.get_by_label("Search").fill("west")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#user-count")).to_have_text("2 users")
    shots(page, "filtered-users")

    with page.expect_download() as got:
        page.locator("#export-users").get_by_role("link", name="CSV").click()
    download = got.value
    assert download.suggested_filename.startswith("payroster-users-") and download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table == [
        ["emailAddress", "role", "firstName", "lastName", "directManagerEmail", "tags", "aliases"],
        ["max@acme.example", "Participant", "'=Max", "", "", "West|AE", ""],
        ["zoe@acme.example", "Participant", "Zoë", "", "", "West", ""],
    ]

    with page.expect_download() as got:
        page.locator("#export-users").get_by_role("link", name="Excel (XLSX)").click()
    assert got.value.suggested_filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(Path(got.value.path()).read_bytes()), read_only=True)
    cells = [["" if v is None else v for v in row] for row in book["Users"].iter_rows(values_only=True)]
    book.close()
    assert cells == table
    # Downloading left the filtered page as it was.
    expect(page.locator("#user-count")).to_have_text("2 users")
    shots(page, "after-downloads")
