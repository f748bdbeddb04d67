"""The pages' dates (README.md, "Web app"): a user's Teams tab shows past, current and scheduled periods with
"add from/to" and "end on" (POST with CSRF, then a redirect), the Overview the manager's history, a team's
Members tab and the hierarchy an "as of" date (a GET form). Both databases."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from payroster import clock
from payroster.db.engine import Database
from payroster.services import memberships
from tests.conftest import WS
from tests.web.conftest import csrf_of, http_login, make_user

FEB_15 = dt.date(2026, 2, 15)


@pytest.fixture
def admin(base_url: str, ws: WS, db: Database) -> Iterator[httpx.Client]:
    """A signed-in FullAdmin's browser-like client, on 15 February 2026."""
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with clock.frozen(FEB_15), httpx.Client(base_url=base_url, timeout=30) as c:
        assert http_login(c, "chief@example.com").status_code == 303
        yield c


def _post(client: httpx.Client, path: str, **data: str) -> httpx.Response:
    token = csrf_of(client.get("/users").text)
    answer = client.post(path, data={"csrf_token": token, **data})
    assert answer.status_code == 303, answer.text
    return answer


def _team(client: httpx.Client, name: str, **data: str) -> str:
    answer = _post(client, "/teams", name=name, **data)
    return answer.headers["location"].split("/teams/")[1].split("?")[0]


def _rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"')[1].split("</table>")[0]
    rows = ["<tr" + row for row in body.split("<tr")[2:]]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_a_move_on_the_users_teams_tab_and_as_of_views(admin: httpx.Client, ws: WS, db: Database) -> None:
    """Add East from 1 January, end it on 1 March, add West from 1 March: both on the timeline (past is none yet:
    East is current, West scheduled); East's members as of 28 February list the rep, as of 1 March not; the
    hierarchy as of 1 March puts West under Sales."""
    rep = make_user(db, ws.id, "rep@example.com", "Participant", password=None)
    sales = _team(admin, "Sales")
    east, west = _team(admin, "East"), _team(admin, "West")
    body = {"parentTeamId": sales, "effectiveDate": "2026-03-01"}
    moved = httpx.patch(f"{admin.base_url}/api/v1/teams/{west}", json=body, headers=ws.headers)
    assert moved.status_code == 200, moved.text
    _post(admin, f"/users/{rep}/teams", team="East", validFrom="2026-01-01")
    ended = _post(admin, f"/users/{rep}/teams", end=east, validTo="2026-03-01")
    assert "error" not in ended.headers.get("set-cookie", "")
    _post(admin, f"/users/{rep}/teams", team="West", validFrom="2026-03-01")
    page = admin.get(f"/users/{rep}", params={"tab": "teams"}).text
    rows = _rows(page, "user-teams")
    assert rows[0].startswith("East now 2026-01-01 2026-03-01"), rows
    assert rows[1].startswith("West scheduled 2026-03-01 —"), rows
    assert page.count('class="bar ') == 2 and 'data-left="' in page
    assert page.count('name="end"') == 2 and 'name="validFrom"' in page
    feb = admin.get(f"/teams/{east}", params={"tab": "members", "asOf": "2026-02-28"}).text
    assert "rep@example.com" in " ".join(_rows(feb, "members")) and 'value="2026-02-28"' in feb
    assert "2026-01-01 2026-03-01" in " ".join(_rows(feb, "members"))
    march = admin.get(f"/teams/{east}", params={"tab": "members", "asOf": "2026-03-01"}).text
    assert "rep@example.com" not in march and "No members on 2026-03-01" in march
    assert "rep@example.com" in admin.get(f"/teams/{east}", params={"tab": "members"}).text  # today: 15 February
    today_tree = admin.get("/teams/hierarchy").text
    later_tree = admin.get("/teams/hierarchy", params={"asOf": "2026-03-01"}).text
    assert _nested(today_tree, "Sales", "West") is False
    assert _nested(later_tree, "Sales", "West") is True
    assert 'value="2026-03-01"' in later_tree
    assert (_nested(today_tree, "East", "rep"), _nested(today_tree, "West", "rep")) == (True, False)
    assert (_nested(later_tree, "East", "rep"), _nested(later_tree, "West", "rep")) == (False, True)
    with db.read() as s:
        held = memberships.of_user(s, ws.id, uuid.UUID(rep))
    assert [(str(p.team_id), p.valid_from, p.valid_to) for p in held] == [
        (east, dt.date(2026, 1, 1), dt.date(2026, 3, 1)),
        (west, dt.date(2026, 3, 1), None),
    ]


