"""Every SQLite connection the engine opens carries PayRoster's settings, the larger page cache included, and
begins its transactions the way writers and readers need."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from payroster.config import Settings
from payroster.db.engine import SQLITE_CACHE_KIB, Database
from payroster.domain.errors import Unavailable

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


def hold_write_turn(path: Path) -> subprocess.Popen[str]:
    """Another process holding the write turn of the SQLite file at ``path`` until it is killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path.with_name(path.name + "-writer"))], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def _write_in_thread(db: Database) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    began, failed = threading.Event(), []

    def write() -> None:
        try:
            with db.write() as session:
                began.set()
                session.connection().exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            failed.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    return thread, began, failed


def test_processes_sharing_a_file_take_turns_to_write(tmp_path: Path) -> None:
    """Writers of several processes on one SQLite file (``serve --workers N``, an import beside the server) wait
    for each other on a lock file beside the database, not in SQLite's busy handler (which sleeps up to 100 ms
    between tries); the turn is the write's from before its BEGIN until after its COMMIT."""
    path = tmp_path / "turns.db"
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="test"))
    turn = path.with_name("turns.db-writer")
    try:
        with db.write() as session:
            session.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
            probe = os.open(turn, os.O_RDWR)
            with pytest.raises(BlockingIOError):  # held by the write, as another process would find it
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and given back when it ended
        fcntl.flock(probe, fcntl.LOCK_UN)
        os.close(probe)

        # Another process holds the turn: a write waits for it without having begun, though SQLite itself is
        # free (nothing else has BEGUN), and goes ahead as soon as that process is gone (the kernel drops the
        # lock of a process that dies, however it dies).
        holder = hold_write_turn(path)
        thread, began, failed = _write_in_thread(db)
        assert not began.wait(0.5)
        holder.kill()
        holder.wait()
        assert began.wait(5)
        thread.join(5)
        assert not failed

        # A turn that does not come within the write's wait is a busy database (503), not a hang.
        holder = hold_write_turn(path)
        try:
            db.write_wait = 0.3
            started = time.monotonic()
            with pytest.raises(Unavailable), db.write():
                pass
            assert 0.3 <= time.monotonic() - started < 5
        finally:
            holder.kill()
            holder.wait()
        with db.write() as session:  # the process's own lock was given back with the failed turn
            assert session.connection().exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    finally:
        db.dispose()


def test_the_turn_file_has_the_database_permissions(tmp_path: Path) -> None:
    """Every account that may write the database (a server, a scheduled import under another user of its group)
    may take the write turn: the lock file is made with exactly the database file's permission bits, whatever the
    umask, as SQLite makes its ``-wal`` and ``-shm`` files, and it is opened read-only (``flock`` needs no more)."""
    path = tmp_path / "shared.db"
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="test"))
    try:
        with db.read() as session:  # the database file exists from the first connection
            session.connection().exec_driver_sql("SELECT 1")
        path.chmod(0o660)
        old = os.umask(0o022)  # would take the group's write bit off a file made plainly
        try:
            with db.write() as session:
                session.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
        finally:
            os.umask(old)
        turn = path.with_name("shared.db-writer")
        assert (turn.stat().st_mode & 0o777) == 0o660
        # Read access is all another account needs to take the turn.
        probe = os.open(turn, os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
    finally:
        db.dispose()


def test_writes_go_on_without_a_turn_file_that_cannot_be_made(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A lock file that cannot be opened (here its name points into a missing directory) fails no write: writers
    meet in SQLite as before, and a warning says why."""
    path = tmp_path / "nofile.db"
    (tmp_path / "nofile.db-writer").symlink_to(tmp_path / "missing" / "turn")
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="test"))
    try:
        with caplog.at_level("WARNING", logger="payroster.db"):
            for n in range(2):
                with db.write() as session:
                    session.connection().exec_driver_sql(f"CREATE TABLE t{n} (x INTEGER)")
        assert [r.getMessage() for r in caplog.records].count(
            f"SQLite writes go without their turn file {tmp_path / 'nofile.db-writer'} "
            f"([Errno 2] No such file or directory: '{tmp_path / 'nofile.db-writer'}'); they meet in SQLite"
        ) == 1  # said once, not at every write
    finally:
        db.dispose()


FORKING = """
import fcntl, os, sys, time
from payroster.config import Settings
from payroster.db.engine import Database

path, mode = sys.argv[1], sys.argv[2]
db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="t"))
with db.write() as session:
    session.connection().exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    child = os.fork()
    if child == 0:
        if mode == "release":  # a child that leaves the write it was forked in must not free its parent's turn
            db._file_turn.release()
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)  # the test reads its parent's output to the end
        os.dup2(null, 2)
        time.sleep(60)  # a child that lives on, never writing
        os._exit(0)
    if mode == "release":
        os.waitpid(child, 0)
        probe = os.open(path + "-writer", os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("freed", flush=True)
        except BlockingIOError:
            print("held", flush=True)
    else:
        print(child, flush=True)
        os._exit(0)  # dies holding the turn
"""


def test_a_forked_child_neither_keeps_nor_frees_its_parents_turn(tmp_path: Path) -> None:
    """A process forked by a writer closes its copy of the lock file: the turn ends with the writer that took it
    even when it dies and the child lives on, and the child leaving the write it was forked in frees nothing."""
    path = str(tmp_path / "fork.db")
    run = subprocess.run([sys.executable, "-c", FORKING, path, "release"], capture_output=True, text=True, timeout=60)
    assert run.stdout == "held\n", run.stderr

    run = subprocess.run([sys.executable, "-c", FORKING, path, "die"], capture_output=True, text=True, timeout=60)
    child = int(run.stdout)
    try:
        os.kill(child, 0)  # still alive, holding a copy of every descriptor its parent had
        probe = os.open(path + "-writer", os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: the writer is gone
        finally:
            os.close(probe)
    finally:
        os.kill(child, 9)
