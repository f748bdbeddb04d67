"""Users > Import (README.md, "Imports"): upload or paste, see every problem or what would change, then apply; a
hostile workbook is a page naming the problem, never a 500; a participant cannot import."""

from __future__ import annotations

import base64
import contextlib
import html
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from payroster.db.engine import Database
from tests.conftest import WS
from tests.web.conftest import csrf_of, http_login, make_user

EXAMPLE = Path(__file__).parents[2] / "docs" / "example-import.xlsx"
TEAMS = '<td data-label="Sheet">Teams</td><td data-label="Rows">{}</td><td data-label="Created">{}</td>'


@contextlib.contextmanager
def signed_in(base_url: str, db: Database, ws: WS, role: str = "FullAdmin") -> Iterator[httpx.Client]:
    make_user(db, ws.id, f"{role.lower()}@acme.example", role)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert http_login(client, f"{role.lower()}@acme.example").status_code == 303
        yield client


def post(client: httpx.Client, kind: str, name: str, content: bytes) -> httpx.Response:
    token = csrf_of(client.get("/imports").text)
    return client.post("/imports", data={"csrf_token": token, "kind": kind}, files={"file": (name, content)})


def test_preview_then_apply_a_workbook(base_url: str, db: Database, ws: WS, client: httpx.Client) -> None:
    with signed_in(base_url, db, ws) as admin:
        preview = post(admin, "workbook", "example.xlsx", EXAMPLE.read_bytes())
        assert preview.status_code == 200, preview.text
        assert 'id="preview"' in preview.text and TEAMS.format(2, 2) in preview.text
        # Previewing wrote nothing.
        assert client.get("/api/v1/teams", params={"name": "Sales"}, headers=ws.headers).status_code == 404
        form = preview.text[preview.text.index('id="apply-form"') :]
        payload = html.unescape(re.search(r'name="payload" value="([^"]*)"', form).group(1))  # type: ignore[union-attr]
        assert base64.b64decode(payload) == EXAMPLE.read_bytes()
        done = admin.post(
            "/imports",
            data={"csrf_token": csrf_of(form), "kind": "workbook", "payload": payload, "apply": "1"},
        )
        assert done.status_code == 303 and done.headers["location"].startswith("/imports")
        assert "Imported." in admin.get(done.headers["location"]).text
    team = client.get("/api/v1/teams", params={"name": "EMEA Sales"}, headers=ws.headers)
    assert team.status_code == 200 and team.json()["managerCanViewResults"] is True


def test_bad_cells_and_hostile_files_are_listed_never_a_500(
    base_url: str, db: Database, ws: WS, client: httpx.Client
) -> None:
    with signed_in(base_url, db, ws) as admin:
        bad = post(admin, "memberships", "m.csv", b"teamName;emailAddress;validFrom\nSales;nobody;31/12/2026\n")
        assert bad.status_code == 422
        assert "line 2, emailAddress" in bad.text and "line 2, validFrom" in bad.text

        bomb = io.BytesIO()
        with zipfile.ZipFile(EXAMPLE) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                out.writestr(info, source.read(info))
            with out.open("xl/worksheets/huge.xml", "w", force_zip64=True) as part:
                for _ in range(64):
                    part.write(b" " * 2**20)
        refused = post(admin, "workbook", "bomb.xlsx", bomb.getvalue())
        assert refused.status_code == 422 and "compression bomb" in refused.text

        garbage = post(admin, "teams", "t.xlsx", b"PK\x03\x04 not really a zip")
        assert garbage.status_code == 422 and "not an XLSX workbook" in garbage.text

        utf16 = post(admin, "teams", "t.txt", "name\tdescription\nÉquipe\tcafé\n".encode("utf-16"))
        assert utf16.status_code == 200 and TEAMS.format(1, 1) in utf16.text
    assert client.get("/api/v1/teams", params={"name": "Équipe"}, headers=ws.headers).status_code == 404

    with signed_in(base_url, db, ws, "Participant") as participant:
        assert participant.get("/imports").status_code == 403
