"""Every SQLite connection the engine opens carries PayRoster's settings, the larger page cache included, and
begins its transactions the way writers and readers need."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from payroster.config import Settings
from payroster.db.engine import SQLITE_CACHE_KIB, Database

EXPECTED = {
    "journal_mode": "wal",
    "synchronous": 1,  # NORMAL
    "foreign_keys": 1,
    "busy_timeout": 30000,
    "cache_size": -SQLITE_CACHE_KIB,  # negative: KiB, not pages
}


def _pragmas(conn: object) -> dict[str, object]:
    return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in EXPECTED}  # type: ignore[attr-defined]


def test_each_pooled_connection_has_the_settings(tmp_path: Path) -> None:
    db = Database(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", secret_key="test"))
    try:
        # Two connections held at once: the second is a new one, set up by the same hook.
        with db.engine.connect() as first, db.engine.connect() as second:
            assert first.connection.dbapi_connection is not second.connection.dbapi_connection
            assert _pragmas(first) == EXPECTED
            assert _pragmas(second) == EXPECTED
        with db.read() as session:
            assert session.connection().exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    finally:
        db.dispose()


def test_write_transactions_take_the_lock_at_begin_and_a_busy_database_is_an_operational_error(
    tmp_path: Path,
) -> None:
    """A write begins IMMEDIATE (it holds the write lock from its first statement), a read DEFERRED; when another
    process holds the lock past the busy timeout, BEGIN fails as SQLAlchemy's OperationalError (what the doors
    answer with 503), not as the driver's own exception."""
    path = tmp_path / "b.db"
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="test"))
    # Registered after the engine's own hook, so it runs after it: a short wait instead of 30 s.
    event.listen(db.engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=50"))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        with db.write() as session:
            session.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
            # The write lock is ours from BEGIN on: another writer cannot start.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("PRAGMA busy_timeout=0")
                other.execute("BEGIN IMMEDIATE")
        with db.read() as session:  # DEFERRED: reads while the other process writes
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO t VALUES (1)")
            assert session.connection().exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            with pytest.raises(OperationalError, match="locked"), db.write() as blocked:
                blocked.connection()
        other.execute("COMMIT")
        with db.write() as session:
            assert session.connection().exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    finally:
        other.close()
        db.dispose()
