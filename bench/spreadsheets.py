"""The ``exports`` scenario: ``GET /api/v1/exports/users.csv`` and ``users.xlsx`` over a workspace of ``size.big``
users, from a freshly started server (its worker processes' peak RSS is the exports'), beside a raw ``SELECT`` of
the same columns, tags and aliases written by Python's csv module in this process (bench/README.md). The ``imports``
scenario: the same users imported by ``payroster import users`` and through ``POST /api/v1/imports/users`` into a
freshly started server (its workers' peak RSS is the import's)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import xlsxwriter

from bench.harness import Backend, Figure, Server, cli_peak_rss, repeat, server_mb, setup

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
            started_mib = server_mb(exporter, "VmRSS")
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
            csv_peak = server_mb(exporter, "VmHWM")
            first, total, size = _download(exporter, "xlsx")  # once: it is the slow one
            first_xlsx.values.append(first * 1000)
            xlsx_rows = Figure([rows / total])
            peak = server_mb(exporter, "VmHWM")
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
    table.row("  XLSX first byte ms", backend.name, first_xlsx, None, None, "<= 1000 ms", first_xlsx.median <= 1000,
              ".0f")  # fmt: skip
    table.row("  server RSS MiB at start", backend.name, Figure([started_mib]), None, None, "", None, ".0f")
    table.row("  server peak RSS MiB after CSV exports", backend.name, Figure([csv_peak]), None, None,
              "<= 300 MiB", csv_peak <= 300, ".0f")  # fmt: skip
    table.row("  server peak RSS MiB after XLSX too", backend.name, Figure([peak]), None, None,
              "<= 300 MiB", peak <= 300, ".0f")  # fmt: skip
    table.note(f"exports ({backend.name}): the XLSX file was {size / 2**20:,.1f} MiB")


# -- imports --------------------------------------------------------------------------------------------------


def _write_users_file(path: Path, n: int, rows: Any, fmt: str) -> None:
    """``n`` import rows (``rows(count, start, prefix)``) written to ``path`` a chunk at a time, as CSV or XLSX."""
    columns = list(rows(1)[0])
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for start in range(0, n, 100_000):
                writer.writerows(rows(min(100_000, n - start), start, "i"))
        return
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("Users")
    sheet.write_row(0, 0, columns)
    r = 1
    for start in range(0, n, 100_000):
        for row in rows(min(100_000, n - start), start, "i"):
            sheet.write_row(r, 0, [row[c] for c in columns])
            r += 1
    book.close()


def upload(backend: Backend, path: Path) -> tuple[float, float, dict[str, Any]]:
    """``path`` imported through ``POST /api/v1/imports/users`` into a fresh database served by a freshly started
    ``payroster serve``: seconds (from the first byte sent to the answer), the server's peak RSS in MiB (its
    largest worker's ``VmHWM``, read before it stops) and the answer."""
    with backend.database() as env, Server(env) as server:
        before = server_mb(server, "VmHWM")
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=3600) as client, path.open("rb") as f:
            started = time.perf_counter()
            # A file object: httpx sends it a chunk at a time, with its length.
            done = client.post("/api/v1/imports/users", content=f, headers={"Content-Type": "text/csv"})
            seconds = time.perf_counter() - started
        done.raise_for_status()
        peak = server_mb(server, "VmHWM")
    if peak < before:  # a worker restarted: its peak is lost
        raise RuntimeError("a server worker restarted during the import")
    return seconds, peak, done.json()


def imports(backend: Backend, n: int, table: Any, rows: Any, raw_import: Any) -> None:
    """``payroster import users`` of ``n`` and ``5 n`` new users from CSV (and ``n`` from XLSX), each into a fresh
    database, once each (n=1): seconds and the command's own peak RSS, beside the raw inserts of ``n`` rows; then
    the same CSV files through the server's import door: seconds and the server's peak RSS."""
    for count, fmt in ((n, "csv"), (5 * n, "csv"), (n, "xlsx")):
        with tempfile.TemporaryDirectory(prefix="payroster-import-") as tmp:
            path = Path(tmp) / f"users.{fmt}"
            _write_users_file(path, count, rows, fmt)
            size_mib = path.stat().st_size / 2**20
            with backend.database() as env:
                made = setup(env, "workspace", "create", "--name", "Bench", "--admin-email", "b@x.com", "--json")
                slug = json.loads(made)["workspaceSlug"]
                started = time.perf_counter()
                peak = cli_peak_rss(env, "import", "users", "--workspace", slug, str(path))
                seconds = time.perf_counter() - started
                raw = None
                if count == n and fmt == "csv":
                    # The raw inserts of the same rows, 100,000 at a time (rows/s), into the same database.
                    spent = 0.0
                    for s in range(0, n, 100_000):
                        chunk = min(100_000, n - s)
                        spent += chunk / raw_import(backend, env, rows(chunk, s, "raw"))
                    raw = Figure([n / spent])
            if fmt == "csv":
                served, server_peak, answer = upload(backend, path)
                if answer["sheets"]["Users"]["created"] != count:
                    raise RuntimeError(f"the server's import created {answer['sheets']['Users']} of {count:,}")
        label = f"import {count:,} users from {fmt.upper()} ({size_mib:,.0f} MiB), rows/s (n=1)"
        mine = Figure([count / seconds])
        table.row(label, backend.name, mine, raw, mine.median / raw.median if raw else None,
                  "— (raw executemany)" if raw else "", None, ".0f")  # fmt: skip
        table.row(f"  {count:,} rows: seconds", backend.name, Figure([seconds]), None, None, "", None, ".1f")
        table.row(f"  {count:,} rows: the command's peak RSS MiB", backend.name, Figure([peak]), None, None,
                  "<= 300 MiB", peak <= 300, ".0f")  # fmt: skip
        if fmt == "csv":
            rate = Figure([count / served])
            table.row(f"  {count:,} rows through POST /api/v1/imports/users, rows/s (n=1)", backend.name, rate, None,
                      None, "", None, ".0f")  # fmt: skip
            table.row(f"  {count:,} rows through the server: seconds", backend.name, Figure([served]), None, None, "",
                      None, ".1f")  # fmt: skip
            table.row(f"  {count:,} rows: the server's peak RSS MiB (largest worker)", backend.name,
                      Figure([server_peak]), None, None, "<= 300 MiB", server_peak <= 300, ".0f")  # fmt: skip
