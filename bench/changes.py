"""Change flow (bench/README.md, "Scenarios"): the OData delta of 1,000 changed users among many, beside the same
1,000 users read by key through the feed; and the change feed read from its start, beside a raw ``SELECT`` of the
same events through the driver.

The users are written by ``users:bulk`` (one ``user.created`` event each); the 1,000 changes are one more
``users:bulk`` updating the first names of users spread over the table. The delta link comes from a real tracked
read of the whole set (pages of 5,000), taken before the changes."""

from __future__ import annotations

import contextlib
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Backend, Figure, Server, repeat

REPS = 3
CHANGED = 1_000
BY_KEY = 250  # ids per `$filter=id in (...)` request: 250 GUIDs keep the request line under h11's 16 KiB
FEED_SQL = (
    "SELECT sequence, occurred_at, action, target_type, target_id, actor_kind, actor_user_id, channel, changes"
    " FROM audit_events WHERE workspace_id = ? AND sequence > ? ORDER BY sequence LIMIT 1000"
)


def _median_ms(fn: Any, times: int) -> float:
    fn()
    spent = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent) * 1000


def _follow(client: httpx.Client, url: str, headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    """Read every page of a collection or a delta; how many entries, and the delta link at the end."""
    count, link = 0, None
    next_url: str | None = url
    while next_url is not None:
        r = client.get(next_url, headers=headers)
        r.raise_for_status()
        body = r.json()
        count += len(body["value"])
        next_url = body.get("@odata.nextLink")
        link = body.get("@odata.deltaLink", link)
    return count, link


def changes(backend: Backend, users: int, table: Any, user_rows: Any) -> None:
    """Seed ``users`` users, track them, change 1,000, and time the delta, the by-key reads and the feed."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(backend.database())
        server = stack.enter_context(Server(env))
        client = stack.enter_context(httpx.Client(base_url=server.url, headers=server.headers, timeout=3600))
        for seeded in range(0, users, 100_000):
            rows = user_rows(min(100_000, users - seeded), seeded, "c")
            client.post("/api/v1/users:bulk", content=json.dumps(rows)).raise_for_status()
        backend.settle(env)
        root = f"/odata/{server.slug}"
        tracked = {"Prefer": "odata.track-changes, odata.maxpagesize=5000"}
        seen, delta = _follow(client, f"{root}/Users", tracked)
        assert seen == users + 1 and delta is not None, seen
        step = max(1, users // CHANGED)
        changed = [row | {"firstName": "Changed"} for row in user_rows(users, 0, "c")[::step][:CHANGED]]
        made = client.post("/api/v1/users:bulk", content=json.dumps(changed)).json()["users"]
        ids = [u["id"] for u in made]
        count, _ = _follow(client, delta)
        assert CHANGED <= count <= CHANGED + 3, count  # + the workspace's first events when they were not numbered

        def by_key() -> None:
            for i in range(0, len(ids), BY_KEY):
                listed = ",".join(ids[i : i + BY_KEY])
                got = client.get(f"{root}/Users", params={"$filter": f"id in ({listed})"})
                got.raise_for_status()

        ours_delta = repeat(REPS, lambda rep: _median_ms(lambda: _follow(client, delta), 9))
        base_keys = repeat(REPS, lambda rep: _median_ms(by_key, 9))

        # The change feed from its start, numbered once before the clock (a first read numbers every event), read
        # by a process of its own as the export's client (bench/feed_client.py); the raw reads run with the
        # collector off as that client does.
        total = _feed(client, None)
        # Numbering rewrote every event: settled as after the seeding (on PostgreSQL the vacuum autovacuum would
        # run, without which the index of the unnumbered events keeps an entry per old row version and the probe
        # at each pass's last page visits them all; bench/JOURNAL.md, "the change feed's read rate at size").
        backend.settle(env)
        parse_rate, served = Figure(), Figure()

        def feed(rep: int) -> float:
            got = _feed_client(server)
            assert got["events"] == total, (got, total)
            parse_rate.values.append(got["events"] / got["parse_seconds"])
            served.values.append(got["events"] / (got["seconds"] - got["parse_seconds"]))
            return float(got["events"] / got["seconds"])

        ours_feed = repeat(REPS, feed)
        conn = backend.connect(env)
        stack.callback(conn.close)
        ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
        statement = backend.sql(FEED_SQL)

        def raw() -> None:
            after, n = 0, 0
            while True:
                rows = conn.execute(statement, (ws, after)).fetchall()
                if not rows:
                    break
                n += len(rows)
                after = rows[-1][0]
            if not backend.is_sqlite:
                conn.rollback()
            assert n == total, (n, total)

        with _collector_off():
            base_feed = repeat(REPS, lambda rep: total / _seconds(raw))
        table.note(f"change flow ({backend.name}): {users:,} users, {CHANGED:,} changed, {total:,} events in the feed")
        ratio = ours_delta.median / base_keys.median
        table.row(f"delta of {CHANGED:,} changes ms", backend.name, ours_delta, base_keys, ratio,
                  "<= 2x the same users by key", ratio <= 2, ".1f")  # fmt: skip
        ratio = ours_feed.median / base_feed.median
        table.row("change feed events/s", backend.name, ours_feed, base_feed, ratio, ">= 0.30x raw SELECT",
                  ratio >= 0.3)  # fmt: skip
        table.row("  feed client's own parse, events/s", backend.name, parse_rate, None, None, "", None)
        ratio = served.median / base_feed.median  # for reading only: the target counts the client's parse
        table.row("  the same, the client's parse left out", backend.name, served, base_feed, ratio, "", None)


def _feed(client: httpx.Client, after: str | None) -> int:
    """Read the whole feed from ``after`` in pages of 1,000; how many events."""
    n = 0
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({} if after is None else {"after": after})
        r = client.get("/api/v1/changes", params=params)
        r.raise_for_status()
        body = r.json()
        if not body["changes"]:
            return n
        n += len(body["changes"])
        after = body["next"]


def _feed_client(server: Server) -> dict[str, float]:
    """The whole feed read by ``bench/feed_client.py``: events, pages, seconds, parse seconds."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.feed_client", f"{server.url}/api/v1/changes", server.key],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """The cyclic collector off, as in the feed's client (and the export's baseline: ``quiet_collector``)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


__all__ = ["Figure", "changes"]
