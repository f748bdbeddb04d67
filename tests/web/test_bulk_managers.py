"""Users > Bulk add reads the manager by e-mail (``directManagerEmail``), the column the users export writes
(README.md, "Web app"): the export is a Bulk add file, a manager may be created by a later row of the same
paste, and an e-mail that names nobody is that row's error in the fix-up grid, nothing applied."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from payroster.db.engine import Database
from tests.conftest import BACKENDS, WS
from tests.web.conftest import csrf_of
from tests.web.test_imports_page import signed_in


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Plain HTTP against the live server: both databases (the browser journeys run on SQLite only)."""
    return str(request.param)


def preview(admin: httpx.Client, text: str) -> httpx.Response:
    token = csrf_of(admin.get("/users/bulk").text)
    return admin.post("/users/bulk", data={"csrf_token": token, "text": text})


def apply(admin: httpx.Client, page: str) -> httpx.Response:
    form = page[page.index('id="apply-form"') :]
    rows = html.unescape(re.search(r'name="rows" value="([^"]*)"', form).group(1))  # type: ignore[union-attr]
    return admin.post("/users/bulk/apply", data={"csrf_token": csrf_of(form), "rows": rows})


def manager_of(client: httpx.Client, ws: WS, email: str) -> str | None:
    found = client.get("/api/v1/users", params={"emailAddress": email}, headers=ws.headers)
    assert found.status_code == 200, found.text
    manager = found.json()["directManagerId"]
    if manager is None:
        return None
    got = client.get(f"/api/v1/users/{manager}", headers=ws.headers)
    return str(got.json()["emailAddress"])


def test_the_users_export_is_a_bulk_add_file(base_url: str, db: Database, ws: WS, client: httpx.Client) -> None:
    rows = [
        {"emailAddress": "boss@acme.example", "role": "Participant", "firstName": "Bo"},
        {"emailAddress": "rep@acme.example", "role": "Participant", "firstName": "Re"},
    ]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    boss = client.get("/api/v1/users", params={"emailAddress": "boss@acme.example"}, headers=ws.headers).json()
    patch = {"emailAddress": "rep@acme.example", "directManagerId": boss["id"]}
    assert client.post("/api/v1/users", json=patch, headers=ws.headers).status_code == 200
    export = client.get("/api/v1/exports/users.csv", headers=ws.headers)
    assert export.status_code == 200 and "directManagerEmail" in export.text.splitlines()[0]
    with signed_in(base_url, db, ws) as admin:
        # Exported, the manager read back by e-mail; the rep's manager changed in the file is changed on apply.
        text = export.content.decode("utf-8-sig").replace(",boss@acme.example,", ",fulladmin@acme.example,")
        page = preview(admin, text)
        assert page.status_code == 200, page.text
        assert "Unknown columns" not in page.text and "match columns" not in page.text
        assert "all valid" in page.text and "1 to update" in page.text
        done = apply(admin, page.text)
        assert done.status_code == 303 and done.headers["location"].startswith("/users")
    assert manager_of(client, ws, "rep@acme.example") == "fulladmin@acme.example"


def test_a_manager_created_later_in_the_paste_and_an_unknown_one(
    base_url: str, db: Database, ws: WS, client: httpx.Client
) -> None:
    with signed_in(base_url, db, ws) as admin:
        text = (
            "Email\tRole\tdirectManagerEmail\n"
            "ann@acme.example\tParticipant\tlead@acme.example\n"
            "cy@acme.example\tParticipant\tghost@acme.example\n"
            "lead@acme.example\tLimitedAdmin\t\n"
        )
        page = preview(admin, text)
        # The unknown e-mail is line 3's error, beside its cell in the fix-up grid; nothing is applied.
        assert page.status_code == 200
        assert "1 row with errors" in page.text
        grid = page.text[page.text.index('id="bad-rows"') :]
        assert 'data-line="3"' in grid and 'data-line="2"' not in grid
        assert "directManagerEmail: no user of this workspace or of these rows has this e-mail" in grid
        assert re.search(r'class="bad-cell"><input aria-label="line 3 directManagerEmail"', grid)
        refused = apply(admin, page.text)
        assert refused.status_code == 422 and "Nothing was applied" in refused.text
        assert (
            client.get("/api/v1/users", params={"emailAddress": "ann@acme.example"}, headers=ws.headers).status_code
            == 404
        )
        # Fixed in the grid (the manager made in the same paste), re-checked, applied.
        form = page.text[page.text.index('<form method="post" action="/users/bulk"') :]
        rows = html.unescape(re.search(r'name="rows" value="([^"]*)"', form).group(1))  # type: ignore[union-attr]
        fixed = admin.post(
            "/users/bulk",
            data={"csrf_token": csrf_of(form), "rows": rows, "cell:1:directManagerEmail": "LEAD@acme.example"},
        )
        summary = re.search(r"<p id=\"summary\">(.*?)</p>", fixed.text, re.S).group(1)  # type: ignore[union-attr]
        assert fixed.status_code == 200 and "all valid" in summary and "3 to create" in summary, summary
        assert apply(admin, fixed.text).status_code == 303
    assert manager_of(client, ws, "ann@acme.example") == "lead@acme.example"
    assert manager_of(client, ws, "cy@acme.example") == "lead@acme.example"
    assert manager_of(client, ws, "lead@acme.example") is None


def test_manager_by_email_and_by_id_together_is_refused(base_url: str, db: Database, ws: WS) -> None:
    with signed_in(base_url, db, ws) as admin:
        me = admin.get("/users", params={"q": "fulladmin"}).text
        assert "fulladmin@acme.example" in me
        text = (
            "emailAddress,role,directManagerEmail,directManagerId\n"
            "dee@acme.example,Participant,fulladmin@acme.example,0192f0b2-7a5c-7d36-9a3b-2b6f6a1c0001\n"
        )
        page = preview(admin, text)
        assert "1 row with errors" in page.text
        assert "give directManagerEmail or directManagerId, not both" in page.text
