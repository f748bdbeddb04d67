"""Crash safety: SIGKILL the server in the middle of a bulk import and of a burst of single upserts, restart it,
and check that the bulk import is entirely present or entirely absent, that every acknowledged upsert is
there (with all its tags), that the database passes its integrity check, and that the server starts cleanly.
Sizes: PAYROSTER_CRASH_ROWS (20,000 by default; the issue's full form is 100,000)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import create_workspace
from tests.procs import serve

ROWS = int(os.environ.get("PAYROSTER_CRASH_ROWS", "20000"))
FRACTIONS = (0.25, 0.5, 0.75, 0.9, 1.0)


def _rows(batch: str, n: int) -> list[dict[str, Any]]:
    return [
        {"emailAddress": f"{batch}-{i:06d}@crash.example", "role": "Participant", "tags": [batch, "Crash"]}
        for i in range(n)
    ]


def _count(env: dict[str, str], like: str) -> int:
    engine = create_engine(env["PAYROSTER_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM users WHERE email LIKE :p"), {"p": like}).scalar_one())
    finally:
        engine.dispose()


def _check_database(env: dict[str, str]) -> None:
    url = env["PAYROSTER_DATABASE_URL"]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            duplicates = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT workspace_id, email_key FROM users "
                    "GROUP BY workspace_id, email_key HAVING count(*) > 1) d"
                )
            ).scalar_one()
            assert duplicates == 0
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM user_tags t LEFT JOIN users u ON u.workspace_id = t.workspace_id "
                    "AND u.id = t.user_id WHERE u.id IS NULL"
                )  # fmt: skip
            ).scalar_one()
            assert orphans == 0
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []


def _clean_start(log: Path) -> None:
    text_ = log.read_text(errors="replace")
    assert "Traceback" not in text_ and "ERROR" not in text_, text_[-3000:]


def test_sigkill_during_bulk_import_is_all_or_nothing(env: dict[str, str], tmp_path: Path) -> None:
    made = create_workspace(env)
    headers = {"X-ApiKey": made["apiKey"]}
    survived = {"present": 0, "absent": 0}
    with serve(env, tmp_path / "warm.log") as live:  # how long a whole import takes here
        start = time.monotonic()
        warm = httpx.post(live.url + "/api/v1/users:bulk", json=_rows("warm", ROWS), headers=headers, timeout=600)
        full = time.monotonic() - start
        assert warm.status_code == 200 and warm.json()["created"] == ROWS
    for n, fraction in enumerate(FRACTIONS):
        batch = f"b{n}"
        with serve(env, tmp_path / f"kill-{n}.log") as live:
            outcome: dict[str, Any] = {}

            def send(url: str = live.url, b: str = batch, outcome: dict[str, Any] = outcome) -> None:
                try:
                    outcome["r"] = httpx.post(
                        url + "/api/v1/users:bulk", json=_rows(b, ROWS), headers=headers, timeout=600
                    )
                except httpx.TransportError as exc:
                    outcome["e"] = exc

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(full * fraction)
            live.proc.kill()
            live.proc.wait()
            sender.join(60)
        _check_database(env)
        present = _count(env, f"{batch}-%@crash.example")
        assert present in (0, ROWS), f"kill at {fraction:.0%}: {present} of {ROWS} rows present"
        if "r" in outcome and outcome["r"].status_code == 200:
            assert present == ROWS  # acknowledged, so it must be there
        survived["present" if present else "absent"] += 1
        with serve(env, tmp_path / f"restart-{n}.log") as again:
            assert httpx.get(again.url + "/healthz").json() == {"status": "ok", "database": "ok"}
        _clean_start(tmp_path / f"restart-{n}.log")
    print(f"\nbulk of {ROWS} rows (about {full:.1f} s): {len(FRACTIONS)} kills survived, {survived}")
    assert _count(env, "warm-%@crash.example") == ROWS


def test_sigkill_during_upsert_burst_loses_no_acknowledged_write(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "PAYROSTER_RATE_LIMIT_PER_KEY": "100000/second",
        "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "100000/second",
    }
    made = create_workspace(env)
    headers = {"X-ApiKey": made["apiKey"]}
    acked: list[str] = []
    sent = [0]
    lock = threading.Lock()
    with serve(env, tmp_path / "burst.log") as live:
        stop = threading.Event()

        def client(n: int) -> None:
            with httpx.Client(base_url=live.url, headers=headers, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    email = f"burst-{n}-{i}@crash.example"
                    i += 1
                    try:
                        with lock:
                            sent[0] += 1
                        r = c.post("/api/v1/users", json={"emailAddress": email, "role": "Participant",
                                                          "tags": ["Burst", f"T{n}"], "aliases": [email]})  # fmt: skip
                    except httpx.TransportError:
                        return
                    if r.status_code in (200, 201):
                        with lock:
                            acked.append(email)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(3)
        live.proc.kill()
        live.proc.wait()
        stop.set()
        for t in threads:
            t.join(30)
    _check_database(env)
    assert len(acked) > 50
    engine = create_engine(env["PAYROSTER_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            stored = {
                row[0]: row[1]
                for row in conn.execute(
                    text(
                        "SELECT u.email, count(t.value_key) FROM users u LEFT JOIN user_tags t ON t.workspace_id = "
                        "u.workspace_id AND t.user_id = u.id WHERE u.email LIKE 'burst-%' GROUP BY u.email"
                    )  # fmt: skip
                )
            }
    finally:
        engine.dispose()
    missing = [e for e in acked if e not in stored]
    assert not missing, f"{len(missing)} acknowledged upserts lost, e.g. {missing[:3]}"
    assert all(n == 2 for n in stored.values()), "a user was stored without all of its tags"
    with serve(env, tmp_path / "burst-restart.log") as again:
        assert httpx.get(again.url + "/healthz").status_code == 200
    _clean_start(tmp_path / "burst-restart.log")
    print(f"\nupsert burst: {sent[0]} sent, {len(acked)} acknowledged, {len(stored)} stored, 0 lost after SIGKILL")
