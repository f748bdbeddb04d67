"""Restoring an SQLite database from a backup, safely (docs/operations.md, "Backup and restore").

A restore replaces the live file. Done under a running server, the server went on answering from a database that
might not be PayRoster's at all (503 ``no such table`` while ``/healthz`` said ok). So:

- every process using the file holds a shared ``flock`` on ``FILE-serving`` beside it for its lifetime (a server
  from start-up to shutdown, each of its workers; a CLI command until it exits), and a restore needs the lock
  exclusively: it refuses while anyone uses the database, and a server starting meanwhile waits for it to finish;
- the backup is checked on a copy beside the database: an SQLite file, whole (``PRAGMA integrity_check``), at a
  schema revision this release knows, migrated to the current one if it is older, holding every PayRoster table;
- the database being replaced is kept whole beside it (``FILE.before-restore-<UTC time>``), then the checked copy
  is written over the live file through SQLite's backup API (which leaves no stale ``-wal`` behind, as replacing the
  file would).

Every refusal is a ``RestoreRefused`` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from payroster.db import migrate
from payroster.db.models import Base

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a restore cannot tell a running server and says so
    fcntl = None  # type: ignore[assignment]

SQLITE_MAGIC = b"SQLite format 3\x00"


class RestoreRefused(Exception):
    """The restore did not happen; the message says why in one line."""


@dataclass(frozen=True)
class Restored:
    """What a restore did: the revision the backup was at, and where the replaced database is kept (if any)."""

    backup_revision: str
    safety_copy: Path | None


def _presence_path(database: Path) -> Path:
    return database.with_name(database.name + "-serving")


def _open_beside(database: Path, path: Path) -> int:
    """A lock file beside the database, made with the database's permission bits (as ``db.engine.FileTurn``)."""
    try:
        mode = stat.S_IMODE(database.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(fd, mode)
        return fd
    except FileExistsError:
        return os.open(path, os.O_RDONLY)


class Presence:
    """A process's shared lock on ``FILE-serving``: held while it uses the database, so a restore knows."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._fd: int | None = None

    def hold(self) -> None:
        """Take the shared lock, waiting while a restore holds it exclusively."""
        if fcntl is None or self._fd is not None:
            return
        fd = _open_beside(self.database, _presence_path(self.database))
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (a crashed process's goes with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def using(database: Path | None) -> Iterator[None]:
    """Hold the database's shared presence lock for the duration (nothing for PostgreSQL)."""
    presence = Presence(database) if database is not None else None
    if presence is not None:
        presence.hold()
    try:
        yield
    finally:
        if presence is not None:
            presence.release()


@contextlib.contextmanager
def _alone(database: Path) -> Iterator[None]:
    """The presence lock, exclusively and without waiting: RestoreRefused while any process uses the database."""
    if fcntl is None:
        raise RestoreRefused("restore needs advisory file locks (not available here): copy the file by hand")
    fd = _open_beside(database, _presence_path(database))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreRefused(
                f"{database} is in use by a PayRoster server or command: stop it, then restore"
            ) from None
        yield
    finally:
        os.close(fd)


def _copy(source: Path, target: Path, mode: int | None = None) -> None:
    """A consistent copy of an SQLite database through its backup API (``target`` is overwritten); a new
    ``target`` is made with ``mode`` from the start (a copy of the people directory is as private as it)."""
    if mode is not None and not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        os.chmod(target, mode)
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _remove_with_companions(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".migrate.lock"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


def _check_backup(backup: Path, copy: Path, mode: int) -> str:
    """Copy the backup to ``copy``, check it and bring it to the current schema; returns its original revision."""
    with backup.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise RestoreRefused(f"{backup} is not an SQLite database")
    try:
        _copy(backup, copy, mode)
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise RestoreRefused(f"{backup} fails its integrity check")
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                raise RestoreRefused(f"{backup} is not a PayRoster database (it has no schema revision)")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(f"{backup} cannot be read as an SQLite database ({exc})") from None
    revision = row[0] if row else None
    try:
        known = revision is not None and ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision)
    except CommandError:
        known = None
    if not known:
        raise RestoreRefused(
            f"{backup} is at schema revision {revision or 'none'}, which this release of PayRoster does not know"
            " (a backup of a newer release?)"
        )
    engine = create_engine(f"sqlite:///{copy}", poolclass=NullPool)
    try:
        migrate.upgrade(engine)  # the copy, never the backup: an older backup is brought to the current schema
        with engine.connect() as conn:
            present = set(engine.dialect.get_table_names(conn))
    finally:
        engine.dispose()
    missing = sorted(set(Base.metadata.tables) - present)
    if missing:
        raise RestoreRefused(f"{backup} is not a PayRoster database (no table {', '.join(missing)})")
    return str(revision)


def restore(database: Path, backup: Path, now: dt.datetime | None = None) -> Restored:
    """Replace ``database`` with the checked ``backup``, keeping the replaced one beside it."""
    if backup.resolve() == database.resolve():
        raise RestoreRefused(f"{backup} is the database itself")
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    copy = database.with_name(f"{database.name}.restoring-{stamp}")
    with _alone(database):
        try:
            mode = stat.S_IMODE(database.stat().st_mode) if database.exists() else 0o600
            revision = _check_backup(backup, copy, mode)
            safety = None
            if database.exists() and database.stat().st_size > 0:
                safety = database.with_name(f"{database.name}.before-restore-{stamp}")
                _copy(database, safety, mode)
            try:
                _copy(copy, database)
            except sqlite3.Error as exc:
                kept = f"; the previous database is kept at {safety}" if safety else ""
                raise RestoreRefused(f"could not write {database} ({exc}){kept}") from None
        finally:
            _remove_with_companions(copy)
    return Restored(revision, safety)
