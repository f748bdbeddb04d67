"""The API's import door (README.md, "Imports"): ``POST /api/v1/imports/{kind}`` with the file as the body, on a
real server over both databases: rows created with their audit events, a bad file a 422 naming every bad cell and
writing nothing, a dry run writing nothing, full administrators only, the key's own workspace only, a file over
``PAYROSTER_IMPORT_MAX_BYTES`` a 413 (declared or not), a workbook of the four sheets; and Users > Import under the
same cap."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import xlsxwriter

from payroster.config import Settings
from payroster.db.engine import Database
from payroster.services import apikeys, passwords, users
from payroster.services.context import Actor
from tests.conftest import WS
from tests.web.conftest import PASSWORD, csrf_of, http_login

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def users_csv(n: int, start: int = 0, role: str = "Participant") -> bytes:
    lines = ["emailAddress,role,firstName,tags"]
    lines += [f"rep{i:04d}@acme.example,{role},Rep {i},West|AE" for i in range(start, start + n)]
    return ("\r\n".join(lines) + "\r\n").encode()


def post(client: httpx.Client, ws: WS, kind: str, content: bytes, media: str | None = CSV, **params: str) -> Any:
    headers = {**ws.headers, **({"Content-Type": media} if media else {})}
    return client.post(f"/api/v1/imports/{kind}", content=content, headers=headers, params=params)


def emails(client: httpx.Client, ws: WS) -> list[str]:
    """Every user's e-mail in ``ws``, read through the users export."""
    got = client.get("/api/v1/exports/users.csv", headers=ws.headers)
    assert got.status_code == 200, got.text
    return [row["emailAddress"] for row in csv.DictReader(io.StringIO(got.content.decode("utf-8-sig")))]


def events(client: httpx.Client, ws: WS, action: str) -> list[dict[str, str]]:
    got = client.get("/api/v1/exports/audit-events.csv", headers=ws.headers, params={"action": action})
    assert got.status_code == 200, got.text
    return list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))


def test_a_csv_creates_users_with_their_audit_events(client: httpx.Client, ws: WS) -> None:
    done = post(client, ws, "users", users_csv(250))
    assert done.status_code == 200, done.text
    assert done.json() == {"dryRun": False, "sheets": {"Users": {"rows": 250, "created": 250, "updated": 0,
                                                                "unchanged": 0}}}  # fmt: skip
    assert sum(e.endswith("@acme.example") for e in emails(client, ws)) == 250
    made = events(client, ws, "user.created")
    assert sum(e["channel"] == "api" for e in made) == 250
    again = post(client, ws, "users", users_csv(250), media="text/plain")  # the same file: nothing changes
    assert again.json()["sheets"]["Users"] == {"rows": 250, "created": 0, "updated": 0, "unchanged": 250}
    # Tab-separated, told by the format parameter over an unhelpful Content-Type.
    tsv = users_csv(3, start=900).replace(b",", b"\t")
    assert post(client, ws, "users", tsv, media="application/octet-stream", format="tsv").status_code == 200
    assert "rep0902@acme.example" in emails(client, ws)


def test_a_bad_file_names_every_bad_cell_and_writes_nothing(client: httpx.Client, ws: WS) -> None:
    rows = users_csv(2000).decode().splitlines()
    rows[5] = "not-an-email,Participant,X,"
    rows[1500] = "ok1500@acme.example,Boss,Y,"
    bad = post(client, ws, "users", "\r\n".join(rows).encode())
    assert bad.status_code == 422, bad.text
    error = bad.json()["error"]
    assert error["message"].startswith("2 problems in the file; nothing was written")
    targets = [d["target"] for d in error["details"]]
    assert targets == ["line 6, emailAddress", "line 1501, role"]
    assert emails(client, ws) == ["admin@example.com"]
    # Many bad rows: the first 1,000 listed, every one counted.
    many = users_csv(1500, role="Nobody")
    capped = post(client, ws, "users", many).json()["error"]
    assert capped["message"] == "1,500 problems in the file; nothing was written (the first 1,000 are listed)"
    assert len(capped["details"]) == 1000
    # A problem only the database shows (a membership naming a team that does not exist) rolls everything back.
    unknown = post(client, ws, "memberships", b"teamName,emailAddress\r\nNowhere,admin@example.com\r\n")
    assert unknown.status_code == 422
    assert [d["target"] for d in unknown.json()["error"]["details"]] == ["line 2, teamName"]
    # A file that is not what its type says, and a type no spreadsheet has.
    assert post(client, ws, "users", users_csv(1), media=XLSX).status_code == 422
    refused = post(client, ws, "users", users_csv(1), media="application/json")
    assert refused.status_code == 415 and "format=csv" in refused.json()["error"]["message"]
    assert emails(client, ws) == ["admin@example.com"]


