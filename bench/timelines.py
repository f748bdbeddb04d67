"""The feed's application time at scale (bench/README.md, "Scenarios"): the first page of a team's members as of
a day (``Teams(<id>)/members?$at=``) and of the membership periods overlapping a month
(``MembershipPeriods?$from=&$to=``), each beside the same question asked in SQL through the driver.

The users are written by ``users:bulk`` as in the growth scenario; their periods (three a user: one team until
1 July 2025, a second until 1 March 2026, a third from then on, the teams taken in turn) and today's memberships are
inserted by the driver, as a migration of existing data would: a million API requests would measure the writes,
which bench/memberships.py times on their own."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import httpx

from bench.harness import Backend, Figure, Server, repeat
from payroster import ids

REPS = 3
PERIODS = (
    (dt.date(2025, 1, 1), dt.date(2025, 7, 1)),
    (dt.date(2025, 7, 1), dt.date(2026, 3, 1)),
    (dt.date(2026, 3, 1), None),
)
AT = "2026-02-28"
MONTH = ("2026-02-01", "2026-03-01")
MEMBERS_SQL = (
    "SELECT u.id, u.email, u.first_name, u.last_name, u.role, u.active, u.direct_manager_id, u.created_at,"
    " u.updated_at FROM membership_periods p JOIN users u ON u.workspace_id = p.workspace_id AND u.id = p.user_id"
    " WHERE p.workspace_id = ? AND p.team_id = ? AND {+}p.valid_from <= ?"
    " AND ({+}p.valid_to IS NULL OR {+}p.valid_to > ?)"
    " ORDER BY p.user_id LIMIT 100"
)
PERIODS_SQL = (
    "SELECT id, team_id, user_id, valid_from, valid_to FROM membership_periods WHERE workspace_id = ?"
    " AND {+}valid_from < ? AND ({+}valid_to IS NULL OR {+}valid_to > ?) ORDER BY id LIMIT 100"
)
# On SQLite the baseline is given the plan the feed asks for (odata/temporal.py, ``unindexed``): written plainly,
# SQLite reads the periods through the index on valid_from, which the feed's figure would then be compared with.
PLAIN = {True: "+", False: ""}


def _seed_periods(backend: Backend, env: dict[str, str], teams: list[str]) -> tuple[Any, int]:
    """Three periods per user of the workspace, today's memberships beside them; returns the workspace id and how
    many periods were written."""
    conn = backend.connect(env)
    try:
        ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
        users = [row[0] for row in conn.execute(backend.sql("SELECT id FROM users WHERE workspace_id = ?"), (ws,))]
        team_ids = [backend.uid(ids.parse_id(t)) for t in teams]  # type: ignore[arg-type]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        today = now.date()
        written = 0
        for start in range(0, len(users), 50_000):
            chunk = users[start : start + 50_000]
            periods, current = [], []
            for i, user in enumerate(chunk, start):
                for k, (lo, hi) in enumerate(PERIODS):
                    team = team_ids[(i + k) % len(team_ids)]
                    periods.append((ws, backend.uid(ids.new_id()), team, user, lo, hi, now))
                    if lo <= today and (hi is None or hi > today):
                        current.append((ws, team, user, now))
            conn.cursor().executemany(
                backend.sql(
                    "INSERT INTO membership_periods (workspace_id, id, team_id, user_id, valid_from, valid_to,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                periods,
            )
            conn.cursor().executemany(
                backend.sql(
                    "INSERT INTO team_members (workspace_id, team_id, user_id, created_at) VALUES (?, ?, ?, ?)"
                ),
                current,
            )
            written += len(periods)
        conn.commit()
        if not backend.is_sqlite:
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) membership_periods, team_members, teams")
        return ws, written
    finally:
        conn.close()


def _median_ms(fn: Any, times: int = 21) -> float:
    import statistics
    import time

    fn()
    spent = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent) * 1000


def timelines(backend: Backend, users: int, teams_count: int, table: Any, user_rows: Any) -> None:
    """Seed ``users`` users and three times as many periods, then time both first pages and their SQL."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(backend.database())
        server = stack.enter_context(Server(env))
        client = stack.enter_context(httpx.Client(base_url=server.url, headers=server.headers, timeout=3600))
        for seeded in range(0, users, 100_000):
            rows = user_rows(min(100_000, users - seeded), seeded, "t")
            client.post("/api/v1/users:bulk", content=json.dumps(rows)).raise_for_status()
        teams = [client.post("/api/v1/teams", json={"name": f"Team {i}"}).json()["id"] for i in range(teams_count)]
        ws, written = _seed_periods(backend, env, teams)
        backend.settle(env)
        team = teams[len(teams) // 2]
        root = f"/odata/{server.slug}"
        members = {"$at": AT, "$top": "100"}
        periods = {"$from": MONTH[0], "$to": MONTH[1], "$top": "100"}
        first = client.get(f"{root}/Teams({team})/members", params=members)
        first.raise_for_status()
        assert len(first.json()["value"]) == 100, first.text[:300]
        ours_members = repeat(REPS, lambda rep: _median_ms(
            lambda: client.get(f"{root}/Teams({team})/members", params=members).raise_for_status()))  # fmt: skip
        ours_periods = repeat(REPS, lambda rep: _median_ms(
            lambda: client.get(f"{root}/MembershipPeriods", params=periods).raise_for_status()))  # fmt: skip
        conn = backend.connect(env)
        stack.callback(conn.close)
        day = dt.date.fromisoformat(AT)
        lo, hi = (dt.date.fromisoformat(d) for d in MONTH)
        tid = backend.uid(ids.parse_id(team))  # type: ignore[arg-type]

        def raw(sql: str, args: tuple[Any, ...]) -> Figure:
            statement = backend.sql(sql.replace("{+}", PLAIN[backend.is_sqlite]))

            def once() -> None:
                conn.execute(statement, args).fetchall()
                if not backend.is_sqlite:
                    conn.rollback()

            return repeat(REPS, lambda rep: _median_ms(once))

        raw_members = raw(MEMBERS_SQL, (ws, tid, day, day))
        raw_periods = raw(PERIODS_SQL, (ws, hi, lo))
        table.note(f"time travel ({backend.name}): {users:,} users in {teams_count:,} teams, {written:,} periods")
        for label, ours, base in (
            ("$at page of Teams(<id>)/members ms", ours_members, raw_members),
            ("$from/$to page of MembershipPeriods ms", ours_periods, raw_periods),
        ):
            target = 2 * base.median + 5
            table.row(label, backend.name, ours, base, ours.median / base.median, f"<= 2x raw + 5 = {target:.1f} ms",
                      ours.median <= target, ".1f")  # fmt: skip
