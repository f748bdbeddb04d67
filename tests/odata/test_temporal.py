"""The feed's application time (README.md, "OData feed"; OData Extension for Temporal Data 4.0): ``$at`` on the
snapshot sets ``Users``, ``Teams`` and ``TeamMembers``, through navigation and ``$expand``; the timeline sets
``MembershipPeriods``, ``ManagerPeriods`` and ``TeamPeriods`` with ``$from``/``$to``, filtered, paged and counted;
and the options a request cannot combine, each a 400 OData error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payroster import clock
from payroster.db.engine import Database
from payroster.odata import temporal
from payroster.odata.model import SETS
from payroster.odata.query import json_document
from tests.conftest import WS

FEB_15 = dt.date(2026, 2, 15)


@pytest.fixture
def feb_15() -> Iterator[None]:
    """Today is 15 February 2026."""
    with clock.frozen(FEB_15):
        yield


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


@dataclass
class Move:
    """A rep who moves from East to West on 1 March, whose manager changes with the move, and West's parent."""

    ws: WS
    rep: str
    anna: str
    ben: str
    east: str
    west: str
    sales: str


@pytest.fixture
def move(client: httpx.Client, ws: WS, feb_15: None) -> Move:
    h = ws.headers

    def user(email: str) -> str:
        body = {"emailAddress": email, "role": "Participant"}
        return str(ok(client.post("/api/v1/users", json=body, headers=h), 201)["id"])

    def team(name: str, **extra: Any) -> str:
        return str(ok(client.post("/api/v1/teams", json={"name": name, **extra}, headers=h), 201)["id"])

    anna, ben, rep = user("anna@x.com"), user("ben@x.com"), user("rep@x.com")
    sales = team("Sales")
    east, west = team("East", managerId=anna), team("West", managerId=ben)
    ok(client.patch(f"/api/v1/teams/{west}", json={"parentTeamId": sales, "effectiveDate": "2026-03-01"}, headers=h))
    body = {"teamId": east, "systemUserId": rep, "validFrom": "2026-01-01"}
    ok(client.post("/api/v1/team-members", json=body, headers=h), 201)
    ok(client.post("/api/v1/team-members:delete", json={"teamId": east, "systemUserId": rep, "validTo": "2026-03-01"},
                   headers=h))  # fmt: skip
    ok(client.post("/api/v1/team-members", json={"teamId": west, "systemUserId": rep, "validFrom": "2026-03-01"},
                   headers=h), 201)  # fmt: skip
    ok(client.patch(f"/api/v1/users/{rep}", json={"directManagerId": anna, "effectiveDate": "2026-01-01"}, headers=h))
    ok(client.patch(f"/api/v1/users/{rep}", json={"directManagerId": ben, "effectiveDate": "2026-03-01"}, headers=h))
    return Move(ws, rep, anna, ben, east, west, sales)


def feed(client: httpx.Client, m: Move, path: str, **params: str) -> Any:
    return ok(client.get(f"/odata/{m.ws.slug}/{path}", params=params, headers=m.ws.headers))


def ids(body: dict[str, Any], key: str = "id") -> list[str]:
    return [e[key] for e in body["value"]]


def test_team_members_as_of_a_day_through_navigation(client: httpx.Client, move: Move) -> None:
    """`Teams(East)/members?$at=2026-02-28` lists the rep; on 1 March West does; today (15 February) East."""
    m = move
    assert ids(feed(client, m, f"Teams({m.east})/members", **{"$at": "2026-02-28"})) == [m.rep]
    assert ids(feed(client, m, f"Teams({m.east})/members", **{"$at": "2026-03-01"})) == []
    assert ids(feed(client, m, f"Teams({m.west})/members", **{"$at": "2026-03-01"})) == [m.rep]
    assert ids(feed(client, m, f"Teams({m.east})/members")) == [m.rep]
    assert ids(feed(client, m, f"Teams({m.west})/members")) == []
    count = client.get(f"/odata/{m.ws.slug}/Teams({m.west})/members/$count", params={"$at": "2026-03-01"},
                       headers=m.ws.headers)  # fmt: skip
    assert (count.status_code, count.text) == (200, "1")
    pairs = feed(client, m, "TeamMembers", **{"$at": "2026-03-01"})["value"]
    assert [(p["teamId"], p["systemUserId"]) for p in pairs] == [(m.west, m.rep)]
    assert pairs[0]["createdAt"].endswith("Z")


