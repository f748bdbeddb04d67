"""A stateful property test of the timelines (README.md, "Dates and timelines"): random dated adds, ends,
erasures and manager and parent changes through the JSON API, against a model that keeps each timeline as one
value per day of a short calendar. After every step the ``asOf`` reads on several dates, today's reads (the
JSON API and the feed's ``TeamMembers``), the timelines, and the feed's ``$at`` snapshots and period sets must
agree with the model."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from payroster import clock
from payroster.db.engine import Database
from tests.conftest import make_workspace

START = dt.date(2026, 1, 1)
DAYS = 12  # the days written; index DAYS stands for every day from START + DAYS on
TODAY = 5
CHECKED = (0, 3, TODAY, 9, DAYS)
N_USERS, N_TEAMS = 4, 3
_names = itertools.count()


def day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def index(text: str | None) -> int:
    return DAYS + 1 if text is None else (dt.date.fromisoformat(text) - START).days


days = st.integers(0, DAYS - 1)
ends = st.one_of(st.none(), st.integers(1, DAYS))


class Timelines(RuleBasedStateMachine):
    """The directory of one fresh workspace, and its model: ``member[(t, u)][i]``, ``manager[u][i]`` and
    ``parent[t][i]`` are the values on day ``i``."""

    def __init__(self, client: httpx.Client, db: Database) -> None:
        super().__init__()
        ws = make_workspace(db, f"Model {next(_names)}")
        self.client, self.slug, self.h = client, ws.slug, ws.headers
        self.users = [self._made("/api/v1/users", {"emailAddress": f"u{i}@x.com", "role": "Participant"})
                      for i in range(N_USERS)]  # fmt: skip
        self.teams = [self._made("/api/v1/teams", {"name": f"T{i}"}) for i in range(N_TEAMS)]
        slots = DAYS + 1
        self.member = {(t, u): [False] * slots for t in range(N_TEAMS) for u in range(N_USERS)}
        self.manager: list[list[int | None]] = [[None] * slots for _ in range(N_USERS)]
        self.parent: list[list[int | None]] = [[None] * slots for _ in range(N_TEAMS)]

    def _made(self, path: str, body: dict[str, Any]) -> str:
        r = self.client.post(path, json=body, headers=self.h)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    @rule(t=st.integers(0, N_TEAMS - 1), u=st.integers(0, N_USERS - 1), start=days, end=ends)
    def add(self, t: int, u: int, start: int, end: int | None) -> None:
        body = {"systemUserId": self.users[u], "teamId": self.teams[t], "validFrom": day(start)}
        if end is not None:
            body["validTo"] = day(end)
        r = self.client.post("/api/v1/team-members", json=body, headers=self.h)
        if end is not None and end <= start:
            assert r.status_code == 422, r.text
            return
        line = self.member[(t, u)]
        created = not line[start]
        assert (r.status_code, r.json()["created"]) == ((201, True) if created else (200, False)), r.text
        for i in range(start, DAYS + 1 if end is None else end):
            line[i] = True
        got = r.json()
        assert all(line[i] for i in range(index(got["validFrom"]), min(index(got["validTo"]), DAYS + 1)))

    @rule(t=st.integers(0, N_TEAMS - 1), u=st.integers(0, N_USERS - 1), on=st.one_of(st.none(), days))
    def end(self, t: int, u: int, on: int | None) -> None:
        body = {"systemUserId": self.users[u], "teamId": self.teams[t]}
        if on is not None:
            body["validTo"] = day(on)
        r = self.client.post("/api/v1/team-members:delete", json=body, headers=self.h)
        line = self.member[(t, u)]
        when = TODAY if on is None else on
        assert r.status_code == 200 and r.json()["deleted"] is line[when], r.text
        for i in range(when, DAYS + 1):
            line[i] = False

    @rule(u=st.integers(0, N_USERS - 1), pick=st.integers(0, 10))
    def erase(self, u: int, pick: int) -> None:
        periods = self._timeline(u)["teams"]
        if not periods:
            return
        chosen = periods[pick % len(periods)]
        r = self.client.delete(f"/api/v1/team-members/{chosen['periodId']}", headers=self.h)
        assert r.status_code == 200, r.text
        line = self.member[(self.teams.index(chosen["teamId"]), u)]
        for i in range(index(chosen["validFrom"]), min(index(chosen["validTo"]), DAYS + 1)):
            line[i] = False

    @rule(u=st.integers(0, N_USERS - 1), m=st.one_of(st.none(), st.integers(0, N_USERS - 1)), on=days)
    def set_manager(self, u: int, m: int | None, on: int) -> None:
        body = {"directManagerId": None if m is None else self.users[m], "effectiveDate": day(on)}
        r = self.client.patch(f"/api/v1/users/{self.users[u]}", json=body, headers=self.h)
        self._set(self.manager, u, m, on, r)

    @rule(t=st.integers(0, N_TEAMS - 1), p=st.one_of(st.none(), st.integers(0, N_TEAMS - 1)), on=days)
    def set_parent(self, t: int, p: int | None, on: int) -> None:
        body = {"parentTeamId": None if p is None else self.teams[p], "effectiveDate": day(on)}
        r = self.client.patch(f"/api/v1/teams/{self.teams[t]}", json=body, headers=self.h)
        self._set(self.parent, t, p, on, r)

    def _set(self, lines: list[list[int | None]], x: int, value: int | None, on: int, r: httpx.Response) -> None:
        """The change holds from ``on`` until the next day the value changes; refused (409 naming the first
        such day) when it closes a cycle on a day."""
        line = lines[x]
        until = next((i for i in range(on + 1, DAYS + 1) if line[i] != line[i - 1]), DAYS + 1)
        cycle = None
        for i in range(on, until):
            seen, cur = {x}, value
            while cur is not None and cur not in seen:
                seen.add(cur)
                cur = lines[cur][i]
            if cur is not None:
                cycle = i
                break
        if cycle is not None:
            assert r.status_code == 409 and day(cycle) in r.json()["error"]["message"], r.text
            return
        assert r.status_code == 200, r.text
        for i in range(on, until):
            line[i] = value

    def _timeline(self, u: int) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/users/{self.users[u]}/timeline", headers=self.h)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    @staticmethod
    def _line(periods: list[dict[str, Any]], value: Any = lambda p: True, empty: Any = False) -> list[Any]:
        """A list of periods as one value per day; they must not overlap, and two that touch differ."""
        line = [empty] * (DAYS + 1)
        last = None
        for p in periods:
            lo, hi = index(p["validFrom"]), min(index(p["validTo"]), DAYS + 1)
            assert last is None or last[0] < lo or last[0] == lo and last[1] != value(p), periods
            last = (index(p["validTo"]), value(p))
            for i in range(lo, hi):
                line[i] = value(p)
        return line

    @invariant()
    def reads_agree(self) -> None:
        """Timelines, asOf reads on several days and today's reads match the model."""
        for u in range(N_USERS):
            got = self._timeline(u)
            for t in range(N_TEAMS):
                mine = [p for p in got["teams"] if p["teamId"] == self.teams[t]]
                assert self._line(mine) == self.member[(t, u)], (t, u, mine)
            managers = self._line(got["directManager"], lambda p: self.users.index(p["directManagerId"]), None)
            assert managers == self.manager[u]
            now = self.client.get(f"/api/v1/users/{self.users[u]}", headers=self.h).json()["directManagerId"]
            assert now == (None if self.manager[u][TODAY] is None else self.users[self.manager[u][TODAY]])
        for t in range(N_TEAMS):
            got = self.client.get(f"/api/v1/teams/{self.teams[t]}/timeline", headers=self.h).json()
            assert self._line(got["parent"], lambda p: self.teams.index(p["parentTeamId"]), None) == self.parent[t]
            for i in CHECKED:
                r = self.client.get(f"/api/v1/teams/{self.teams[t]}/members", params={"asOf": day(i)}, headers=self.h)
                found = {self.users.index(m["systemUserId"]) for m in r.json()["members"]}
                assert found == {u for u in range(N_USERS) if self.member[(t, u)][i]}, (t, i)
            for i in (0, DAYS):
                r = self.client.get(f"/api/v1/teams/{self.teams[t]}", params={"asOf": day(i)}, headers=self.h)
                parent = self.parent[t][i]
                assert r.json()["parentTeamId"] == (None if parent is None else self.teams[parent])
        feed = self.client.get(f"/odata/{self.slug}/TeamMembers", headers=self.h).json()["value"]
        pairs = {(self.teams.index(m["teamId"]), self.users.index(m["systemUserId"])) for m in feed}
        assert pairs == {pair for pair, line in self.member.items() if line[TODAY]}
        self._feed_agrees()

    def _feed(self, path: str, **params: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/odata/{self.slug}/{path}", params=params, headers=self.h)
        assert r.status_code == 200, r.text
        value: list[dict[str, Any]] = r.json()["value"]
        return value

    def _feed_agrees(self) -> None:
        """The feed's $at snapshots on several days and its period sets (whole, and overlapping a window) match
        the model (README.md, "OData feed")."""
        for i in CHECKED:
            feed = self._feed("TeamMembers", **{"$at": day(i)})
            pairs = {(self.teams.index(m["teamId"]), self.users.index(m["systemUserId"])) for m in feed}
            assert pairs == {pair for pair, line in self.member.items() if line[i]}, i
        for i in (0, DAYS):
            users = {u["id"]: u["directManagerId"] for u in self._feed("Users", **{"$at": day(i)})}
            assert [users[u] for u in self.users] == [None if m[i] is None else self.users[m[i]] for m in self.manager]
            teams = {t["id"]: t["parentTeamId"] for t in self._feed("Teams", **{"$at": day(i)})}
            assert [teams[t] for t in self.teams] == [None if p[i] is None else self.teams[p[i]] for p in self.parent]
        periods = self._feed("MembershipPeriods")
        for (t, u), line in self.member.items():
            mine = sorted((p for p in periods if (p["teamId"], p["systemUserId"]) == (self.teams[t], self.users[u])),
                          key=lambda p: p["validFrom"])  # fmt: skip
            assert self._line(mine) == line, (t, u, mine)
        managers = self._feed("ManagerPeriods", **{"$orderby": "validFrom"})
        for u in range(N_USERS):
            mine = [p for p in managers if p["systemUserId"] == self.users[u]]
            assert self._line(mine, lambda p: self.users.index(p["directManagerId"]), None) == self.manager[u]
        parents = self._feed("TeamPeriods", **{"$orderby": "validFrom", "$filter": "parentTeamId ne null"})
        for t in range(N_TEAMS):
            mine = [p for p in parents if p["teamId"] == self.teams[t]]
            got = self._line(mine, lambda p: self.teams.index(p["parentTeamId"]), None)
            assert got == self.parent[t], (t, mine)
        lo, hi = 3, 9
        window = self._feed("MembershipPeriods", **{"$from": day(lo), "$to": day(hi)})
        assert {p["id"] for p in window} == {
            p["id"]
            for p in periods
            if index(p["validFrom"]) < hi and (p["validTo"] is None or index(p["validTo"]) > lo)
        }
        overlapping = {(self.teams.index(p["teamId"]), self.users.index(p["systemUserId"])) for p in window}
        assert overlapping == {pair for pair, line in self.member.items() if any(line[lo:hi])}


def test_timelines_match_the_model(client: httpx.Client, db: Database) -> None:
    """Bounded: fifteen short runs, each in a workspace of its own, today fixed in the calendar's middle."""
    with clock.frozen(START + dt.timedelta(days=TODAY)):
        run_state_machine_as_test(
            lambda: Timelines(client, db),
            settings=settings(
                max_examples=15,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
