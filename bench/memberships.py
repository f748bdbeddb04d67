"""Single membership writes through the JSON API: an add from today (what every door sent before dates), a dated
add, and an end, each a new pair, timed one request after another in process (Starlette's test client, no
network). Run from a checkout: ``python -m bench.memberships [N]``; the same script runs against an older
checkout's ``src`` (``PYTHONPATH=../main/src``), where the dated requests are skipped.

Prints median and 95th percentile in milliseconds; a figure, not a test (README.md, "Benchmarks")."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from payroster.app import create_app
from payroster.config import Settings
from payroster.db import migrate
from payroster.db.engine import Database
from payroster.services import workspaces


def _timed(n: int, call: Callable[[int], int]) -> tuple[float, float] | None:
    took = []
    for i in range(n):
        start = time.perf_counter()
        status = call(i)
        took.append((time.perf_counter() - start) * 1000)
        if status >= 400:
            return None
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95)]


def main(n: int = 300) -> None:
    """Time ``n`` of each kind of write on a fresh SQLite database."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        # No rate limit: the figure is the write's own time.
        limits = {"rate_limit_per_key": "1000000/second", "rate_limit_per_workspace": "1000000/second"}
        settings = Settings(database_url=url, secret_key="bench", **limits)
        db = Database(settings)
        migrate.upgrade(db.engine)
        with db.write() as s:
            made = workspaces.create(s, "Bench", "admin@bench.example", None)
            key = made.api_key
        h = {"X-ApiKey": key}
        with TestClient(create_app(settings, db)) as client:
            team = client.post("/api/v1/teams", json={"name": "East"}, headers=h).json()["id"]
            users = [
                client.post("/api/v1/users", json={"emailAddress": f"u{i}@b.example", "role": "Participant"},
                            headers=h).json()["id"]
                for i in range(3 * n)
            ]  # fmt: skip

            def add(i: int) -> int:
                return client.post("/api/v1/team-members", json={"systemUserId": users[i], "teamId": team},
                                   headers=h).status_code  # fmt: skip

            def dated(i: int) -> int:
                body = {"systemUserId": users[n + i], "teamId": team, "validFrom": "2026-01-01",
                        "validTo": "2026-03-01"}  # fmt: skip
                return client.post("/api/v1/team-members", json=body, headers=h).status_code

            def end(i: int) -> int:
                return client.post("/api/v1/team-members:delete", json={"systemUserId": users[i], "teamId": team},
                                   headers=h).status_code  # fmt: skip

            for name, call in (("add from today", add), ("dated add", dated), ("end today", end)):
                got = _timed(n, call)
                figure = "not offered" if got is None else f"median {got[0]:.2f} ms, p95 {got[1]:.2f} ms"
                print(f"{name:>15}: {figure}")
        db.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
