"""``python -m bench [--quick] [--json PATH]``: single upserts over HTTP and bulk import on SQLite.

Each figure is printed beside its baseline from the same run: upserts/s beside the same server's cheapest
authenticated endpoint (GET /api/v1/me) and the load generator's ceiling (GET /healthz); bulk rows/s beside
a raw ``executemany`` of the same rows into the same tables. Nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from payroster import ids
from payroster.config import Settings
from payroster.db import migrate
from payroster.db.engine import Database

CLIENTS = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real ``payroster serve`` on 127.0.0.1 over a fresh SQLite file, with a workspace and key."""

    def __init__(self, workdir: Path, key: str | None = None) -> None:
        """Start a server; with ``key``, reuse the database and workspace a previous server made."""
        self.env = {
            **os.environ,
            "PAYROSTER_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            # The benchmark measures throughput, not the rate limiter's refusals.
            "PAYROSTER_RATE_LIMIT_PER_KEY": "1000000/second",
            "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "1000000/second",
        }
        if key is None:
            out = subprocess.run(
                [sys.executable, "-m", "payroster", "workspace", "create", "--name", "Bench"]
                + ["--admin-email", "b@x.com", "--json"],
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            )
            key = json.loads(out.stdout)["apiKey"]
        self.key = key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "payroster", "serve", "--port", str(self.port), "--workers", "1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Generous: the first start on a large SQLite file may apply a migration first.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def _load(
    url: str, duration: float, make: Callable[[int], tuple[str, str, Any]], headers: dict[str, str]
) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.monotonic() + duration
    counter = iter(range(10**9))
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            method, path, body = make(next(counter))
            t0 = time.perf_counter()
            r = await client.request(method, path, json=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code >= 400

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": errors,
    }


def upsert_scenario(duration: float) -> dict[str, Any]:
    """Upserts (creates, then updates adding tags) beside GET /api/v1/me and GET /healthz."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            headers = {"X-ApiKey": server.key}
            ceiling = asyncio.run(_load(server.url, duration, lambda i: ("GET", "/healthz", None), {}))
            baseline = asyncio.run(_load(server.url, duration, lambda i: ("GET", "/api/v1/me", None), headers))

            def upsert(i: int) -> tuple[str, str, Any]:
                body = {"emailAddress": f"user{i % 5000}@bench.example", "role": "Participant", "tags": f"T{i % 7}"}
                return "POST", "/api/v1/users", body

            upserts = asyncio.run(_load(server.url, duration, upsert, headers))
        finally:
            server.stop()
    return {
        "upsert": upserts,
        "me_baseline": baseline,
        "healthz_ceiling": ceiling,
        "ratio": upserts["rps"] / baseline["rps"],
    }


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "emailAddress": f"bulk{i}@bench.example",
            "role": "Participant",
            "firstName": "F",
            "lastName": f"L{i}",
            "tags": "A|B",
        }
        for i in range(n)
    ]


def raw_executemany(path: Path, n: int) -> float:
    """The same rows into users, user_tags and audit_events with plain sqlite3: rows/s."""
    conn = sqlite3.connect(path)
    ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
    now = "2026-01-01 00:00:00.000000"
    started = time.perf_counter()
    users, tags, events = [], [], []
    for i in range(n):
        uid = ids.new_id().hex
        users.append(
            (ws, uid, f"raw{i}@bench.example", f"raw{i}@bench.example", "Participant", 1, "F", f"L{i}", now, now)
        )
        tags += [(ws, uid, "a", "A", 0), (ws, uid, "b", "B", 1)]
        events.append((ws, ids.new_id().hex, now, None, "cli", "import", "user.created", "user", uid, "[]"))
    with conn:
        conn.executemany(
            "INSERT INTO users (workspace_id, id, email, email_key, role, active, first_name, last_name, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            users,
        )
        conn.executemany(
            "INSERT INTO user_tags (workspace_id, user_id, value_key, value, position) VALUES (?,?,?,?,?)", tags
        )
        conn.executemany(
            "INSERT INTO audit_events (workspace_id, id, occurred_at, actor_user_id, actor_kind, channel, action,"
            " target_type, target_id, changes) VALUES (?,?,?,?,?,?,?,?,?,?)",
            events,
        )
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def bulk_scenario(n: int) -> dict[str, Any]:
    """One users:bulk request of n rows beside raw executemany on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        raw_db = Path(tmp) / "raw.db"
        db = Database(Settings(database_url=f"sqlite:///{raw_db}", secret_key="bench"))
        migrate.upgrade(db.engine)
        db.dispose()
        conn = sqlite3.connect(raw_db)
        with conn:
            conn.execute(
                "INSERT INTO workspaces (id, slug, name, default_scim_role, created_at) VALUES (?,?,?,?,?)",
                (ids.new_id().hex, "raw", "Raw", "Participant", "2026-01-01 00:00:00"),
            )
        conn.close()
        raw = raw_executemany(raw_db, n)
        server = Server(Path(tmp))
        try:
            body = json.dumps(rows(n))
            started = time.perf_counter()
            r = httpx.post(
                server.url + "/api/v1/users:bulk", content=body, headers={"X-ApiKey": server.key}, timeout=600
            )
            elapsed = time.perf_counter() - started
            r.raise_for_status()
        finally:
            server.stop()
    ours = n / elapsed
    return {"rows": n, "payroster_rows_per_s": ours, "raw_rows_per_s": raw, "ratio": ours / raw}


