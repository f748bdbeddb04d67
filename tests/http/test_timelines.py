"""Dated memberships, managers and parents through the JSON API (README.md, "Dates and timelines"): the
February/March example, merging, ends, erasure, dated upserts, cycles on any date, team deletion, SCIM and bulk
writes from today, audit events, and a scheduled change becoming today's value when the clock reaches it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, User, table
from payroster.odata.query import feed_document
from payroster.services import bulk, csvimport
from tests.conftest import WS, refused_within_key_ttl
from tests.scim.conftest import GROUP, scim_for

FEB_15 = dt.date(2026, 2, 15)


@pytest.fixture
def feb_15() -> Iterator[None]:
    """Today is 15 February 2026 (the services' one clock)."""
    with clock.frozen(FEB_15):
        yield


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def user(client: httpx.Client, ws: WS, email: str, **extra: Any) -> str:
    body = {"emailAddress": email, "role": "Participant", **extra}
    return str(ok(client.post("/api/v1/users", json=body, headers=ws.headers), 201)["id"])


def team(client: httpx.Client, ws: WS, name: str, **extra: Any) -> str:
    return str(ok(client.post("/api/v1/teams", json={"name": name, **extra}, headers=ws.headers), 201)["id"])


def members(client: httpx.Client, ws: WS, team_id: str, day: str | None = None) -> list[str]:
    params = {"asOf": day} if day else {}
    found = ok(client.get(f"/api/v1/teams/{team_id}/members", params=params, headers=ws.headers))
    return [m["systemUserId"] for m in found["members"]]


def spans(client: httpx.Client, ws: WS, user_id: str) -> list[tuple[str, str, str | None]]:
    timeline = ok(client.get(f"/api/v1/users/{user_id}/timeline", headers=ws.headers))
    return [(t["teamId"], t["validFrom"], t["validTo"]) for t in timeline["teams"]]


def test_a_rep_moves_from_east_to_west_on_1_march(client: httpx.Client, ws: WS, feb_15: None) -> None:
    """README's example: February reads still show East and East's manager; from 1 March, West."""
    h = ws.headers
    east_boss, west_boss = user(client, ws, "eb@x.com"), user(client, ws, "wb@x.com")
    east, west = team(client, ws, "East", managerId=east_boss), team(client, ws, "West", managerId=west_boss)
    rep = user(client, ws, "rep@x.com", directManagerId=east_boss, effectiveDate="2026-01-01")
    added = client.post("/api/v1/team-members", json={"systemUserId": rep, "teamId": east, "validFrom": "2026-01-01"},
                        headers=h)  # fmt: skip
    expected = {"systemUserId": rep, "teamId": east, "created": True, "validFrom": "2026-01-01", "validTo": None}
    assert ok(added, 201) | {"periodId": None} == expected | {"periodId": None}
    ended = client.post("/api/v1/team-members:delete", json={"systemUserId": rep, "teamId": east,
                                                             "validTo": "2026-03-01"}, headers=h)  # fmt: skip
    assert ok(ended)["deleted"] is True
    moved = {"systemUserId": rep, "teamId": west, "validFrom": "2026-03-01"}
    assert ok(client.post("/api/v1/team-members", json=moved, headers=h), 201)["validTo"] is None
    patch = {"directManagerId": west_boss, "effectiveDate": "2026-03-01"}
    assert ok(client.patch(f"/api/v1/users/{rep}", json=patch, headers=h))["directManagerId"] == east_boss

    assert members(client, ws, east, "2026-02-28") == [rep] and members(client, ws, west, "2026-02-28") == []
    assert members(client, ws, east, "2026-03-01") == [] and members(client, ws, west, "2026-03-01") == [rep]
    assert members(client, ws, east) == [rep]  # today, 15 February
    feb = ok(client.get(f"/api/v1/users/{rep}", params={"asOf": "2026-02-28"}, headers=h))
    mar = ok(client.get(f"/api/v1/users/{rep}", params={"asOf": "2026-03-01"}, headers=h))
    assert (feb["directManagerId"], mar["directManagerId"]) == (east_boss, west_boss)
    assert spans(client, ws, rep) == [(east, "2026-01-01", "2026-03-01"), (west, "2026-03-01", None)]
    timeline = ok(client.get(f"/api/v1/users/{rep}/timeline", headers=h))
    assert [(m["validFrom"], m["validTo"], m["directManagerId"]) for m in timeline["directManager"]] == [
        ("2026-01-01", "2026-03-01", east_boss), ("2026-03-01", None, west_boss)]  # fmt: skip
    # The feed answers as of today: East, and East's manager.
    feed = ok(client.get(f"/odata/{ws.slug}/TeamMembers", headers=h))["value"]
    assert [(m["teamId"], m["systemUserId"]) for m in feed] == [(east, rep)]


def test_a_scheduled_change_becomes_current_on_its_date_without_a_write(
    client: httpx.Client, ws: WS, db: Database
) -> None:
    """Today's values (team_members, Users.directManagerId, Teams.parentTeamId in the feed and the JSON API) follow
    the clock: the first request on or after the scheduled date makes them current, stored feed entity included."""
    h = ws.headers
    with clock.frozen(FEB_15):
        boss, other, rep = user(client, ws, "b@x.com"), user(client, ws, "o@x.com"), user(client, ws, "r@x.com")
        root, east, west = team(client, ws, "Root"), team(client, ws, "East"), team(client, ws, "West")
        ok(client.patch(f"/api/v1/users/{rep}", json={"directManagerId": boss}, headers=h))
        ok(client.patch(f"/api/v1/users/{rep}", json={"directManagerId": other, "effectiveDate": "2026-03-01"},
                        headers=h))  # fmt: skip
        ok(client.patch(f"/api/v1/teams/{west}", json={"parentTeamId": root, "effectiveDate": "2026-03-01"},
                        headers=h))  # fmt: skip
        ok(client.post("/api/v1/team-members", json={"systemUserId": rep, "teamId": east}, headers=h), 201)
        ok(client.post("/api/v1/team-members:delete", json={"systemUserId": rep, "teamId": east,
                                                            "validTo": "2026-03-01"}, headers=h))  # fmt: skip
        ok(client.post("/api/v1/team-members", json={"systemUserId": rep, "teamId": west,
                                                     "validFrom": "2026-03-01"}, headers=h), 201)  # fmt: skip
    for day, manager, parent, pair in (
        ("2026-02-28", boss, None, (east, rep)),
        ("2026-03-01", other, root, (west, rep)),
    ):
        with clock.frozen(dt.date.fromisoformat(day)):
            assert ok(client.get(f"/api/v1/users/{rep}", headers=h))["directManagerId"] == manager
            assert ok(client.get(f"/api/v1/teams/{west}", headers=h))["parentTeamId"] == parent
            feed = ok(client.get(f"/odata/{ws.slug}/TeamMembers", headers=h))["value"]
            assert [(m["teamId"], m["systemUserId"]) for m in feed] == [pair]
            users = ok(client.get(f"/odata/{ws.slug}/Users", headers=h))["value"]
            assert next(u for u in users if u["id"] == rep)["directManagerId"] == manager
    users_t = table(User)
    with db.read() as s:
        stored, computed = s.execute(
            select(users_t.c.feed_json, feed_document(users_t, db.is_sqlite)).where(users_t.c.id == uuid.UUID(rep))
        ).one()
    # Never stale: the refresh clears it (the feed then computes the entity from the row, as read above) or a
    # write stored it afresh.
    assert stored is None or stored == computed


def test_adding_merges_overlapping_and_touching_periods(client: httpx.Client, ws: WS, feb_15: None) -> None:
    """Overlapping or touching periods become one; ``created`` is false when a period covered ``validFrom``."""
    rep, east = user(client, ws, "r@x.com"), team(client, ws, "East")

    def add(start: str, end: str | None) -> httpx.Response:
        body = {"systemUserId": rep, "teamId": east, "validFrom": start, "validTo": end}
        return client.post("/api/v1/team-members", json=body, headers=ws.headers)

    assert add("2026-01-01", "2026-01-10").status_code == 201
    assert add("2026-01-20", "2026-02-01").status_code == 201
    assert spans(client, ws, rep) == [(east, "2026-01-01", "2026-01-10"), (east, "2026-01-20", "2026-02-01")]
    touching = add("2026-01-10", "2026-01-20")  # touches both: one period
    assert (touching.status_code, touching.json()["validFrom"], touching.json()["validTo"]) == (
        201, "2026-01-01", "2026-02-01")  # fmt: skip
    covered = add("2026-01-15", "2026-03-01")
    assert (covered.status_code, covered.json()["created"], covered.json()["validTo"]) == (200, False, "2026-03-01")
    assert spans(client, ws, rep) == [(east, "2026-01-01", "2026-03-01")]
    assert add("2026-01-15", "2026-01-15").status_code == 422  # an empty period
    assert add("2026-1-15", None).status_code == 422


def test_ending_truncates_or_schedules_and_erasing_removes_one_period(
    client: httpx.Client, ws: WS, db: Database, feb_15: None
) -> None:
    """End on a past date truncates, on a future date schedules; a period starting on or after its new end goes;
    erasing removes one period, audited; an unknown period id is 404."""
    h = ws.headers
    rep, east = user(client, ws, "r@x.com"), team(client, ws, "East")
    pair = {"systemUserId": rep, "teamId": east}
    first = ok(client.post("/api/v1/team-members", json={**pair, "validFrom": "2025-01-01", "validTo": "2025-06-01"},
                           headers=h), 201)  # fmt: skip
    ok(client.post("/api/v1/team-members", json={**pair, "validFrom": "2026-01-01"}, headers=h), 201)
    ok(client.post("/api/v1/team-members", json={**pair, "validFrom": "2026-04-01"}, headers=h), 200)  # covered
    assert ok(client.post("/api/v1/team-members:delete", json={**pair, "validTo": "2026-05-01"}, headers=h))["deleted"]
    assert spans(client, ws, rep)[-1] == (east, "2026-01-01", "2026-05-01")  # scheduled
    by_path = client.delete(f"/api/v1/teams/{east}/members/{rep}", params={"validTo": "2026-02-01"}, headers=h)
    assert ok(by_path)["deleted"] is True  # truncated in the past
    assert spans(client, ws, rep) == [(east, "2025-01-01", "2025-06-01"), (east, "2026-01-01", "2026-02-01")]
    assert members(client, ws, east) == []
    gone = client.post("/api/v1/team-members:delete", json={**pair, "validTo": "2026-01-01"}, headers=h)
    assert ok(gone)["deleted"] is True  # started on its new end: removed
    assert spans(client, ws, rep) == [(east, "2025-01-01", "2025-06-01")]
    assert ok(client.post("/api/v1/team-members:delete", json=pair, headers=h))["deleted"] is False
    erased = ok(client.delete(f"/api/v1/team-members/{first['periodId']}", headers=h))
    assert (erased["validFrom"], erased["deleted"]) == ("2025-01-01", True)
    assert spans(client, ws, rep) == []
    assert client.delete(f"/api/v1/team-members/{first['periodId']}", headers=h).status_code == 404
    assert client.delete("/api/v1/team-members/not-an-id", headers=h).status_code == 404
    with db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "membership.erased")).one()
    periods = next(c for c in json.loads(event.changes) if c["field"] == "periods")
    assert [p["validFrom"] for p in periods["before"]] == ["2025-01-01"] and periods["after"] == []


