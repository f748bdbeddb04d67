"""PostgreSQL's pooled connections: one the server closed is replaced at checkout (a restarted or failed-over
database costs no request an error), and a checkout sends nothing to the server (no ping round trip)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from payroster.db import engine
from payroster.db.engine import Database
from tests.conftest import PG_URL, WS

pytestmark = pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (PAYROSTER_TEST_DATABASE_URL)")


@pytest.fixture
def backend() -> str:
    return "postgres"


def _pooled_pids(db: Database, n: int) -> list[int]:
    """Fill the pool with ``n`` idle connections; their server process ids."""
    conns = [db.engine.connect() for _ in range(n)]
    try:
        return [int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) for c in conns]
    finally:
        for c in conns:
            c.close()


def _terminate(pids: list[int]) -> None:
    assert PG_URL is not None
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one() is True
            left = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
            deadline = time.monotonic() + 10
            while conn.execute(left, {"pids": pids}).scalar_one() != 0:
                assert time.monotonic() < deadline, "the terminated backends did not exit"
                time.sleep(0.02)
    finally:
        admin.dispose()


def test_connections_the_server_closed_are_replaced_without_a_failed_request(
    client: httpx.Client, db: Database, ws: WS
) -> None:
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    pids = _pooled_pids(db, 3)
    _terminate(pids)  # what a restart or a failover does to every idle connection

    # Every request after it succeeds: a read, a write, and more reads, which take the pool's other connections
    # in turn (the pool hands out the longest idle first).
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    made = client.post("/api/v1/users", headers=ws.headers, json={"emailAddress": "after@x.com", "role": "Participant"})
    assert made.status_code == 201, made.text
    seen = _pooled_pids(db, 3)
    assert not set(seen) & set(pids), "a terminated connection was handed out again"
    _terminate(seen)
    codes = [client.get("/api/v1/me", headers=ws.headers).status_code for _ in range(5)]
    assert codes == [200] * 5


def _statements_of_one_checkout(db: Database, trace: Path) -> list[str]:
    """The statements one pooled connection sends for a read of one statement: libpq's own protocol trace,
    where everything the client sends is a line with "F"."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the connection exists and sits in the pool afterwards
        pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
    with trace.open("w") as f:
        pgconn.trace(f.fileno())
        try:
            with db.read() as s:
                assert s.execute(text("SELECT 'the statement'")).scalar_one() == "the statement"
        finally:
            pgconn.untrace()
    sent = [line for line in trace.read_text().splitlines() if "\tF\t" in line]
    return [line for line in sent if "\tQuery\t" in line or "\tParse\t" in line]


def test_a_checkout_sends_nothing_to_the_server(db: Database, tmp_path: Path) -> None:
    queries = _statements_of_one_checkout(db, tmp_path / "trace.txt")
    assert len(queries) == 1, queries
    assert "the statement" in queries[0]


def test_a_connection_idle_for_long_is_pinged_first(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One that died without the server closing it (a NAT's idle timeout) has nothing to read; the ping finds it.
    monkeypatch.setattr(engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    queries = _statements_of_one_checkout(db, tmp_path / "trace.txt")
    assert len(queries) == 2, queries
    assert "the statement" not in queries[0] and "the statement" in queries[1]
