"""``/healthz`` answers ok only for PayRoster's schema at this release's revision: a database that answers but
holds something else (a wrong file restored, a schema behind or ahead) is an outage for the balancer too."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import httpx

from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import TEST_SETTINGS, _Switch


def _other(path: Path) -> Database:
    return Database(Settings(database_url=f"sqlite:///{path}", **TEST_SETTINGS))


def test_health_checks_the_schema_not_only_the_connection(
    http_server: tuple[_Switch, str], client: httpx.Client, sqlite_template: Path, tmp_path: Path
) -> None:
    assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (
        200,
        {"status": "ok", "database": "ok"},
    )
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    behind = tmp_path / "behind.db"
    shutil.copyfile(sqlite_template, behind)
    with sqlite3.connect(behind) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0005'")
    app = http_server[0].app
    up = app.state.db
    try:
        for path in (foreign, behind):
            app.state.db = _other(path)
            health = client.get("/healthz")
            assert (health.status_code, health.json()) == (
                503,
                {"status": "unavailable", "database": "unexpected schema"},
            )
            app.state.db.dispose()
    finally:
        app.state.db = up
    assert client.get("/healthz").status_code == 200