def test_a_past_dated_change_rewrites_until_the_next_change_and_null_ends_it(
    client: httpx.Client, ws: WS, feb_15: None
) -> None:
    """A manager set from a past date holds until the next recorded change; null ends the value from its date;
    a write without the field records nothing; field names match case-insensitively."""
    h = ws.headers
    a, b, c = user(client, ws, "a@x.com"), user(client, ws, "b@x.com"), user(client, ws, "c@x.com")
    rep = user(client, ws, "r@x.com")
    assert ok(client.get(f"/api/v1/users/{rep}/timeline", headers=h))["directManager"] == []

    def patch(**body: Any) -> None:
        ok(client.patch(f"/api/v1/users/{rep}", json=body, headers=h))

    def history() -> list[tuple[str, str | None, str]]:
        found = ok(client.get(f"/api/v1/users/{rep}/timeline", headers=h))["directManager"]
        return [(m["validFrom"], m["validTo"], m["directManagerId"]) for m in found]

    patch(directManagerId=a, effectiveDate="2026-01-01")
    patch(directManagerId=b, effectiveDate="2026-03-01")
    patch(directManagerId=c, EffectiveDATE="2026-02-01")  # past: until 1 March, the next change
    assert history() == [("2026-01-01", "2026-02-01", a), ("2026-02-01", "2026-03-01", c), ("2026-03-01", None, b)]
    patch(firstName="Rep")
    assert len(history()) == 3
    patch(directManagerId=None, effectiveDate="2026-04-01")
    assert history()[-1] == ("2026-03-01", "2026-04-01", b)
    assert ok(client.get(f"/api/v1/users/{rep}", params={"asOf": "2026-04-01"}, headers=h))["directManagerId"] is None
    assert client.get(f"/api/v1/users/{rep}", params={"asOf": "April"}, headers=h).status_code == 422
    assert client.patch(f"/api/v1/users/{rep}", json={"effectiveDate": "2026-02-30"}, headers=h).status_code == 422