def test_dated_properties_as_of_a_day(client: httpx.Client, move: Move) -> None:
    """directManagerId, managerId and parentTeamId on the day asked, also in $filter, $expand and navigation."""
    m = move
    rep_march = feed(client, m, f"Users({m.rep})", **{"$at": "2026-03-01"})
    assert rep_march["directManagerId"] == m.ben
    assert feed(client, m, f"Users({m.rep})")["directManagerId"] == m.anna
    assert feed(client, m, f"Users({m.rep})", **{"$at": "2025-12-31"})["directManagerId"] is None
    under_ben = feed(client, m, "Users", **{"$at": "2026-03-01", "$filter": f"directManagerId eq {m.ben}"})
    assert ids(under_ben) == [m.rep]
    manager = feed(client, m, f"Users({m.rep})/directManager", **{"$at": "2026-03-01"})
    assert manager["id"] == m.ben
    west = feed(client, m, f"Teams({m.west})", **{"$at": "2026-03-01", "$expand": "parent($select=name),members"})
    assert (west["parentTeamId"], west["parent"]["name"], ids({"value": west["members"]})) == (
        m.sales,
        "Sales",
        [m.rep],
    )
    assert feed(client, m, f"Teams({m.west})")["parentTeamId"] is None
    rep = feed(client, m, f"Users({m.rep})", **{"$at": "2026-02-28", "$expand": "teams($select=name)"})
    assert [t["name"] for t in rep["teams"]] == ["East"]
    in_west = feed(client, m, "Users", **{"$at": "2026-03-02", "$filter": "teams/any(t: t/name eq 'West')"})
    assert ids(in_west) == [m.rep]
    children = feed(client, m, f"Teams({m.sales})/children", **{"$at": "2026-03-01", "$select": "id"})
    assert ids(children) == [m.west]


def test_a_snapshot_reads_each_stored_entity_with_the_day_s_manager(
    client: httpx.Client, db: Database, move: Move
) -> None:
    """On any day, a user's stored entity with that day's manager put in is, byte for byte, the entity the database
    computes for the day, also when a name holds a member's name as the stored text writes it (SQLite's and
    PostgreSQL's); the pages say the same as the Python writer."""
    m, h = move, move.ws.headers
    tricky = {"emailAddress": "q@x.com", "role": "Participant", "firstName": '"directManagerId":,"tags":',
              "lastName": '"directManagerId" : , "tags" : '}  # fmt: skip
    q = ok(client.post("/api/v1/users", json=tricky, headers=h), 201)["id"]
    ok(client.patch(f"/api/v1/users/{q}", json={"directManagerId": m.ben, "effectiveDate": "2026-02-01"}, headers=h))
    users = SETS["Users"]
    full = {"$format": "application/json;odata.metadata=full"}  # the Python writer, from the columns
    for day in ("2025-12-31", "2026-01-15", "2026-02-28", "2026-03-01"):
        t = temporal.snapshot("Users", dt.date.fromisoformat(day), "users_day", db.is_sqlite)
        computed = json_document(users, list(users.properties), t, db.is_sqlite)
        with db.read() as s:
            rows = s.execute(select(t.c.feed_json, computed).where(t.c.workspace_id == m.ws.id)).all()
        assert len(rows) >= 4 and all(stored == fresh for stored, fresh in rows), day
        written = feed(client, m, "Users", **{"$at": day, **full})["value"]
        assert feed(client, m, "Users", **{"$at": day})["value"] == [
            {k: v for k, v in e.items() if "@" not in k} for e in written
        ], day


