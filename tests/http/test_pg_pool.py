"""PostgreSQL's pooled connections: one the server closed is replaced at checkout (a restarted or failed-over
database costs no request an error), and a checkout sends nothing to the server (no ping round trip)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from payroster.db.engine import Database
from tests.conftest import PG_URL, WS

pytestmark = pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (PAYROSTER_TEST_DATABASE_URL)")


@pytest.fixture
def backend() -> str:
    return "postgres"


def _admin() -> psycopg.Connection:
    assert PG_URL is not None
    url = make_url(PG_URL)
    return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                           password=url.password, autocommit=True)  # fmt: skip


def _pooled_pids(db: Database, n: int) -> list[int]:
    """Fill the pool with ``n`` idle connections; their server process ids."""
    conns = [db.engine.connect() for _ in range(n)]
    try:
        return [int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) for c in conns]
    finally:
        for c in conns:
            c.close()


def _terminate(pids: list[int]) -> None:
    with _admin() as admin:
        for pid in pids:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone() != (0,):
            assert time.monotonic() < deadline, "the terminated backends did not exit"
            time.sleep(0.02)


def test_connections_the_server_closed_are_replaced_without_a_failed_request(
    client: httpx.Client, db: Database, ws: WS
) -> None:
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    pids = _pooled_pids(db, 3)
    _terminate(pids)  # what a restart or a failover does to every idle connection

    # Every request after it succeeds: reads, a write, and concurrent ones that take several pooled connections.
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    made = client.post("/api/v1/users", headers=ws.headers, json={"emailAddress": "after@x.com", "role": "Participant"})
    assert made.status_code == 201, made.text
    seen = _pooled_pids(db, 3)
    assert not set(seen) & set(pids), "a terminated connection was handed out again"
    _terminate(seen)
    with httpx.Client(base_url=str(client.base_url), timeout=30) as other:
        codes = [other.get("/api/v1/me", headers=ws.headers).status_code for _ in range(5)]
    assert codes == [200] * 5


def test_a_checkout_sends_nothing_to_the_server(db: Database, tmp_path: Path) -> None:
    # libpq's own protocol trace of one pooled connection: everything the client sends is a line with "F".
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the connection exists and sits in the pool afterwards
        pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
    trace = tmp_path / "trace.txt"
    with trace.open("w") as f:
        pgconn.trace(f.fileno())
        try:
            with db.read() as s:
                assert s.execute(text("SELECT 'the only statement'")).scalar_one() == "the only statement"
        finally:
            pgconn.untrace()
    sent = [line for line in trace.read_text().splitlines() if "\tF\t" in line]
    queries = [line for line in sent if "\tQuery\t" in line or "\tParse\t" in line]
    assert len(queries) == 1, sent
    assert "the only statement" in queries[0]