def test_cycles_on_any_date_are_refused_naming_the_date(client: httpx.Client, ws: WS, feb_15: None) -> None:
    """A manager or parent change that closes a cycle on some date (not only today) is a 409 naming that date;
    so is a bulk row."""
    h = ws.headers
    a = user(client, ws, "a@x.com")
    b = user(client, ws, "b@x.com", directManagerId=a, effectiveDate="2026-01-01")
    ok(client.patch(f"/api/v1/users/{b}", json={"directManagerId": None, "effectiveDate": "2026-02-01"}, headers=h))
    # Today B has no manager, so A under B is fine from today; from 10 January it would close a cycle then.
    refused = client.patch(f"/api/v1/users/{a}", json={"directManagerId": b, "effectiveDate": "2026-01-10"}, headers=h)
    assert refused.status_code == 409 and "2026-01-10" in refused.json()["error"]["message"], refused.text
    ok(client.patch(f"/api/v1/users/{a}", json={"directManagerId": b}, headers=h))
    rows = [{"emailAddress": "b@x.com", "directManagerId": a, "effectiveDate": "2026-03-01"}]
    refused = client.post("/api/v1/users:bulk", json=rows, headers=h)
    assert refused.status_code == 422 and "2026-03-01" in refused.text, refused.text
    parent = team(client, ws, "Parent")
    child = team(client, ws, "Child", parentTeamId=parent, effectiveDate="2026-01-01")
    ok(client.patch(f"/api/v1/teams/{child}", json={"parentTeamId": None, "effectiveDate": "2026-02-01"}, headers=h))
    refused = client.patch(f"/api/v1/teams/{parent}", json={"parentTeamId": child, "effectiveDate": "2025-12-01"},
                           headers=h)  # fmt: skip
    assert refused.status_code == 409 and "2026-01-01" in refused.json()["error"]["message"], refused.text
    assert ok(client.patch(f"/api/v1/teams/{parent}", json={"parentTeamId": child}, headers=h))["parentTeamId"] == child


