"""A team's timeline a page at a time (README.md, "Dates and timelines"): ``limit`` and ``after`` page the member
periods by user, then date; every period comes exactly once; the manager and parent periods come whole on every
page; bad paging values are refused before any SQL; a deleted team's history pages too, and stays its workspace's
only; the page is read by walking the pair index, not by reading the team's every period."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from payroster import clock
from payroster.db.engine import Database
from tests.conftest import WS
from tests.http.test_timelines import FEB_15, ok, team, user

# Three users with three periods each and one with one: ten periods, so pages of three split a user's periods.
SPANS = [("2025-01-01", "2025-02-01"), ("2025-03-01", "2025-04-01"), ("2025-05-01", None)]
WALKED = "ORDER BY membership_periods.user_id, membership_periods.valid_from, membership_periods.id"


def seed(client: httpx.Client, ws: WS) -> tuple[str, list[tuple[str, str, str | None]]]:
    """A team with a manager timeline of two periods, a parent, and ten member periods; returns the team's id
    and the periods as ``(user, validFrom, validTo)`` in the timeline's order."""
    h = ws.headers
    first, second = user(client, ws, "boss1@x.com"), user(client, ws, "boss2@x.com")
    root = team(client, ws, "Root")
    east = team(client, ws, "East", managerId=first, parentTeamId=root, effectiveDate="2025-01-01")
    ok(client.patch(f"/api/v1/teams/{east}", json={"managerId": second, "effectiveDate": "2025-06-01"}, headers=h))
    made: list[tuple[str, str, str | None]] = []
    for i in range(4):
        rep = user(client, ws, f"rep{i}@x.com")
        for start, end in SPANS if i < 3 else SPANS[2:]:
            body = {"systemUserId": rep, "teamId": east, "validFrom": start, "validTo": end}
            ok(client.post("/api/v1/team-members", json=body, headers=h), 201)
            made.append((rep, start, end))
    return east, sorted(made, key=lambda p: (uuid.UUID(p[0]), p[1]))


def walk(client: httpx.Client, ws: WS, team_id: str, limit: int) -> list[dict[str, Any]]:
    """Every page of the team's timeline, following ``next``."""
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        pages.append(ok(client.get(f"/api/v1/teams/{team_id}/timeline", params=params, headers=ws.headers)))
        after = pages[-1]["next"]
        if after is None:
            return pages
        assert len(pages) < 20, "next never ends"


def spans(page: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(m["systemUserId"], m["validFrom"], m["validTo"]) for m in page["members"]]


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The statements the engine runs meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def test_paging_walks_every_period_once_with_the_teams_own_periods_on_every_page(client: httpx.Client, ws: WS) -> None:
    """Pages of three over ten periods: four pages, each period once, in the timeline's order (user, then date),
    ``next`` null on the last; manager and parent periods whole on each page. Without paging parameters the
    answer is the first page of 1,000 (here all ten) and ``next`` null."""
    with clock.frozen(FEB_15):
        east, made = seed(client, ws)
        pages = walk(client, ws, east, 3)
        whole = ok(client.get(f"/api/v1/teams/{east}/timeline", headers=ws.headers))
    assert [len(p["members"]) for p in pages] == [3, 3, 3, 1]
    assert [s for p in pages for s in spans(p)] == made
    ids = [m["periodId"] for p in pages for m in p["members"]]
    assert len(set(ids)) == len(ids) == 10
    assert [(m["validFrom"], m["validTo"]) for m in pages[0]["manager"]] == [
        ("2025-01-01", "2025-06-01"), ("2025-06-01", None)]  # fmt: skip
    assert len(pages[0]["parent"]) == 1
    assert all((p["manager"], p["parent"]) == (pages[0]["manager"], pages[0]["parent"]) for p in pages)
    assert sorted(whole) == ["manager", "members", "next", "parent", "teamId"]
    assert (spans(whole), whole["next"]) == (made, None)
    assert ok(client.get(f"/api/v1/teams/{east}/timeline", params={"limit": 10}, headers=ws.headers))["next"] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 5001},
        {"limit": "ten"},
        {"after": "nope"},
        {"after": "!!!"},
        {"after": str(uuid.UUID(int=7))},  # a user id is the members list's cursor, not this one's
        {"after": "bm90L2EvY3Vyc29y"},  # "not/a/cursor"
    ],
)
def test_a_bad_limit_or_after_is_a_422_before_any_sql(
    client: httpx.Client, ws: WS, db: Database, bad: dict[str, Any]
) -> None:
    """``limit`` out of 1..5000 and an ``after`` that is no ``next`` are 422s naming the parameter, and reach
    no table of the timeline."""
    east = team(client, ws, "East")
    with statements(db) as seen:
        r = client.get(f"/api/v1/teams/{east}/timeline", params=bad, headers=ws.headers)
    assert r.status_code == 422, (bad, r.text)
    assert next(iter(bad)) in r.text
    read = [s for s, _ in seen if any(t in s for t in ("membership_periods", "team_periods", "FROM teams"))]
    assert read == []


