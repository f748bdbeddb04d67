"""The reads and the write behind the pages of tests/web/test_admin_flows_more.py, on SQLite and PostgreSQL: the
hierarchy's figures, moving a person between teams, the variables grid and its file, and the pickers' answers
(scoped to the signed-in workspace, a few at a time, admins only)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, MembershipPeriod
from payroster.domain.errors import Invalid
from payroster.services import exports, memberships, teams, teamtree, users, variablegrid, variables
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user
from tests.conftest import WS
from tests.web.conftest import csrf_of, http_login, make_user


def _actor(ws: WS) -> Actor:
    return Actor(ws.id, None, "cli", "cli")


def _team(
    db: Database, ws: WS, name: str, parent: uuid.UUID | None = None, manager: uuid.UUID | None = None
) -> uuid.UUID:
    raw: dict[str, object] = {"name": name}
    if parent:
        raw["parentTeamId"] = str(parent)
    if manager:
        raw["managerId"] = str(manager)
    inp, problems = parse_team(raw, field_pointer())
    assert not problems
    with db.write() as s:
        return teams.upsert(s, _actor(ws), inp)[0].id


def _person(db: Database, ws: WS, email: str, first: str = "", tags: list[str] | None = None) -> uuid.UUID:
    raw: dict[str, object] = {"emailAddress": email, "role": "Participant", "firstName": first or email.split("@")[0]}
    if tags:
        raw["tags"] = tags
    inp, problems = parse_user(raw, field_pointer())
    assert not problems
    with db.write() as s:
        return users.upsert(s, _actor(ws), inp)[0].user.id


def test_hierarchy_figures_count_each_person_once_per_subtree_today_and_on_a_date(db: Database, ws: WS) -> None:
    boss = _person(db, ws, "boss@example.com", "Mia")
    sales = _team(db, ws, "Sales", manager=boss)
    east = _team(db, ws, "East", sales)
    north = _team(db, ws, "North East", east)
    west = _team(db, ws, "West", sales)
    a, b, c = (_person(db, ws, f"{n}@example.com") for n in "abc")
    later = clock.today() + dt.timedelta(days=30)
    with db.write() as s:
        for uid, tid in ((a, sales), (a, east), (b, north), (c, west)):
            memberships.add(s, _actor(ws), uid, tid)
        memberships.move(s, _actor(ws), c, west, north, later)
    with db.read() as s:
        now = teamtree.figures(s, ws.id)
        then = teamtree.figures(s, ws.id, later)
    assert now[sales] == teamtree.Figures(boss, "Mia", 1, 3)
    assert (now[east].direct, now[east].total, now[north].total, now[west].total) == (1, 2, 1, 1)
    assert now[east].manager is None
    assert (then[east].total, then[north].direct, then[west].total, then[sales].total) == (3, 2, 0, 3)


def test_a_move_is_one_change_refused_whole(db: Database, ws: WS) -> None:
    east, west = _team(db, ws, "East"), _team(db, ws, "West")
    rep = _person(db, ws, "rep@example.com")
    today = clock.today()
    with db.write() as s:
        memberships.add(s, _actor(ws), rep, east, today, today + dt.timedelta(days=10))
    before = _state(db, ws)
    for start, target, field in ((today + dt.timedelta(days=20), west, "validFrom"), (today, east, "team")):
        with pytest.raises(Invalid) as refused, db.write() as s:
            memberships.move(s, _actor(ws), rep, east, target, start)
        assert refused.value.details[0].target == field
        assert _state(db, ws) == before  # nothing written, not even the end of the old membership
    with db.write() as s:
        done = memberships.move(s, _actor(ws), rep, east, west, today + dt.timedelta(days=3))
    assert done.done and done.period is not None and done.period.start == today + dt.timedelta(days=3)
    periods, events = _state(db, ws)
    assert periods == [(east, today, today + dt.timedelta(days=3)), (west, today + dt.timedelta(days=3), None)]
    assert events == before[1] + 2


def _state(db: Database, ws: WS) -> tuple[list[tuple[uuid.UUID, dt.date, dt.date | None]], int]:
    with db.read() as s:
        m = MembershipPeriod
        periods = [tuple(r) for r in s.execute(select(m.team_id, m.valid_from, m.valid_to).order_by(m.valid_from))]
        events = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == ws.id)) or 0
    return periods, events  # type: ignore[return-value]


def test_variable_grid_pages_filters_and_file(db: Database, ws: WS, ws_b: WS) -> None:
    west = _team(db, ws, "West")
    ids = []
    for i in range(7):
        uid = _person(db, ws, f"p{i}@example.com", f"P{i}", ["Hunters"] if i % 2 else None)
        ids.append(uid)
        entries = [{"name": "Quota", "value": 10 + i, "startDate": "2027-01-01", "endDate": "2027-04-01"}]
        if i < 5:
            entries.append({"name": "quota", "value": 20 + i, "startDate": "2027-04-01"})
        with db.write() as s:
            variables.replace(s, _actor(ws), uid, variables.parse_entries(entries))
            if i < 4:
                memberships.add(s, _actor(ws), uid, west)
    other = _person(db, ws_b, "else@example.com")
    with db.write() as s:
        variables.replace(
            s, Actor(ws_b.id, None, "cli", "cli"), other,
            variables.parse_entries([{"name": "Quota", "value": 1, "startDate": "2026-01-01"}]),
        )  # fmt: skip
    flt = variablegrid.Filters("QUOTA")
    with db.read() as s:
        assert variablegrid.names(s, ws.id) == ["Quota"]
        starts, rows, total = variablegrid.page(s, ws.id, flt, 2, 3)
        assert total == 7 and starts == [dt.datetime(2027, 1, 1), dt.datetime(2027, 4, 1)]  # not the other's 2026
        assert [(r.email, r.cells) for r in rows] == [
            ("p3@example.com", ["13", "23"]),
            ("p4@example.com", ["14", "24"]),
            ("p5@example.com", ["15", ""]),
        ]
        _, rows, total = variablegrid.page(s, ws.id, variablegrid.Filters("Quota", west, "hunters"), 1, 50)
        assert [r.email for r in rows] == ["p1@example.com", "p3@example.com"] and total == 2
        _, _, everyone = variablegrid.page(s, ws.id, variablegrid.Filters("Quota", missing=True), 1, 50)
        assert everyone == 8  # the workspace's admin too
    text = b"".join(exports.csv_chunks(variablegrid.export(db, ws.id, flt))).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["emailAddress", "name", "2027-01-01 – 2027-04-01", "from 2027-04-01"]
    assert table[1:] == [[f"p{i}@example.com", f"P{i}", str(10 + i), str(20 + i) if i < 5 else ""] for i in range(7)]


def test_pickers_answer_admins_of_the_workspace_only(client: httpx.Client, db: Database, ws: WS, ws_b: WS) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    make_user(db, ws.id, "ana.rep@example.com", "Participant")
    make_user(db, ws_b.id, "ana.other@example.com", "FullAdmin")
    for i in range(12):
        _person(db, ws, f"ana{i:02d}@example.com")
    _team(db, ws, "Sales East")
    _team(db, ws_b, "Sales West")
    assert client.get("/pick/people?q=ana").status_code == 303  # signed out: the log-in page
    http_login(client, "chief@example.com")
    people = client.get("/pick/people?q=ANA")
    assert people.status_code == 200 and people.headers["cache-control"] == "no-store"
    found = [o["value"] for o in people.json()]
    assert len(found) == 10 and "ana.other@example.com" not in found and found == sorted(found)
    assert client.get("/pick/teams?q=sales").json() == [{"value": "Sales East", "label": "Sales East"}]
    assert client.get("/pick/people?q=").json() == []
    assert client.get("/pick/people", params={"q": "x\x00"}).status_code == 400
    with httpx.Client(base_url=str(client.base_url)) as participant:
        http_login(participant, "ana.rep@example.com")
        assert participant.get("/pick/people?q=ana").status_code == 403


def test_moving_to_or_from_another_workspaces_team_changes_nothing(
    client: httpx.Client, db: Database, ws: WS, ws_b: WS
) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    east, theirs = _team(db, ws, "East"), _team(db, ws_b, "Theirs")
    _team(db, ws_b, "West")  # a name only the other workspace has
    rep = _person(db, ws, "rep@example.com")
    with db.write() as s:
        memberships.add(s, _actor(ws), rep, east)
    before = _state(db, ws)
    http_login(client, "chief@example.com")
    token = csrf_of(client.get(f"/users/{rep}?tab=teams").text)
    for leaving, joining in ((str(theirs), "East"), (str(east), "West"), (str(east), "Theirs")):
        answer = client.post(
            f"/users/{rep}/teams/move", data={"csrf_token": token, "from": leaving, "team": joining, "validFrom": ""}
        )
        assert answer.status_code == 303
        assert _state(db, ws) == before
        page = client.get(answer.headers["location"]).text
        assert "move-team-" in page and 'aria-invalid="true"' in page
    other = _person(db, ws_b, "someone@example.com")
    answer = client.post(f"/users/{other}/teams/move", data={"csrf_token": token, "from": str(east), "team": "East"})
    assert answer.status_code == 404