def memory_mb(pid: int, field: str) -> float:
    """A process's ``VmRSS`` (now) or ``VmHWM`` (peak) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


FIRST_PAGE = {
    "$filter": "tags/any(t: t eq 'T3')",
    "$orderby": "lastName,id",
    "$top": "100",
    "$select": "id,emailAddress,lastName",
}
FIRST_PAGE_SQL = (
    "SELECT u.id, u.email, u.last_name FROM users u WHERE u.workspace_id = ? AND EXISTS (SELECT 1 FROM user_tags t"
    " WHERE t.workspace_id = u.workspace_id AND t.user_id = u.id AND t.value = 'T3') ORDER BY u.last_name, u.id"
    " LIMIT 100"
)


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def odata_scenario(n: int) -> dict[str, Any]:
    """Over n users: a filtered, ordered first page and a full export by nextLinks, each beside raw SQL
    on the same file through the driver (sqlite3), and the server's peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        headers = {"X-ApiKey": server.key}
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
                for start in range(0, n, 100_000):
                    chunk = [
                        {
                            "emailAddress": f"p{i}@bench.example",
                            "role": "Participant",
                            "firstName": f"F{i % 97}",
                            "lastName": f"L{(i * 7919) % n:07d}",
                            "tags": f"T{i % 10}|All",
                        }
                        for i in range(start, min(n, start + 100_000))
                    ]
                    client.post("/api/v1/users:bulk", content=json.dumps(chunk)).raise_for_status()
        finally:
            server.stop()
        # A fresh process for the reads, so its peak memory is the feed's, not the import's.
        server = Server(Path(tmp), key=server.key)
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
                slug = client.get("/api/v1/me").json()["workspaceSlug"]
                root = f"/odata/{slug}/"
                rss_before = memory_mb(server.proc.pid, "VmRSS")

                def first_page() -> None:
                    r = client.get(root + "Users", params=FIRST_PAGE)
                    r.raise_for_status()
                    assert len(r.json()["value"]) == min(100, n // 10)

                first_page()  # warm caches on both sides alike
                ours_ms = _median_ms(first_page, 21)

                started = time.perf_counter()
                exported = 0
                body = client.get(root + "Users").json()
                exported += len(body["value"])
                while "@odata.nextLink" in body:
                    body = client.get(body["@odata.nextLink"]).json()
                    exported += len(body["value"])
                export_s = time.perf_counter() - started
                peak = memory_mb(server.proc.pid, "VmHWM")
        finally:
            server.stop()

        conn = sqlite3.connect(Path(tmp) / "bench.db")
        ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
        raw_first = lambda: conn.execute(FIRST_PAGE_SQL, (ws,)).fetchall()  # noqa: E731
        raw_first()
        raw_ms = _median_ms(raw_first, 21)
        started = time.perf_counter()
        raw_rows = 0
        users = conn.execute(
            "SELECT id, email, role, active, first_name, last_name, direct_manager_id, created_at, updated_at"
            " FROM users WHERE workspace_id = ? ORDER BY id",
            (ws,),
        )
        while batch := users.fetchmany(1000):
            raw_rows += len(batch)
        for table in ("user_tags", "user_aliases"):
            cur = conn.execute(f"SELECT user_id, value FROM {table} WHERE workspace_id = ? ORDER BY user_id", (ws,))
            while cur.fetchmany(1000):
                pass
        raw_s = time.perf_counter() - started
        conn.close()
    return {
        "users": n,
        "first_page_ms": ours_ms,
        "first_page_raw_ms": raw_ms,
        "first_page_target_ms": 2 * raw_ms + 5,
        "export_rows": exported,
        "export_rows_per_s": exported / export_s,
        "export_raw_rows_per_s": raw_rows / raw_s,
        "export_ratio": (exported / export_s) / (raw_rows / raw_s),
        "server_rss_before_export_mb": rss_before,
        "server_peak_rss_mb": peak,
    }


SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _scim_user(name: str) -> dict[str, Any]:
    return {
        "schemas": [SCIM_USER],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": name.split("@")[0]},
        "emails": [{"value": name, "type": "work", "primary": True}],
        "active": True,
    }


async def _seed_scim(url: str, headers: dict[str, str], names: list[str]) -> list[str]:
    """Create users by SCIM POST, 16 at a time; returns their ids."""
    ids: list[str] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, headers=headers) as client:
        for start in range(0, len(names), CLIENTS * 8):
            batch = names[start : start + CLIENTS * 8]
            answers = await asyncio.gather(*(client.post("/Users", json=_scim_user(n)) for n in batch))
            for r in answers:
                r.raise_for_status()
                ids.append(r.json()["id"])
    return ids