def _nested(html: str, parent: str, child: str) -> bool:
    """Whether ``child``'s entry sits inside ``parent``'s list item of the tree."""
    tree = html.split('id="hierarchy"')[1]
    start = tree.index(f">{parent}</a>")
    depth, i = 0, start
    while True:  # the end of parent's <li>
        opening, closing = tree.find("<li", i), tree.find("</li>", i)
        if opening != -1 and opening < closing:
            depth, i = depth + 1, opening + 3
        elif depth == 0:
            return f">{child}</a>" in tree[start:closing]
        else:
            depth, i = depth - 1, closing + 5


def test_manager_history_on_the_overview(admin: httpx.Client, ws: WS, db: Database) -> None:
    """Two dated managers: both listed with their periods, the scheduled one marked."""
    rep = make_user(db, ws.id, "rep@example.com", "Participant", password=None)
    anna = make_user(db, ws.id, "anna@example.com", "Participant", password=None)
    ben = make_user(db, ws.id, "ben@example.com", "Participant", password=None)
    h = ws.headers
    for who, day in ((anna, "2026-01-01"), (ben, "2026-03-01")):
        body = {"directManagerId": who, "effectiveDate": day}
        r = httpx.patch(f"{admin.base_url}/api/v1/users/{rep}", json=body, headers=h)
        assert r.status_code == 200, r.text
    rows = _rows(admin.get(f"/users/{rep}").text, "manager-history")
    assert rows == [
        "anna@example.com now 2026-01-01 2026-03-01",
        "ben@example.com scheduled 2026-03-01 —",
    ]


def test_bad_dates_on_the_pages(admin: httpx.Client, ws: WS, db: Database) -> None:
    """A bad "as of" shows today's view with a message; a bad "from" or an empty period is refused with one."""
    rep = make_user(db, ws.id, "rep@example.com", "Participant", password=None)
    east = _team(admin, "East")
    page = admin.get(f"/teams/{east}", params={"tab": "members", "asOf": "2026-02-30"})
    assert page.status_code == 200 and "is not a date" in page.text
    assert "is not a date" in admin.get("/teams/hierarchy", params={"asOf": "soon"}).text
    for data in ({"validFrom": "15/02/2026"}, {"validFrom": "2026-03-01", "validTo": "2026-02-01"}):
        answer = _post(admin, f"/users/{rep}/teams", team="East", **data)
        assert 'class="error"' in admin.get(answer.headers["location"]).text
    assert "Not a member of any team." in admin.get(f"/users/{rep}", params={"tab": "teams"}).text
    forged = admin.post(f"/users/{rep}/teams", data={"team": "East"})
    assert forged.status_code == 403


def test_the_explorer_offers_and_runs_at_examples(admin: httpx.Client, ws: WS, db: Database) -> None:
    """The example queries include $at (the last day of the previous month) and $from/$to; one runs in "try it"."""
    rep = make_user(db, ws.id, "rep@example.com", "Participant", password=None)
    _team(admin, "East")
    _post(admin, f"/users/{rep}/teams", team="East", validFrom="2026-01-01")
    page = admin.get("/settings/connections/odata").text
    assert "Teams?$at=2026-01-31&amp;$expand=members($select=emailAddress)" in page
    assert "MembershipPeriods?$from=2026-01-01&amp;$to=2026-02-01" in page
    tried = admin.get("/settings/connections/odata", params={"set": "Teams", "query": "$at=2026-01-31&$expand=members"})
    assert tried.status_code == 200 and "rep@example.com" in tried.text
    refused = admin.get("/settings/connections/odata", params={"set": "AuditEvents", "query": "$at=2026-01-31"})
    assert "has no application time" in refused.text
