"""Graceful shutdown: SIGTERM lets in-flight requests finish, refuses new connections, exits 0, and loses no
acknowledged write (SQLite and PostgreSQL)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import create_workspace
from tests.procs import serve

ROWS = 60_000  # a few seconds of work here, so that SIGTERM lands while it is in flight


def test_sigterm_finishes_in_flight_work_and_refuses_new(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "PAYROSTER_RATE_LIMIT_PER_KEY": "100000/second",
        "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "100000/second",
    }
    made = create_workspace(env)
    headers = {"X-ApiKey": made["apiKey"]}
    rows = [{"emailAddress": f"term-{i:06d}@shutdown.example", "role": "Participant"} for i in range(ROWS)]
    acked: list[str] = []
    outcome: dict[str, Any] = {}
    with serve(env, tmp_path / "serve.log") as live:
        stop = threading.Event()

        def bulk() -> None:
            outcome["bulk"] = httpx.post(live.url + "/api/v1/users:bulk", json=rows, headers=headers, timeout=120)

        def singles(n: int) -> None:
            with httpx.Client(base_url=live.url, headers=headers, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    email = f"single-{n}-{i}@shutdown.example"
                    i += 1
                    try:
                        r = c.post("/api/v1/users", json={"emailAddress": email, "role": "Participant"})
                    except httpx.TransportError:
                        return
                    if r.status_code in (200, 201):
                        acked.append(email)

        workers = [threading.Thread(target=bulk)] + [threading.Thread(target=singles, args=(n,)) for n in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.8)  # the bulk request is in flight (it takes a few seconds here)
        assert "bulk" not in outcome
        live.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            refused = httpx.get(live.url + "/healthz", timeout=5)
            new_connection = f"answered {refused.status_code}"
        except httpx.TransportError as exc:
            new_connection = f"refused ({type(exc).__name__})"
        code = live.proc.wait(60)
        stop.set()
        for w in workers:
            w.join(60)
    assert new_connection.startswith("refused"), new_connection
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown is complete, so the exit status is
    # "terminated by SIGTERM"; the log shows that shutdown ran to its end.
    assert code in (0, -signal.SIGTERM)
    log = (tmp_path / "serve.log").read_text()
    assert "Waiting for application shutdown" in log and "Finished server process" in log, log[-2000:]
    assert "Traceback" not in log
    assert outcome["bulk"].status_code == 200 and outcome["bulk"].json()["created"] == ROWS
    engine = create_engine(env["PAYROSTER_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(text("SELECT email FROM users WHERE email LIKE '%@shutdown.example'")).scalars())
    finally:
        engine.dispose()
    assert sum(e.startswith("term-") for e in stored) == ROWS
    assert set(acked) <= stored and len(acked) > 0
    print(f"\nSIGTERM: in-flight bulk of {ROWS} rows finished (200), {len(acked)} acknowledged upserts kept, "
          f"new connection {new_connection}, exit code {code}")  # fmt: skip