def test_deleting_a_team_ends_its_memberships_and_place_and_keeps_its_history(
    client: httpx.Client, ws: WS, feb_15: None
) -> None:
    """From today the team's members are no longer on it and its children have its parent; its timeline before
    today stays readable; a period starting later goes."""
    h = ws.headers
    rep, later = user(client, ws, "r@x.com"), user(client, ws, "l@x.com")
    root = team(client, ws, "Root")
    mid = team(client, ws, "Mid", parentTeamId=root, effectiveDate="2026-01-01")
    leaf = team(client, ws, "Leaf", parentTeamId=mid, effectiveDate="2026-01-01")
    ok(client.post("/api/v1/team-members", json={"systemUserId": rep, "teamId": mid, "validFrom": "2026-01-01"},
                   headers=h), 201)  # fmt: skip
    ok(client.post("/api/v1/team-members", json={"systemUserId": later, "teamId": mid, "validFrom": "2026-06-01"},
                   headers=h), 201)  # fmt: skip
    assert client.delete(f"/api/v1/teams/{mid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/teams/{mid}", headers=h).status_code == 404
    assert ok(client.get(f"/api/v1/teams/{leaf}", headers=h))["parentTeamId"] == root
    assert ok(client.get(f"/api/v1/teams/{leaf}", params={"asOf": "2026-01-31"}, headers=h))["parentTeamId"] == mid
    history = ok(client.get(f"/api/v1/teams/{mid}/timeline", headers=h))
    assert [(m["systemUserId"], m["validFrom"], m["validTo"]) for m in history["members"]] == [
        (rep, "2026-01-01", "2026-02-15")]  # fmt: skip
    assert [(p["validFrom"], p["validTo"], p["parentTeamId"]) for p in history["parent"]] == [
        ("2026-01-01", "2026-02-15", root)]  # fmt: skip
    assert spans(client, ws, later) == []