def test_a_dry_run_counts_and_writes_nothing(client: httpx.Client, ws: WS) -> None:
    dry = post(client, ws, "users", users_csv(40), dryRun="true")
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"dryRun": True, "sheets": {"Users": {"rows": 40, "created": 40, "updated": 0,
                                                               "unchanged": 0}}}  # fmt: skip
    assert emails(client, ws) == ["admin@example.com"]
    assert [e for e in events(client, ws, "user.created") if e["channel"] == "api"] == []
    bad = post(client, ws, "users", b"emailAddress,role\r\nx@acme.example,Boss\r\n", dryRun="true")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["target"] == "line 2, role"


def key_of(client: httpx.Client, db: Database, ws: WS, email: str, role: str) -> dict[str, str]:
    made = client.post("/api/v1/users", json={"emailAddress": email, "role": role}, headers=ws.headers)
    with db.write(ws.id) as s:
        return {"X-ApiKey": apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(made.json()["id"]), "k")[0]}


def test_roles_and_workspaces(client: httpx.Client, db: Database, ws: WS, ws_b: WS) -> None:
    limited = key_of(client, db, ws, "lim@acme.example", "LimitedAdmin")
    participant = key_of(client, db, ws, "par@acme.example", "Participant")
    for headers in (limited, participant):
        for kind in ("users", "teams", "memberships", "custom-variables", "workbook"):
            refused = client.post(f"/api/v1/imports/{kind}", content=users_csv(2),
                                  headers={**headers, "Content-Type": CSV})  # fmt: skip
            assert refused.status_code == 403, refused.text
    assert client.post("/api/v1/imports/users", content=users_csv(2), headers={"Content-Type": CSV}).status_code == 401
    # B's file names A's people by e-mail: B gets its own users; A's are untouched, and so is A's team.
    assert client.post("/api/v1/teams", json={"name": "West"}, headers=ws.headers).status_code == 201
    before_a = emails(client, ws)
    both = b"emailAddress,role,firstName\r\nlim@acme.example,Participant,Borrowed\r\nnew@bravo.example,Participant,\r\n"
    done = post(client, ws_b, "users", both)
    assert done.json()["sheets"]["Users"]["created"] == 2
    assert emails(client, ws) == before_a
    assert sorted(emails(client, ws_b)) == ["boss@bravo.example", "lim@acme.example", "new@bravo.example"]
    lim = client.get("/api/v1/users", params={"emailAddress": "lim@acme.example"}, headers=ws.headers).json()
    assert lim["role"] == "LimitedAdmin" and lim["firstName"] is None
    # A's team is not B's: B's membership naming it is refused, and A's team keeps no member.
    member = post(client, ws_b, "memberships", b"teamName,emailAddress\r\nWest,new@bravo.example\r\n")
    assert member.status_code == 422 and member.json()["error"]["details"][0]["target"] == "line 2, teamName"
    assert client.get("/api/v1/exports/memberships.csv", headers=ws.headers).content.count(b"\n") == 1


@pytest.fixture
def small_cap(http_server: Any, settings: Settings, db: Database, base_url: str) -> Iterator[int]:
    """The live server with ``PAYROSTER_IMPORT_MAX_BYTES`` of 64 KiB."""
    from payroster.app import create_app

    cap = 64 << 10
    switch, _ = http_server
    switch.app = create_app(settings.model_copy(update={"import_max_bytes": cap}), db)
    yield cap


def test_a_file_over_the_cap_is_a_413_and_writes_nothing(client: httpx.Client, ws: WS, small_cap: int) -> None:
    big = users_csv(3000)
    assert len(big) > small_cap
    declared = post(client, ws, "users", big)
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["message"] == f"request body larger than {small_cap} bytes"

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while reading
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = client.post("/api/v1/imports/users", content=chunks(), headers={**ws.headers, "Content-Type": CSV})
    assert streamed.status_code == 413, streamed.text
    assert emails(client, ws) == ["admin@example.com"]
    assert post(client, ws, "users", users_csv(100)).status_code == 200  # under the cap


def workbook_bytes(tmp: Path) -> bytes:
    path = tmp / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheets = {
        "Users": [["emailAddress", "role", "directManagerEmail"],
                  ["ann@acme.example", "Participant", "bo@acme.example"], ["bo@acme.example", "LimitedAdmin", ""]],
        "Teams": [["name", "parentTeam", "managerEmail"], ["West", "Sales", "bo@acme.example"], ["Sales", "", ""]],
        "Memberships": [["teamName", "emailAddress", "validFrom"], ["West", "ann@acme.example", "2026-01-01"]],
        "CustomVariables": [["targetType", "target", "name", "value"], ["User", "ann@acme.example", "Quota", "1200"]],
    }  # fmt: skip
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
    book.close()
    return path.read_bytes()


