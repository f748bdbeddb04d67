"""PostgreSQL's write transaction (db.engine): it holds its workspace's advisory lock until it ends, and opens
with ``BEGIN`` and the lock in one round trip."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from payroster.config import Settings
from payroster.db.engine import Database, _lock_key
from tests.conftest import PG_URL, WS

pytestmark = pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (PAYROSTER_TEST_DATABASE_URL)")


@pytest.fixture
def backend() -> str:
    return "postgres"


def _try_lock(url: str, key: int, shared: bool) -> bool:
    """Whether another session gets the workspace's lock now (and lets it go at once)."""
    function = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
    other = create_engine(url, poolclass=NullPool)
    try:
        with other.connect() as conn:
            return bool(conn.execute(text(f"SELECT {function}(:k)"), {"k": key}).scalar())
    finally:
        other.dispose()


def test_a_write_holds_its_workspace_lock_until_it_ends(db: Database, ws: WS) -> None:
    """Single writes share the workspace's lock, an exclusive one (a bulk import) keeps it to itself, and the
    lock goes with the transaction."""
    url, key = db.settings.database_url, _lock_key(ws.id)
    assert _try_lock(url, key, shared=False)
    with db.write(ws.id) as s:
        s.execute(text("SELECT 1"))
        assert _try_lock(url, key, shared=True) and not _try_lock(url, key, shared=False)
    with db.write(ws.id, exclusive=True) as s:
        s.execute(text("SELECT 1"))
        assert not _try_lock(url, key, shared=True)
    assert _try_lock(url, key, shared=False)


def test_a_write_opens_with_begin_and_its_lock_in_one_round_trip(db: Database, ws: WS) -> None:
    """libpq's protocol trace of one write of one statement: the server answers ready three times (after
    ``BEGIN`` with the lock, after the statement, after ``COMMIT``), and the statement runs in a transaction
    that holds the lock. Left to itself psycopg sent ``BEGIN`` alone first: four."""
    traced: list[Any] = []

    def trace(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn.pgconn.trace(out.fileno())
        traced.append(dbapi_conn.pgconn)

    with tempfile.TemporaryFile("w+") as out:
        event.listen(db.engine, "checkout", trace)
        try:
            with db.write(ws.id) as s:
                in_transaction, locks = s.execute(
                    text("SELECT now() = statement_timestamp(), count(*) FROM pg_locks "
                         "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND mode = 'ShareLock'")
                ).one()  # fmt: skip
        finally:
            event.remove(db.engine, "checkout", trace)
            for pgconn in traced:
                pgconn.untrace()
        out.seek(0)
        messages = out.read()
    assert len(traced) == 1
    assert messages.count("ReadyForQuery") == 3, messages
    assert "BEGIN; SELECT pg_advisory_xact_lock_shared(" in messages
    assert locks == 1
    assert in_transaction is False  # a transaction's now() is when it began, before this statement


def test_an_engine_that_skips_autocommit_rollbacks_keeps_psycopgs_begin(settings: Settings) -> None:
    """Such an engine sends no rollback for a connection in autocommit mode: a failed write would keep its
    transaction open and its connection would never return to the pool. It keeps psycopg's own ``BEGIN``: the
    failed write leaves nothing, its connection goes back, and the next write works."""
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0, skip_autocommit_rollback=True)
    db = Database(settings, engine=engine)
    try:
        with pytest.raises(DBAPIError), db.write() as s:
            s.execute(text("CREATE TEMPORARY TABLE kept_or_not (n int)"))
            s.execute(text("SELECT 1 / 0"))
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        with db.write() as s:
            assert s.execute(text("SELECT to_regclass('pg_temp.kept_or_not') IS NULL")).scalar() is True
    finally:
        db.dispose()
