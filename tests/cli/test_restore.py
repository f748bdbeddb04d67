"""``payroster db restore``: only a PayRoster backup, never under a running server, the replaced database kept, and
a one-line error (exit 1, no traceback) for anything else (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from payroster.config import Settings
from payroster.db import migrate, restore
from payroster.db.engine import Database
from tests.conftest import make_workspace
from tests.procs import cli_env, run_cli, serve


def _live(path: Path, template: Path) -> tuple[Path, str]:
    """A migrated database with one workspace at ``path``; returns the path and the admin's API key."""
    path.parent.mkdir(parents=True)
    shutil.copyfile(template, path)
    path.chmod(0o600)
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="x"))
    key = make_workspace(db, "Acme").key
    db.dispose()
    return path, key


def _workspaces(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(name for (name,) in conn.execute("SELECT name FROM workspaces"))


def _backup(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_restore_is_refused_while_a_server_uses_the_database(tmp_path: Path, sqlite_template: Path) -> None:
    live, key = _live(tmp_path / "var" / "payroster.db", sqlite_template)
    env = cli_env(f"sqlite:///{live}")
    backup = tmp_path / "monday.db"
    _backup(live, backup)
    db = Database(Settings(database_url=f"sqlite:///{live}", secret_key="x"))
    make_workspace(db, "Later", "later@later.example")  # a change after the backup
    db.dispose()

    with serve(env, tmp_path / "serve.log") as server:
        refused = run_cli(env, "db", "restore", str(backup))
        assert refused.code == 1
        assert "in use by a PayRoster server" in _one_line_error(refused.err)
        # The server goes on, on its own database.
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "database": "ok"}
        assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": key}).status_code == 200
    assert _workspaces(live) == ["Acme", "Later"]

    restored = run_cli(env, "db", "restore", str(backup))  # the server stopped: now it may
    assert restored.code == 0, restored.err
    match = re.search(r"the database it replaced is kept at (\S+)$", restored.err.strip())
    assert match, restored.err
    kept = Path(match.group(1))
    assert kept.parent == live.parent and kept.name.startswith("payroster.db.before-restore-")
    assert _workspaces(kept) == ["Acme", "Later"] and _workspaces(live) == ["Acme"]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # as private as the database it copies
    assert not list(live.parent.glob("*.restoring-*"))  # the checked copy is gone


def test_restore_refuses_what_is_not_a_payroster_backup(tmp_path: Path, sqlite_template: Path) -> None:
    live, _ = _live(tmp_path / "var" / "payroster.db", sqlite_template)
    env = cli_env(f"sqlite:///{live}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    for path, reason in ((garbage, "is not an SQLite database"), (foreign, "is not a PayRoster database")):
        refused = run_cli(env, "db", "restore", str(path))
        assert refused.code == 1
        assert reason in _one_line_error(refused.err)
    newer = tmp_path / "newer.db"
    _backup(live, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(restore.RestoreRefused, match="revision 9999, which this release of PayRoster does not know"):
        restore.restore(live, newer)
    tableless = tmp_path / "tableless.db"
    _backup(live, tableless)
    with sqlite3.connect(tableless) as conn:
        conn.execute("DROP TABLE audit_events")
    with pytest.raises(restore.RestoreRefused, match="no table audit_events"):
        restore.restore(live, tableless)
    assert _workspaces(live) == ["Acme"]  # nothing was replaced
    assert not [p.name for p in live.parent.iterdir() if "restor" in p.name]  # no copy left behind


def test_an_older_backup_is_migrated_on_a_copy(tmp_path: Path, sqlite_template: Path) -> None:
    old, _ = _live(tmp_path / "backups" / "old.db", sqlite_template)
    engine = create_engine(f"sqlite:///{old}")
    migrate.downgrade(engine, "0005")
    engine.dispose()
    live = tmp_path / "live.db"
    done = restore.restore(live, old)  # onto a host with no database yet: nothing to keep
    assert done.backup_revision == "0005" and done.safety_copy is None
    engine = create_engine(f"sqlite:///{live}")
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
    assert _workspaces(live) == ["Acme"]
    engine = create_engine(f"sqlite:///{old}")
    assert migrate.current_revision(engine) == "0005"  # the backup itself is left as it was
    engine.dispose()


def test_db_upgrade_waits_while_a_restore_replaces_the_file(tmp_path: Path, sqlite_template: Path) -> None:
    """``db upgrade`` holds the presence lock as every command does: while a restore holds it exclusively (taken
    here as the restore takes it), the upgrade waits, and it goes on once the restore is over."""
    live, _ = _live(tmp_path / "var" / "payroster.db", sqlite_template)
    env = cli_env(f"sqlite:///{live}")
    fd = os.open(live.with_name(live.name + "-serving"), os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    upgrade = subprocess.Popen(
        [sys.executable, "-m", "payroster", "db", "upgrade"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            upgrade.wait(12)  # an upgrade not waiting for the lock is done in 2-5 s here
    finally:
        os.close(fd)  # the restore is over
    _, err = upgrade.communicate(timeout=60)
    assert upgrade.returncode == 0, err
    assert "database at revision" in err