def test_a_deleted_teams_history_pages_and_stays_its_workspaces(
    client: httpx.Client, ws: WS, ws_b: WS, db: Database
) -> None:
    """After the team is deleted its timeline still pages over every period (those in force ended on the day of
    deletion); another workspace's key gets the 404 of an unknown id, with or without a cursor of the team."""
    with clock.frozen(FEB_15):
        east, made = seed(client, ws)
        assert client.delete(f"/api/v1/teams/{east}", headers=ws.headers).status_code == 204
        pages = walk(client, ws, east, 4)
    assert [len(p["members"]) for p in pages] == [4, 4, 2]
    ended = [(u, start, end) for u, start, end in made if start < "2026-02-15"]
    assert [s for p in pages for s in spans(p)] == [(u, s, e or "2026-02-15") for u, s, e in ended]
    assert all(len(p["manager"]) == 2 for p in pages)
    cursor = pages[0]["next"]
    unknown = str(uuid.UUID(int=1))
    for params in ({}, {"limit": 2}, {"after": cursor}):
        foreign = client.get(f"/api/v1/teams/{east}/timeline", params=params, headers=ws_b.headers)
        missing = client.get(f"/api/v1/teams/{unknown}/timeline", params=params, headers=ws_b.headers)
        assert foreign.status_code == missing.status_code == 404, foreign.text
        assert foreign.json()["error"]["code"] == missing.json()["error"]["code"]
        assert made[0][0] not in foreign.text


def test_a_page_walks_the_pair_index_and_stops_at_its_limit(
    client: httpx.Client, ws: WS, db: Database, backend: str
) -> None:
    """The page's statement searches the pair index from the team (and, after a cursor, from its user) in the
    timeline's order, with no sort of the team's periods; on PostgreSQL the index gives up no more rows than the
    page and the one that tells there is a next (the only sort is per user and date, of ties the non-overlap
    rule forbids)."""
    with clock.frozen(FEB_15):
        east, _ = seed(client, ws)
        first = ok(client.get(f"/api/v1/teams/{east}/timeline", params={"limit": 3}, headers=ws.headers))
        with statements(db) as seen:
            ok(client.get(f"/api/v1/teams/{east}/timeline", params={"limit": 3, "after": first["next"]},
                          headers=ws.headers))  # fmt: skip
    ((statement, parameters),) = [(s, p) for s, p in seen if WALKED in s]
    with db.engine.connect() as conn:
        if backend == "sqlite":
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "INDEX ix_membership_periods_pair (workspace_id=? AND team_id=? AND user_id>?)" in plan, plan
            assert "SCAN" not in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
        else:
            # A team this small is cheaper to scan or to sort whole: forbid both, so the plan is the one a large
            # team gets, and check that it reads from the index no more than the page needs.
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            (tree,) = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()
            nodes = list(_plan_nodes(tree["Plan"]))
            (scan,) = [n for n in nodes if n.get("Relation Name") == "membership_periods"]
            assert scan["Index Name"] == "ix_membership_periods_pair", scan
            assert "user_id" in scan.get("Index Cond", ""), scan
            assert all(n["Node Type"] != "Sort" for n in nodes), tree
            assert scan["Actual Rows"] <= 3 + 2, scan


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A PostgreSQL JSON plan's node and every node below it."""
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
