"""The list pages' Export links (README.md, "Exports"): each keeps the page's search and filters, and the web
route answers with the same file as the API for a signed-in administrator, never for a participant."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from payroster.db.engine import Database
from tests.conftest import BACKENDS, WS
from tests.web.conftest import http_login, make_user


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Plain HTTP against the live server: both databases (the browser journeys run on SQLite only)."""
    return str(request.param)


@contextlib.contextmanager
def signed_in(base_url: str, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert http_login(client, email).status_code == 303
        yield client


@pytest.fixture
def limited(base_url: str, ws: WS, db: Database, client: httpx.Client) -> Iterator[httpx.Client]:
    """A signed-in LimitedAdmin, in a workspace with a few users and a team."""
    rows = [
        {"emailAddress": "ann@acme.example", "role": "Participant", "firstName": "Ann", "tags": ["West"]},
        {"emailAddress": "ben@acme.example", "role": "Participant", "firstName": "=Ben", "tags": ["East"]},
        {"emailAddress": "cat@acme.example", "role": "Deactivated"},
    ]
    client.post("/api/v1/users", json={"emailAddress": "cat@acme.example", "role": "Participant"}, headers=ws.headers)
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    client.post("/api/v1/teams", json={"name": "West Coast"}, headers=ws.headers).raise_for_status()
    make_user(db, ws.id, "lim@acme.example", "LimitedAdmin")
    with signed_in(base_url, "lim@acme.example") as c:
        yield c


def links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="(/exports/[^"]+)"', page)]


def test_users_page_links_keep_its_filters_and_serve_the_filtered_file(limited: httpx.Client) -> None:
    page = limited.get("/users", params={"q": "west", "status": "all", "role": "Participant"}).text
    assert links(page) == [
        "/exports/users.csv?q=west&status=all&role=Participant",
        "/exports/users.xlsx?q=west&status=all&role=Participant",
    ]
    r = limited.get(links(page)[0])
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows] == ["emailAddress", "ann@acme.example"]
    everyone = limited.get("/exports/users.csv", params={"status": "active"}).content.decode("utf-8-sig")
    assert "'=Ben" in everyone and "cat@acme.example" not in everyone
    assert limited.get(links(page)[1]).content.startswith(b"PK")  # a zip: the XLSX workbook


def test_every_list_page_links_its_exports(limited: httpx.Client, ws: WS, client: httpx.Client) -> None:
    team = client.get("/api/v1/teams", params={"name": "West Coast"}, headers=ws.headers).json()["id"]
    user = client.get("/api/v1/users", params={"emailAddress": "ann@acme.example"}, headers=ws.headers).json()["id"]
    expected = {
        "/teams?q=we": "/exports/teams.csv?q=we",
        "/settings/activity?action=user.created&since=2026-01-01": (
            "/exports/audit-events.csv?actor=&action=user.created&target=&since=2026-01-01&until="
        ),
        f"/teams/{team}?tab=members": f"/exports/memberships.csv?team={team}",
        f"/teams/{team}?tab=custom": f"/exports/custom-variables.csv?target={team}",
        f"/teams/{team}?tab=activity": f"/exports/audit-events.csv?target={team}",
        f"/users/{user}?tab=teams": f"/exports/memberships.csv?user={user}",
        f"/users/{user}?tab=custom": f"/exports/custom-variables.csv?target={user}",
        f"/users/{user}?tab=activity": f"/exports/audit-events.csv?target={user}",
    }
    for page, link in expected.items():
        found = links(limited.get(page).text)
        assert link in found, (page, found)
        assert limited.get(link).status_code == 200, link
    assert "/exports/memberships.csv?" in links(limited.get("/teams").text)


def test_a_participant_gets_no_export(base_url: str, ws: WS, db: Database) -> None:
    own = make_user(db, ws.id, "par@acme.example", "Participant")
    with signed_in(base_url, "par@acme.example") as c:
        for kind in ("users", "teams", "memberships", "custom-variables", "audit-events"):
            r = c.get(f"/exports/{kind}.csv")
            assert r.status_code == 403 and "Not allowed" in r.text
            assert "emailAddress" not in r.text
        for tab in ("teams", "custom", "activity"):  # their own profile's tabs show no Export link
            mine = c.get(f"/users/{own}", params={"tab": tab})
            assert mine.status_code == 200 and "/exports/" not in mine.text
    with httpx.Client(base_url=base_url) as anonymous:
        r = anonymous.get("/exports/users.csv")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert anonymous.get("/exports/people.csv").status_code == 404


def test_a_cell_too_long_for_excel_is_a_page_saying_so(limited: httpx.Client, ws: WS, client: httpx.Client) -> None:
    many = [{"emailAddress": f"b{i:04}@acme.example", "role": "Participant"} for i in range(1010)]
    assert client.post("/api/v1/users:bulk", json=many, headers=ws.headers).status_code == 200
    aliases = [f"z{i:03}" + "a" * 250 for i in range(140)]
    long = {"emailAddress": "zed@acme.example", "role": "Participant", "aliases": aliases}
    assert client.post("/api/v1/users", json=long, headers=ws.headers).status_code == 201
    # Beyond the first 1,000 rows of the file, the aliases cell is refused before the first byte, with the reason.
    refused = limited.get("/exports/users.xlsx", params={"status": "all"})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    text = html.unescape(refused.text)
    assert f"the aliases of zed@acme.example (column aliases): {len('|'.join(aliases)):,} characters" in text
    assert "export as CSV" in text
    kept = limited.get("/exports/users.csv", params={"status": "all"})
    assert kept.status_code == 200 and "|".join(aliases) in kept.text