def test_scim_and_bulk_changes_apply_from_today(client: httpx.Client, ws: WS, db: Database, feb_15: None) -> None:
    """A SCIM group member added or removed starts or ends a period today; users:bulk takes effectiveDate per row,
    as the CSV import's column of that name does."""
    scim = scim_for(client, db, ws)
    rep = scim.create_user("rep@x.com")["id"]
    group = ok(scim.post("Groups", {"schemas": [GROUP], "displayName": "East"}), 201)["id"]
    ok(scim.patch(f"Groups/{group}", {"op": "add", "path": "members", "value": [{"value": rep}]}))
    assert spans(client, ws, rep) == [(group, "2026-02-15", None)]
    ok(scim.patch(f"Groups/{group}", {"op": "remove", "path": f'members[value eq "{rep}"]'}))
    assert spans(client, ws, rep) == []  # started today and ended today: nothing left
    boss = user(client, ws, "boss@x.com")
    rows = [{"emailAddress": "rep@x.com", "directManagerId": boss, "effectiveDate": "2026-03-01"},
            {"emailAddress": "new@x.com", "role": "Participant", "directManagerId": boss}]  # fmt: skip
    ok(client.post("/api/v1/users:bulk", json=rows, headers=ws.headers))
    assert ok(client.get(f"/api/v1/users/{rep}", headers=ws.headers))["directManagerId"] is None
    found = ok(client.get(f"/api/v1/users/{rep}/timeline", headers=ws.headers))["directManager"]
    assert [(m["validFrom"], m["directManagerId"]) for m in found] == [("2026-03-01", boss)]
    new = ok(client.get("/api/v1/users", params={"emailAddress": "new@x.com"}, headers=ws.headers))
    assert new["directManagerId"] == boss
    parsed = bulk.parse_rows(csvimport.parse("emailAddress,directManagerId,Effective Date\nr@x.com,,2026-03-01\n"))
    assert parsed[0].effective_date == dt.date(2026, 3, 1)


