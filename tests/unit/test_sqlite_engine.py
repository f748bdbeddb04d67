"""Every SQLite connection the engine opens carries PayRoster's settings, the larger page cache included."""

from __future__ import annotations

from pathlib import Path

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