def test_period_sets_overlap_filter_page_and_count(client: httpx.Client, move: Move) -> None:
    """One entity per period; $from/$to keep those overlapping [from, to); filterable, counted and paged."""
    m = move
    periods = feed(client, m, "MembershipPeriods", **{"$orderby": "validFrom"})["value"]
    assert [(p["teamId"], p["validFrom"], p["validTo"]) for p in periods] == [
        (m.east, "2026-01-01", "2026-03-01"),
        (m.west, "2026-03-01", None),
    ]
    feb = feed(client, m, "MembershipPeriods", **{"$from": "2026-02-01", "$to": "2026-03-01"})
    assert [p["teamId"] for p in feb["value"]] == [m.east]
    touching = feed(client, m, "MembershipPeriods", **{"$from": "2026-03-01", "$toInclusive": "2026-03-01"})
    assert [p["teamId"] for p in touching["value"]] == [m.west]
    assert [p["teamId"] for p in feed(client, m, "MembershipPeriods", **{"$at": "2026-02-28"})["value"]] == [m.east]
    for last in ({"$at": "9999-12-31"}, {"$from": "9999-12-31", "$toInclusive": "9999-12-31"}):
        assert [p["teamId"] for p in feed(client, m, "MembershipPeriods", **last)["value"]] == [m.west]
    counted = feed(client, m, "MembershipPeriods", **{"$from": "2026-01-15", "$count": "true",
                                                      "$filter": f"systemUserId eq {m.rep}"})  # fmt: skip
    assert counted["@odata.count"] == 2
    count = client.get(f"/odata/{m.ws.slug}/MembershipPeriods/$count", params={"$from": "2026-03-02"},
                       headers=m.ws.headers)  # fmt: skip
    assert count.text == "1"
    first = ok(client.get(f"/odata/{m.ws.slug}/ManagerPeriods", params={"$from": "min", "$to": "max"},
                          headers={**m.ws.headers, "Prefer": "odata.maxpagesize=1"}))  # fmt: skip
    second = ok(client.get(first["@odata.nextLink"], headers=m.ws.headers))
    managers = first["value"] + second["value"]
    assert {(p["directManagerId"], p["validFrom"], p["validTo"]) for p in managers} == {
        (m.anna, "2026-01-01", "2026-03-01"),
        (m.ben, "2026-03-01", None),
    }
    assert "@odata.nextLink" not in second
    march = feed(client, m, "ManagerPeriods", **{"$filter": "validFrom ge 2026-03-01", "$select": "directManagerId"})
    assert march["value"] == [{"directManagerId": m.ben}]
    teams = feed(client, m, "TeamPeriods", **{"$filter": f"teamId eq {m.west}", "$orderby": "validFrom"})["value"]
    assert [(p["managerId"], p["parentTeamId"], p["validFrom"], p["validTo"]) for p in teams] == [
        (m.ben, None, "2026-02-15", "2026-03-01"),
        (m.ben, m.sales, "2026-03-01", None),
    ]