def test_every_period_change_is_audited_with_its_periods(
    client: httpx.Client, ws: WS, db: Database, feb_15: None
) -> None:
    """Membership events carry the pair's periods before and after; a manager's change has an event per changed
    period, its target that period."""
    h = ws.headers
    boss, rep, east = user(client, ws, "b@x.com"), user(client, ws, "r@x.com"), team(client, ws, "East")
    made = ok(client.post("/api/v1/team-members", json={"systemUserId": rep, "teamId": east}, headers=h), 201)
    ok(client.post("/api/v1/team-members:delete", json={"systemUserId": rep, "teamId": east, "validTo": "2026-05-01"},
                   headers=h))  # fmt: skip
    ok(client.patch(f"/api/v1/users/{rep}", json={"directManagerId": boss, "effectiveDate": "2026-01-01"}, headers=h))
    with db.read() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)).all()
    ended = next(e for e in events if e.action == "membership.updated")
    periods = next(c for c in json.loads(ended.changes) if c["field"] == "periods")
    pid = made["periodId"]
    assert periods == {"field": "periods",
                       "before": [{"periodId": pid, "validFrom": "2026-02-15", "validTo": None}],
                       "after": [{"periodId": pid, "validFrom": "2026-02-15", "validTo": "2026-05-01"}]}  # fmt: skip
    added = next(e for e in events if e.action == "managerPeriod.added")
    change = {c["field"]: (c["before"], c["after"]) for c in json.loads(added.changes)}
    assert change["systemUserId"] == (None, rep)
    assert change["period"][0] is None and change["period"][1]["validFrom"] == "2026-01-01"
    assert str(added.target_id) == change["period"][1]["periodId"]


def test_a_key_of_a_demoted_owner_is_refused_on_the_dated_routes(client: httpx.Client, ws: WS) -> None:
    """Every dated route takes the API's credentials: no key 401, a key whose owner is no longer a FullAdmin 403."""
    rep, east = user(client, ws, "r@x.com"), team(client, ws, "East")
    paths = [f"/api/v1/teams/{east}/members", f"/api/v1/teams/{east}/timeline", f"/api/v1/users/{rep}/timeline"]
    for path in paths:
        assert client.get(path).status_code == 401
    other = user(client, ws, "second@x.com", role="FullAdmin")
    ok(client.post("/api/v1/users", json={"emailAddress": "admin@example.com", "role": "Participant"},
                   headers=ws.headers))  # fmt: skip
    assert other
    for path in paths:
        refused_within_key_ttl(client, path, ws.headers)


def test_a_teams_members_come_a_page_at_a_time(client: httpx.Client, ws: WS, feb_15: None) -> None:
    """``limit`` and ``after`` page the members by user id; ``next`` is null on the last page; a bad ``after`` or
    ``limit`` is a 422, never a 500."""
    east = team(client, ws, "East")
    ids = [user(client, ws, f"m{i}@x.com") for i in range(7)]
    for u in ids:
        ok(client.post("/api/v1/team-members", json={"systemUserId": u, "teamId": east}, headers=ws.headers), 201)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        page = ok(client.get(f"/api/v1/teams/{east}/members", params=params, headers=ws.headers))
        pages += 1
        assert len(page["members"]) <= 3
        seen += [m["systemUserId"] for m in page["members"]]
        after = page["next"]
        if after is None:
            break
    assert pages == 3 and seen == sorted(ids, key=uuid.UUID)
    assert ok(client.get(f"/api/v1/teams/{east}/members", headers=ws.headers))["next"] is None
    for bad in ({"after": "nope"}, {"limit": 0}, {"limit": 5001}):
        r = client.get(f"/api/v1/teams/{east}/members", params=bad, headers=ws.headers)
        assert r.status_code == 422, (bad, r.text)