def test_a_workbook_imports_every_sheet(client: httpx.Client, ws: WS, tmp_path: Path) -> None:
    book = workbook_bytes(tmp_path)
    assert post(client, ws, "workbook", book, media=CSV).status_code == 422  # a zip sent as CSV
    dry = post(client, ws, "workbook", book, media=XLSX, dryRun="true")
    assert dry.status_code == 200, dry.text
    assert emails(client, ws) == ["admin@example.com"]
    done = post(client, ws, "workbook", book, media=XLSX)
    assert done.status_code == 200, done.text
    assert done.json() == dry.json() | {"dryRun": False}
    counts = {k: (v["rows"], v["created"]) for k, v in done.json()["sheets"].items()}
    assert counts == {"Users": (2, 2), "Teams": (2, 2), "Memberships": (1, 1), "CustomVariables": (1, 1)}
    ann = client.get("/api/v1/users", params={"emailAddress": "ann@acme.example"}, headers=ws.headers).json()
    bo = client.get("/api/v1/users", params={"emailAddress": "bo@acme.example"}, headers=ws.headers).json()
    assert ann["directManagerId"] == bo["id"]
    west = client.get("/api/v1/teams", params={"name": "West"}, headers=ws.headers).json()
    assert west["managerId"] == bo["id"]
    quota = client.get(f"/api/v1/custom-variables/{ann['id']}", headers=ws.headers).json()
    assert [(v["name"], v["value"]) for v in quota] == [("Quota", 1200)]
    # One sheet of a workbook as one kind's file, by the format parameter.
    users_only = post(client, ws, "users", book, media="application/octet-stream", format="xlsx")
    assert users_only.json()["sheets"] == {"Users": {"rows": 2, "created": 0, "updated": 0, "unchanged": 2}}


def test_the_import_page_takes_a_file_larger_than_the_bulk_cap_and_keeps_the_import_cap(
    base_url: str, http_server: Any, settings: Settings, db: Database, ws: WS
) -> None:
    """Users > Import reads the file from disk (the bulk cap, 2 KiB here, bounds its fields only), previews a file
    too large to carry back without an Apply button, applies it at once when asked, and refuses a form over the
    import cap (16 KiB here)."""
    from payroster.app import create_app

    switch, _ = http_server
    switch.app = create_app(settings.model_copy(update={"import_max_bytes": 16 << 10, "max_bulk_bytes": 2 << 10}), db)
    with db.write() as s:
        users.set_password_hash(s, users.get(s, ws.id, uuid.UUID(ws.admin_id)), passwords.hash_password(PASSWORD))
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        assert http_login(browser, "admin@example.com").status_code == 303
        content = users_csv(100)
        assert 2 << 10 < len(content) < 16 << 10
        token = csrf_of(browser.get("/imports").text)
        # Previewed: counted, but too large for the page to carry back (1.5 KiB of a 2 KiB field, in base64).
        preview = browser.post("/imports", data={"csrf_token": token, "kind": "users"},
                               files={"file": ("users.csv", content, CSV)})  # fmt: skip
        assert preview.status_code == 200, preview.text
        assert 'id="resend"' in preview.text and 'id="import-apply"' not in preview.text
        assert (
            '<td data-label="Sheet">Users</td><td data-label="Rows">100</td><td data-label="Created">100</td>'
            in preview.text
        )
        form = {"csrf_token": token, "kind": "users", "apply": "1"}
        done = browser.post("/imports", data=form, files={"file": ("users.csv", content, CSV)})
        assert done.status_code == 303, done.text
        assert "Users: 100 rows, 100 created" in browser.get(done.headers["location"]).text
        # A bad cell in a file too large to carry back: the problems are listed, no fix-up grid whose re-check
        # would have no file to read, and the page says to upload it again.
        bad = users_csv(100, 200).replace(b"Participant", b"Boss", 1)
        refused = browser.post("/imports", data={"csrf_token": token, "kind": "users"},
                               files={"file": ("users.csv", bad, CSV)})  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert 'id="fix-too-large"' in refused.text and 'id="fix-form"' not in refused.text
        assert "line 2, role" in refused.text
        over = browser.post("/imports", data=form, files={"file": ("users.csv", users_csv(400, 500), CSV)})
        assert over.status_code == 413
    with db.read() as s:
        assert users.find_by_email(s, ws.id, "rep0500@acme.example") is None


def test_imports_count_against_the_key_rate_limit(
    client: httpx.Client, http_server: Any, settings: Settings, db: Database, ws: WS
) -> None:
    """An import is one request of the key's budget, as every API write: ``1/minute`` allows a burst of two."""
    from payroster.app import create_app

    switch, _ = http_server
    switch.app = create_app(settings.model_copy(update={"rate_limit_per_key": "1/minute"}), db)
    answers = [post(client, ws, "users", users_csv(2, start=10 * n)) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) > 0
    with db.read() as s:
        assert users.find_by_email(s, ws.id, "rep0010@acme.example") is not None
        assert users.find_by_email(s, ws.id, "rep0020@acme.example") is None