@pytest.mark.parametrize(
    ("path", "params", "target"),
    [
        ("Users", {"$at": "2026-02-30"}, "$at"),
        ("Users", {"$at": "yesterday"}, "$at"),
        ("Users", {"$at": "2026-02-28T00:00:00Z"}, "$at"),
        ("CustomVariables", {"$at": "2026-02-28"}, "$at"),
        ("AuditEvents", {"$from": "2026-02-28"}, "$from"),
        ("Users", {"$from": "2026-02-01", "$to": "2026-03-01"}, "$from"),
        ("MembershipPeriods", {"$from": "2026-03-02", "$to": "2026-03-01"}, "$from"),
        ("MembershipPeriods", {"$at": "2026-03-02", "$to": "2026-03-03"}, "$at"),
        ("MembershipPeriods", {"$to": "2026-03-03"}, "$to"),
        ("MembershipPeriods", {"$from": "2026-03-01", "$to": "2026-03-03", "$toInclusive": "2026-03-03"}, None),
        ("TeamPeriods", {"$from": "13-01-2026"}, "$from"),
    ],
)
def test_bad_temporal_options_are_400(
    client: httpx.Client, ws: WS, path: str, params: dict[str, str], target: str | None
) -> None:
    """A bad date, a set without application time, an interval on a snapshot set, $from after $to, $at with an
    interval, $to alone: each an OData error naming the option."""
    r = client.get(f"/odata/{ws.slug}/{path}", params=params, headers=ws.headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "InvalidQuery"
    if target is not None:
        assert error["target"] == target


def test_at_on_a_snapshot_set_keeps_the_skiptoken_bound_to_its_day(client: httpx.Client, move: Move) -> None:
    """A next link carries $at; the same token under another $at is refused."""
    m = move
    headers = {**m.ws.headers, "Prefer": "odata.maxpagesize=2"}
    first = ok(client.get(f"/odata/{m.ws.slug}/Users", params={"$at": "2026-03-01"}, headers=headers))
    assert "%24at=2026-03-01" in first["@odata.nextLink"] or "$at=2026-03-01" in first["@odata.nextLink"]
    rest = ok(client.get(first["@odata.nextLink"], headers=m.ws.headers))
    everyone = first["value"] + rest["value"]
    assert {u["id"]: u["directManagerId"] for u in everyone}[m.rep] == m.ben
    token = first["@odata.nextLink"].split("skiptoken=")[1]
    other = client.get(f"/odata/{m.ws.slug}/Users", params={"$at": "2026-02-01", "$skiptoken": token},
                       headers=m.ws.headers)  # fmt: skip
    assert other.status_code == 400, other.text


def test_another_workspace_sees_none_of_the_periods(client: httpx.Client, move: Move, ws_b: WS) -> None:
    """Workspace B's key on B's feed: the period sets and the $at reads hold nothing of A; A's ids answer as
    unknown ones do, on every new set and through $at navigation."""
    m = move
    unknown = "00000000-0000-7000-8000-000000000000"
    client.headers["X-Request-ID"] = "same-for-both"
    b = ws_b
    for name in ("MembershipPeriods", "ManagerPeriods", "TeamPeriods"):
        assert ok(client.get(f"/odata/{b.slug}/{name}", params={"$from": "min"}, headers=b.headers))["value"] == []
        count = client.get(f"/odata/{b.slug}/{name}/$count", headers=b.headers)
        assert count.text == "0"
    assert (
        ok(client.get(f"/odata/{b.slug}/TeamMembers", params={"$at": "2026-02-28"}, headers=b.headers))["value"] == []
    )
    for period in feed(client, m, "MembershipPeriods")["value"]:
        foreign = client.get(f"/odata/{b.slug}/MembershipPeriods({period['id']})", headers=b.headers)
        same = client.get(f"/odata/{b.slug}/MembershipPeriods({unknown})", headers=b.headers)
        assert foreign.status_code == same.status_code == 404
        assert foreign.json()["error"]["message"].replace(period["id"], unknown) == same.json()["error"]["message"]
    for path in ("Teams({})/members", "Users({})/teams", "Teams({})"):
        foreign_id = m.east if path.startswith("Teams") else m.rep
        foreign = client.get(f"/odata/{b.slug}/{path.format(foreign_id)}", params={"$at": "2026-02-28"},
                             headers=b.headers)  # fmt: skip
        same = client.get(f"/odata/{b.slug}/{path.format(unknown)}", params={"$at": "2026-02-28"}, headers=b.headers)
        assert foreign.status_code == same.status_code == 404
        assert "rep@x.com" not in foreign.text
    wrong_door = client.get(f"/odata/{m.ws.slug}/MembershipPeriods", headers=b.headers)
    assert wrong_door.status_code == 404 and m.rep not in wrong_door.text


def test_a_pair_exists_on_its_days_a_team_on_every_day(client: httpx.Client, move: Move) -> None:
    """TeamMembers(teamId=East,systemUserId=rep) is there on 28 February, not on 1 March; East itself answers on any
    day, with its members of that day."""
    m = move
    pair = f"TeamMembers(teamId={m.east},systemUserId={m.rep})"
    assert feed(client, m, pair, **{"$at": "2026-02-28"})["teamId"] == m.east
    gone = client.get(f"/odata/{m.ws.slug}/{pair}", params={"$at": "2026-03-01"}, headers=m.ws.headers)
    assert gone.status_code == 404, gone.text
    before = feed(client, m, f"Teams({m.east})", **{"$at": "2020-01-01", "$expand": "members"})
    assert (before["name"], before["members"]) == ("East", [])


def test_a_navigation_over_pairs_pages_in_the_order_asked(client: httpx.Client, move: Move) -> None:
    """`Teams(<id>)/members` and `Users(<id>)/teams`, today and as of a day, followed page by page (two entities a
    page) in key order, by key descending and by another property: every member once, in that order, none of
    those whose period is not in force on the day."""
    m = move
    h = m.ws.headers
    emails = [f"m{i}@x.com" for i in (5, 1, 6, 3, 0, 4, 2)]
    people = {ok(client.post("/api/v1/users", json={"emailAddress": e, "role": "Participant"}, headers=h), 201)["id"]: e
              for e in emails}  # fmt: skip
    joined = list(people)
    for i, uid in enumerate(joined):  # all but the last two in force on 1 March; those two leave on 1 February
        body = {"teamId": m.west, "systemUserId": uid, "validFrom": "2026-01-01"}
        ok(client.post("/api/v1/team-members", json=body, headers=h), 201)
        if i >= len(joined) - 2:
            gone = {"teamId": m.west, "systemUserId": uid, "validTo": "2026-02-01"}
            ok(client.post("/api/v1/team-members:delete", json=gone, headers=h))
    teams = [str(ok(client.post("/api/v1/teams", json={"name": f"T{i}"}, headers=h), 201)["id"]) for i in range(4)]
    for team in teams:
        body = {"teamId": team, "systemUserId": joined[0], "validFrom": "2026-01-01"}
        ok(client.post("/api/v1/team-members", json=body, headers=h), 201)

    def pages(path: str, **params: str) -> list[dict[str, Any]]:
        headers = {**h, "Prefer": "odata.maxpagesize=2"}
        body = ok(client.get(f"/odata/{m.ws.slug}/{path}", params=params, headers=headers))
        got = list(body["value"])
        while "@odata.nextLink" in body:
            assert len(body["value"]) == 2
            body = ok(client.get(body["@odata.nextLink"], headers=headers))
            got += body["value"]
        return got

    in_force = {uid: people[uid] for uid in joined[:-2]} | {m.rep: "rep@x.com"}  # the rep joins West on 1 March
    today = {uid: people[uid] for uid in joined[:-2]}  # 15 February: the last two left, the rep not yet there
    everyone = {uid: people[uid] for uid in joined}  # 15 January: all seven, the rep in East
    for day, expected in (({"$at": "2026-03-01"}, in_force), ({}, today), ({"$at": "2026-01-15"}, everyone)):
        path = f"Teams({m.west})/members"
        assert [u["id"] for u in pages(path, **day)] == sorted(expected)
        assert [u["id"] for u in pages(path, **day, **{"$orderby": "id desc"})] == sorted(expected, reverse=True)
        by_email = sorted(expected, key=lambda uid: expected[uid], reverse=True)
        got = pages(path, **day, **{"$orderby": "emailAddress desc", "$select": "id,emailAddress"})
        assert [u["id"] for u in got] == by_email
        counted = ok(client.get(f"/odata/{m.ws.slug}/{path}", params={**day, "$count": "true", "$top": "1"},
                                headers=h))  # fmt: skip
        assert counted["@odata.count"] == len(expected)
    # The first member is in West and in the four new teams; on 1 February the rep was in East alone.
    assert [t["id"] for t in pages(f"Users({joined[0]})/teams", **{"$at": "2026-02-01"})] == sorted([m.west, *teams])
    mine = pages(f"Users({m.rep})/teams", **{"$at": "2026-02-01", "$orderby": "id desc"})
    assert [t["id"] for t in mine] == [m.east]


def test_a_navigation_from_a_deleted_or_unknown_owner_is_404_whatever_the_query(
    client: httpx.Client, move: Move
) -> None:
    """East, deleted, keeps its periods before today, yet `Teams(East)/members` answers 404 on any day, as an
    unknown team does, with or without a bad option or `$count`; a team that exists with no member on the day
    answers an empty page, and a bad option on it a 400."""
    m = move
    h = m.ws.headers
    unknown = "00000000-0000-7000-8000-000000000000"
    assert ids(feed(client, m, f"Teams({m.east})/members", **{"$at": "2026-02-28"})) == [m.rep]
    assert client.delete(f"/api/v1/teams/{m.east}", headers=h).status_code == 204
    periods = feed(client, m, "MembershipPeriods", **{"$filter": f"teamId eq {m.east}"})["value"]
    assert [p["systemUserId"] for p in periods] == [m.rep]  # the periods before today stay readable
    for params in ({"$at": "2026-02-28"}, {"$at": "2026-02-28", "$count": "true"}, {"$at": "2026-02-28", "$top": "0"},
                   {"$at": "2026-02-28", "$filter": "nosuch eq 1"}, {}):  # fmt: skip
        for team in (m.east, unknown):
            r = client.get(f"/odata/{m.ws.slug}/Teams({team})/members", params=params, headers=h)
            assert r.status_code == 404, (params, r.text)
            assert r.json()["error"]["message"] == f"no Team with key ({team})"
    assert ok(client.get(f"/odata/{m.ws.slug}/Teams({m.sales})/members", params={"$at": "2026-02-28"},
                         headers=h))["value"] == []  # fmt: skip
    bad = client.get(f"/odata/{m.ws.slug}/Teams({m.sales})/members", params={"$filter": "nosuch eq 1"}, headers=h)
    assert bad.status_code == 400, bad.text
    assert ok(client.get(f"/odata/{m.ws.slug}/Users({m.rep})/teams", params={"$at": "2026-02-28"},
                         headers=h))["value"] == []  # fmt: skip  # East is gone: no team of the rep's that day