def _scim_mix(names: list[str], ids: list[str], tag: str) -> Callable[[int], tuple[str, str, Any]]:
    """Entra-like: 60% userName lookups, 20% creates, 20% PATCHes of displayName."""

    def make(i: int) -> tuple[str, str, Any]:
        kind = i % 10
        if kind < 6:
            return "GET", f'/Users?filter=userName eq "{names[(i * 7919) % len(names)]}"', None
        if kind < 8:
            return "POST", "/Users", _scim_user(f"new{tag}{i}@bench.example")
        op = {"op": "replace", "path": "displayName", "value": f"Name {i}"}
        return "PATCH", f"/Users/{ids[(i * 104729) % len(ids)]}", {"schemas": [SCIM_PATCH], "Operations": [op]}

    return make


def scim_scenario(n: int, duration: float) -> dict[str, Any]:
    """The Entra-like mix against PayRoster and against scim2-server, each holding the same n users."""
    names = [f"u{i}@bench.example" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            token = subprocess.run(
                [sys.executable, "-m", "payroster", "scim-token", "create", "--workspace", "bench", "--json"],
                env=server.env,
                capture_output=True,
                text=True,
                check=True,
            )
            headers = {"Authorization": "Bearer " + json.loads(token.stdout)["token"]}
            root = server.url + "/scim/v2/bench"
            ids = asyncio.run(_seed_scim(root, headers, names))
            ours = asyncio.run(_load(root, duration, _scim_mix(names, ids, "p"), headers))
        finally:
            server.stop()
    port = free_port()
    peer = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.peer_scim:app", "--port", str(port), "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        peer_root = f"http://127.0.0.1:{port}/v2"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(peer_root + "/ServiceProviderConfig").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        peer_ids = asyncio.run(_seed_scim(peer_root, {}, names))
        theirs = asyncio.run(_load(peer_root, duration, _scim_mix(names, peer_ids, "s"), {}))
    finally:
        peer.terminate()
        peer.wait(timeout=30)
    return {"users": n, "payroster": ours, "scim2_server": theirs, "ratio": ours["rps"] / theirs["rps"]}


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "workers": 1,
        "clients": CLIENTS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI (under two minutes)")
    parser.add_argument("--json", default="var/bench.json", help="where to write the figures")
    parser.add_argument(
        "--only",
        choices=["upsert", "bulk", "odata", "scim"],
        action="append",
        help="run only these scenarios (repeatable)",
    )
    args = parser.parse_args()
    duration, n = (3.0, 5_000) if args.quick else (20.0, 100_000)
    n_odata = 20_000 if args.quick else 1_000_000
    report = {"machine": machine(), "mode": "quick" if args.quick else "full"}
    print("machine:", json.dumps(report["machine"]))
    wanted = set(args.only or ["upsert", "bulk", "odata", "scim"])
    n_scim = 500 if args.quick else 10_000
    print(f"{'scenario':<34}{'ours':>14}{'baseline':>14}{'ratio':>8}")
    if "upsert" in wanted:
        upsert_report(report, duration)
    if "bulk" in wanted:
        bulk_report(report, n)
    if "odata" in wanted:
        odata_report(report, n_odata)
    if "scim" in wanted:
        scim_report(report, n_scim, duration)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")


def upsert_report(report: dict[str, Any], duration: float) -> None:
    report["single_upsert_sqlite"] = up = upsert_scenario(duration)
    print(
        f"{'upsert req/s vs GET /me':<34}{up['upsert']['rps']:>14.0f}"
        f"{up['me_baseline']['rps']:>14.0f}{up['ratio']:>8.2f}"
    )
    print(f"{'  p50 / p99 ms (upsert)':<34}{up['upsert']['p50_ms']:>14.1f}{up['upsert']['p99_ms']:>14.1f}")
    print(f"{'  generator ceiling /healthz req/s':<34}{up['healthz_ceiling']['rps']:>14.0f}")


def bulk_report(report: dict[str, Any], n: int) -> None:
    report["bulk_sqlite"] = bk = bulk_scenario(n)
    print(
        f"{'bulk rows/s vs raw executemany':<34}{bk['payroster_rows_per_s']:>14.0f}"
        f"{bk['raw_rows_per_s']:>14.0f}{bk['ratio']:>8.2f}"
    )


def scim_report(report: dict[str, Any], n: int, duration: float) -> None:
    report["scim_sqlite"] = sc = scim_scenario(n, duration)
    ours, theirs = sc["payroster"], sc["scim2_server"]
    print(
        f"{'SCIM Entra mix req/s vs scim2-server':<34}{ours['rps']:>14.0f}{theirs['rps']:>14.0f}"
        f"{sc['ratio']:>8.2f}   target >= 3.00 ({n:,} users)"
    )
    print(
        f"{'  p95 ms ours / scim2-server':<34}{ours['p95_ms']:>14.1f}{theirs['p95_ms']:>14.1f}"
        f"   target <= 50 ms; errors {ours['errors']} / {theirs['errors']}"
    )


def odata_report(report: dict[str, Any], n_odata: int) -> None:
    report["odata_sqlite"] = od = odata_scenario(n_odata)
    print(
        f"{'OData first page ms vs raw SQL':<34}{od['first_page_ms']:>14.1f}{od['first_page_raw_ms']:>14.1f}"
        f"{od['first_page_ms'] / od['first_page_raw_ms']:>8.2f}   target <= {od['first_page_target_ms']:.1f} ms"
        f" ({od['users']:,} users)"
    )
    print(
        f"{'OData export rows/s vs raw SELECT':<34}{od['export_rows_per_s']:>14.0f}{od['export_raw_rows_per_s']:>14.0f}"
        f"{od['export_ratio']:>8.2f}   target >= 0.30 ({od['export_rows']:,} rows)"
    )
    print(
        f"{'  server RSS MiB before / peak':<34}{od['server_rss_before_export_mb']:>14.0f}"
        f"{od['server_peak_rss_mb']:>14.0f}   target peak <= 300"
    )


if __name__ == "__main__":
    main()
