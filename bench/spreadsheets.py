"""The ``exports`` scenario: ``GET /api/v1/exports/users.csv`` and ``users.xlsx`` over a workspace of ``size.big``
users, from a freshly started server process (its peak RSS is the exports'), beside a raw ``SELECT`` of the same
columns, tags and aliases written by Python's csv module in this process (bench/README.md)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx

from bench.harness import Backend, Figure, Server, memory_mb, repeat

USERS_SQL = (
    "SELECT id, email, role, active, first_name, last_name, direct_manager_id"
    " FROM users WHERE workspace_id = ? ORDER BY email_key"
)


def _raw_csv(backend: Backend, conn: Any, ws: Any, rep: int) -> float:
    """Rows/s of the users, their tags and their aliases read with ``fetchmany(1000)`` (a server-side cursor on
    PostgreSQL) and the users written as CSV to memory, cleared every chunk."""
    started = time.perf_counter()
    count = 0
    sink = io.StringIO()
    writer = csv.writer(sink)
    for table in ("users", "user_tags", "user_aliases"):
        cur = conn.cursor(name=f"{table}{rep}") if not backend.is_sqlite else conn.cursor()
        if table == "users":
            cur.execute(backend.sql(USERS_SQL), (ws,))
        else:
            cur.execute(
                backend.sql(f"SELECT user_id, value FROM {table} WHERE workspace_id = ? ORDER BY user_id"), (ws,)
            )
        while batch := cur.fetchmany(1000):
            if table == "users":
                writer.writerows(batch)
                count += len(batch)
                sink.seek(0)
                sink.truncate()
        cur.close()
    if not backend.is_sqlite:
        conn.rollback()
    return count / (time.perf_counter() - started)


def _download(server: Server, fmt: str) -> tuple[float, float, int]:
    """Seconds to the first byte of the body, seconds to the last, and the body's size."""
    started = time.perf_counter()
    first = None
    size = 0
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=3600) as client,
        client.stream("GET", f"/api/v1/exports/users.{fmt}", params={"status": "all"}) as r,
    ):
        r.raise_for_status()
        for chunk in r.iter_raw():
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    return first or 0.0, time.perf_counter() - started, size


def exports(backend: Backend, n: int, reps: int, table: Any, seed: Any) -> None:
    """Seed ``n`` users through ``users:bulk`` on one server, then export them from another, fresh one."""
    with backend.database() as env, Server(env, wait=False) as seeder:
        # Both start side by side (a start is mostly imports, one core's work); the exporter idles until the export.
        exporter = Server(env, key=seeder.key, slug=seeder.slug, wait=False)
        try:
            seeder.wait()
            with httpx.Client(base_url=seeder.url, headers=seeder.headers, timeout=3600) as client:
                for start in range(0, n, 100_000):
                    rows = seed(min(100_000, n - start), start, "x")
                    client.post("/api/v1/users:bulk", content=json.dumps(rows)).raise_for_status()
            seeder.stop()
            backend.settle(env)
            exporter.wait()
            started_mib = memory_mb(exporter.proc.pid, "VmRSS")
            conn = backend.connect(env)
            try:
                ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
                raw = repeat(reps, lambda rep: _raw_csv(backend, conn, ws, rep))
            finally:
                conn.close()
            rows = n + 1  # and the workspace's admin
            first_csv, first_xlsx = Figure(), Figure()

            def csv_rate(rep: int) -> float:
                first, total, _ = _download(exporter, "csv")
                first_csv.values.append(first * 1000)
                return rows / total

            csv_rows = repeat(reps, csv_rate)
            csv_peak = memory_mb(exporter.proc.pid, "VmHWM")
            first, total, size = _download(exporter, "xlsx")  # once: it is the slow one
            first_xlsx.values.append(first * 1000)
            xlsx_rows = Figure([rows / total])
            peak = memory_mb(exporter.proc.pid, "VmHWM")
        finally:
            exporter.stop()
    label = f"{n:,} users"
    ratio = csv_rows.median / raw.median
    table.row(f"export CSV rows/s, {label}", backend.name, csv_rows, raw, ratio, "— (raw csv module)", None)
    table.row("  CSV first byte ms", backend.name, first_csv, None, None, "<= 1000 ms", first_csv.median <= 1000, ".0f")
    table.row(
        f"export XLSX rows/s, {label} (n=1)", backend.name, xlsx_rows, raw, xlsx_rows.median / raw.median,
        "— (raw csv module)", None,
    )  # fmt: skip
    table.row("  XLSX first byte ms (whole workbook)", backend.name, first_xlsx, None, None, "", None, ".0f")
    table.row("  server RSS MiB at start", backend.name, Figure([started_mib]), None, None, "", None, ".0f")
    table.row("  server peak RSS MiB after CSV exports", backend.name, Figure([csv_peak]), None, None,
              "<= 300 MiB", csv_peak <= 300, ".0f")  # fmt: skip
    table.row("  server peak RSS MiB after XLSX too", backend.name, Figure([peak]), None, None,
              "<= 300 MiB", peak <= 300, ".0f")  # fmt: skip
    table.note(f"exports ({backend.name}): the XLSX file was {size / 2**20:,.1f} MiB")
