"""Engines and the unit of work: the only place that commits."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import select as fd_select  # the module; ``select`` is SQLAlchemy's
import sqlite3
import stat
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from payroster.config import Settings
from payroster.db.prepared import run_script
from payroster.domain.errors import BudgetSpent, Unavailable

try:
    import fcntl
except ImportError:  # Windows: processes sharing a file meet at SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("payroster.db")

SQLITE_CACHE_KIB = 32 * 1024
# Every SQLite connection's settings (the bench's raw baselines apply the same list). The page cache goes up to
# 32 MiB (SQLite's default is 2 MiB): a filtered, ordered OData page over a million users touches ~10-15 MiB of
# index and row pages, and with the default cache every query read them again from the operating system
# (first page 12 -> 6 ms, bench/JOURNAL.md).
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "synchronous=NORMAL",
    "foreign_keys=ON",
    "busy_timeout=30000",
    f"cache_size={-SQLITE_CACHE_KIB}",
)


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database, with SQLite pragmas or a PostgreSQL pool."""
    if not settings.is_sqlite:
        # The socket check knows psycopg; any other driver keeps SQLAlchemy's ping at every checkout.
        psycopg = make_url(settings.database_url).get_driver_name() == "psycopg"
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_pre_ping=not psycopg,
            # No server-side prepared statements: psycopg prepares a statement on its fifth run, and PostgreSQL may
            # then keep one generic plan for it on that connection. A plan chosen while a table was small (a
            # sequential scan) stayed chosen as the table grew: an import's lookups by e-mail, planned early in
            # its transaction, scanned every row it had written so far, and 1,000,000 rows took hours
            # (bench/JOURNAL.md, 2026-12-06). Planned with its values each time, a statement takes the index.
            connect_args={"prepare_threshold": None} if psycopg else {},
        )
        if psycopg:
            _watch_pooled_connections(engine)
        return engine
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=NullPool if path is None else None,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's implicit BEGIN cannot take the write lock up front; we issue BEGIN ourselves below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


# A pooled PostgreSQL connection idle longer than this is also pinged when it is taken: one that died without
# the server closing it (a NAT's or firewall's idle timeout, a host gone in a failover) has nothing to read either.
PING_AFTER_IDLE_SECONDS = 30.0
_IDLE_SINCE = "payroster_idle_since"


def _watch_pooled_connections(engine: Engine) -> None:
    """A pooled psycopg connection the server has closed is replaced when it is taken, without a round trip.

    SQLAlchemy's ``pool_pre_ping`` sends a statement at every checkout: a round trip per unit of work, about a
    fifth of a simple request's server time on PostgreSQL (side by side, ``GET /api/v1/me`` 488 -> 598 requests/s
    without it, bench/JOURNAL.md). An idle connection has nothing to read, so a readable socket means the server sent
    something unasked: the error and end of file of a backend that was terminated or restarted (or, rarely, an
    asynchronous notice, for which a reconnect is a small price). Such a connection, and one idle for longer
    than ``PING_AFTER_IDLE_SECONDS`` whose ping fails, is refused with ``DisconnectionError``: the pool discards
    it and hands out a new one. A busy server's connections go back and forth within milliseconds and are never
    pinged; only one that dies while in use, or between this check and its first statement, fails a request.
    """

    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        try:
            if _readable(dbapi_conn.pgconn.socket):
                raise DisconnectionError("the server closed this pooled connection")
            since = record.info.get(_IDLE_SINCE)
            if since is not None and time.monotonic() - since > PING_AFTER_IDLE_SECONDS:
                engine.dialect.do_ping(dbapi_conn)
        except DisconnectionError:
            raise
        except Exception as exc:  # psycopg's errors for a closed or broken connection, a failed ping
            raise DisconnectionError("this pooled connection is unusable") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _readable(fd: int) -> bool:
    """Whether the socket has something to read, without waiting (poll: select cannot watch fds over 1024)."""
    if hasattr(fd_select, "poll"):
        poller = fd_select.poll()
        poller.register(fd, fd_select.POLLIN)
        return bool(poller.poll(0))
    return bool(fd_select.select([fd], [], [], 0)[0])


def _sqlite_begin(conn: Any) -> None:
    # A write transaction takes the lock at BEGIN: a deferred one that upgrades later fails with
    # SQLITE_BUSY instead of waiting when another writer committed in between.
    mode = "IMMEDIATE" if conn.get_execution_options().get("payroster_write") else "DEFERRED"
    # Straight to the driver: through ``exec_driver_sql`` every transaction paid a second full statement
    # execution (events, cursor, result) for its BEGIN; a one-statement write transaction went from ~380 to
    # ~355 us (bench/JOURNAL.md). A failure is still raised as SQLAlchemy's OperationalError, as every other
    # statement's is.
    try:
        conn.connection.driver_connection.execute(f"BEGIN {mode}")
    except sqlite3.OperationalError as exc:
        raise OperationalError(f"BEGIN {mode}", None, exc) from exc


class Database:
    """Holds the engine and hands out units of work."""

    write_wait = 30.0  # seconds a write waits for its turn on SQLite, as long as SQLite's own busy timeout

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # psycopg on PostgreSQL: a write's connection runs in the driver's autocommit mode and opens its transaction
        # itself, ``BEGIN`` and the workspace lock in one message (``_begin``). In its default mode psycopg sent
        # ``BEGIN`` on its own before the first statement: a round trip of its own in every write transaction.
        # It relies on the rollback SQLAlchemy sends for an autocommit connection, which an engine made with
        # ``skip_autocommit_rollback`` leaves out: such an engine keeps psycopg's own ``BEGIN``. The transaction
        # is the server's default isolation level (READ COMMITTED), as psycopg's ``BEGIN`` gave it.
        dialect = self.engine.dialect
        self._own_begin = dialect.driver == "psycopg" and not dialect.skip_autocommit_rollback
        options: dict[str, Any] = {"payroster_write": True}
        if self._own_begin:
            options["isolation_level"] = "AUTOCOMMIT"
        writer = self.engine.execution_options(**options)
        # Reads on PostgreSQL run without a transaction around them: under READ COMMITTED every statement takes
        # its own snapshot anyway, so BEGIN and ROLLBACK were two round trips that bought nothing (the key check
        # every request makes: 0.88-0.98 -> 0.48-0.51 ms, bench/JOURNAL.md). SQLite keeps its read transaction,
        # which does give every statement of a read the same snapshot.
        self.reader = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = sessionmaker(self.reader, expire_on_commit=False, autoflush=False)
        # A read with a time budget on PostgreSQL runs in a transaction, whose ``SET LOCAL statement_timeout``
        # ends with it: with psycopg one opened by hand on the autocommit connection (``_begin_budget``), else the
        # driver's own.
        self._timed = (
            self._read
            if self.is_sqlite or self._own_begin
            else sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        )
        self._write = sessionmaker(writer, expire_on_commit=False, autoflush=False)
        # SQLite has one writer at a time. Writers queue here instead of in SQLite's busy handler, whose growing
        # sleeps (up to 100 ms each) made the slowest writes wait seconds under load: those of this process on a
        # lock, and processes sharing the file (``serve --workers N``, an import beside the server) on a lock
        # file beside it (``FileTurn``). BEGIN IMMEDIATE and the busy timeout still guard against any other writer.
        self._sqlite_writer = threading.Lock() if self.is_sqlite else None
        path = settings.sqlite_path if self.is_sqlite else None
        self._file_turn = FileTurn(path) if path is not None and fcntl is not None else None

    @contextlib.contextmanager
    def write(
        self, workspace_id: uuid.UUID | None = None, exclusive: bool = False, wait: float | None = None
    ) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any exception.

        On PostgreSQL, a transaction-scoped advisory lock on the workspace lets single writes run side
        by side (shared) while a bulk import (``exclusive``) runs alone. SQLite serialises writers anyway: a
        write waits for its turn up to ``wait`` seconds (default ``write_wait``), then raises ``Unavailable``.
        """
        with self._writer_turn(self.write_wait if wait is None else wait), self._write() as session:
            try:
                if not self.is_sqlite:
                    _begin(session, workspace_id, exclusive, self._own_begin)
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextlib.contextmanager
    def _writer_turn(self, wait: float) -> Iterator[None]:
        if self._sqlite_writer is None:
            yield
            return
        deadline = time.monotonic() + wait
        if not self._sqlite_writer.acquire(timeout=wait):
            raise Unavailable("the database is busy; retry later")
        try:
            if self._file_turn is None or not self._file_turn.acquire(deadline):
                yield
                return
            try:
                yield
            finally:
                self._file_turn.release()
        finally:
            self._sqlite_writer.release()

    @contextlib.contextmanager
    def read(self, budget: Budget | None = None) -> Iterator[Session]:
        """A read-only unit of work: a transaction rolled back at the end on SQLite, autocommit statements on
        PostgreSQL (see ``reader``). The rows read stay usable afterwards: they are detached with their loaded
        values (pages render after the session ends).

        With a ``budget`` its statements are stopped when the budget is spent or stopped, and the read raises
        ``BudgetSpent``; on PostgreSQL they then run in one transaction that carries the budget as its
        ``statement_timeout``."""
        with (self._read if budget is None else self._timed)() as session:
            try:
                if budget is not None:
                    self._begin_budget(session, budget)
                yield session
            except OperationalError as exc:
                if budget is not None and budget.stopped(exc):
                    raise budget.error() from None
                raise
            finally:
                if budget is not None:
                    budget.detach()  # before the rollback: a late interrupt must not stop it
                session.expunge_all()
                session.rollback()

    def _begin_budget(self, session: Session, budget: Budget) -> None:
        if not self.is_sqlite:
            # A whole number of milliseconds this module computes, written into the text (SET takes no parameters).
            timeout = f"SET LOCAL statement_timeout = {max(1, int(budget.seconds * 1000))}"
            run_script(session, f"BEGIN; {timeout}" if self._own_begin else timeout)
        budget.attach(session.connection().connection.driver_connection)

    def refresh_statistics(self, tables: tuple[str, ...]) -> None:
        """``ANALYZE`` the tables on PostgreSQL (SQLite's planner does well without statistics here)."""
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {', '.join(tables)}")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._file_turn is not None:
            self._file_turn.close()


class Budget:
    """The time one request's statements may take, and the way to stop them sooner (its client went away).

    The clock starts at the request's first statement, not while it waits for a thread. A watchdog thread
    stops the statements when the time is spent or ``stop`` was called: it interrupts the SQLite connection
    (``sqlite3.Connection.interrupt``, made to be called from another thread) or cancels the PostgreSQL query
    (psycopg's ``cancel_safe``), and does so again at every tick while the request holds the connection, since
    an interrupt that arrives between two statements is lost. On PostgreSQL the server also ends each statement
    at the budget by itself (``statement_timeout``). Without it one feed query ran for minutes after its client
    had given up, and eight of them took every thread of the server (README, "OData feed").
    """

    TICK = 0.05  # seconds between the watchdog's looks at the budgets it watches

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline: float | None = None
        self.reason: str | None = None  # why the statements were stopped: "spent" or "left"
        self._lock = threading.Lock()
        self._driver: Any = None

    def stop(self, reason: str = "left") -> None:
        """Stop the request's statements (from any thread, the event loop's too: this never waits)."""
        if self.reason is None:
            self.reason = reason
        _WATCHDOG.poke()

    def stopped(self, exc: OperationalError) -> bool:
        """Whether the driver's error is this budget stopping a statement (or the server's timeout for it)."""
        cancelled = getattr(exc.orig, "sqlstate", None) == "57014" or str(exc.orig) == "interrupted"
        if cancelled and self.reason is None:
            self.reason = "spent"
        return self.reason is not None

    def error(self) -> BudgetSpent:
        """What the request answers once stopped."""
        if self.reason == "left":
            return BudgetSpent("the client went away; its query was stopped")
        return BudgetSpent(
            f"the query spent its time budget of {self.seconds:g} s and was stopped; narrow $filter or $expand, "
            "or ask for smaller pages"
        )

    def attach(self, driver: Any) -> None:
        """The driver connection now runs the request's statements: the clock starts at the first one."""
        with self._lock:
            if self.deadline is None:
                self.deadline = time.monotonic() + self.seconds
            self._driver = driver
        _WATCHDOG.watch(self)
        if self.reason is not None:  # the client left while the request waited for its thread
            raise self.error()

    def detach(self) -> None:
        """The connection is the request's no longer: nothing interrupts it after this returns."""
        with self._lock:
            self._driver = None
        _WATCHDOG.forget(self)

    def tick(self, now: float) -> None:
        """The watchdog's look: interrupt the statements of a spent or stopped budget."""
        with self._lock:
            if self._driver is None or self.deadline is None:
                return
            if self.reason is None and now >= self.deadline:
                self.reason = "spent"
            if self.reason is None:
                return
            try:
                if isinstance(self._driver, sqlite3.Connection):
                    self._driver.interrupt()
                else:
                    self._driver.cancel_safe(timeout=1.0)
            except Exception as exc:  # a connection closing under us; the statement ends with it
                log.debug("could not interrupt a statement: %s", exc)


class _Watchdog:
    """The one thread that watches the budgets of the running requests (started on first use, per process)."""

    def __init__(self) -> None:
        self._budgets: set[Budget] = set()
        self._wake = threading.Condition()
        self._pid = 0

    def watch(self, budget: Budget) -> None:
        with self._wake:
            self._budgets.add(budget)
            if self._pid != os.getpid():  # first use, or a forked child, which has no copy of the thread
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="payroster-budgets", daemon=True).start()
            self._wake.notify()

    def forget(self, budget: Budget) -> None:
        with self._wake:
            self._budgets.discard(budget)

    def poke(self) -> None:
        with self._wake:
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._budgets:
                    self._wake.wait()
                self._wake.wait(Budget.TICK)
                budgets = list(self._budgets)
            now = time.monotonic()
            for budget in budgets:
                budget.tick(now)


_WATCHDOG = _Watchdog()


class FileTurn:
    """The write turn among the processes sharing one SQLite file: an exclusive ``flock`` on ``FILE-writer``.

    SQLite's own wait for its write lock is its busy handler, which sleeps 1, 2, 5, ... and then 100 ms between
    tries: with two server processes writing steadily the slowest upserts waited half a second (bench/JOURNAL.md).
    Here a waiting writer tries again within a millisecond of the lock's release. It polls rather than blocks: a
    blocking ``flock`` cannot time out, and a write gives up after ``Database.write_wait`` (another process's
    long import) instead of holding its request. Only the thread that holds its process's writer lock waits here,
    so each process has one poller at most. The kernel drops the lock with its holder, a crashed one too (a child
    forked from it closes its copy of the descriptor, which would keep the lock alive).

    The file is opened read-only (``flock`` needs no more) and made with exactly the database's permission bits,
    whatever the umask, as SQLite makes its ``-wal`` and ``-shm`` files: every account that may write the
    database (a server, a scheduled import) can open it. When it cannot be opened all the same, writes go on
    without it, kept apart by ``BEGIN IMMEDIATE`` and SQLite's busy handler as before, and a warning says why.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + "-writer")
        self._fd: int | None = None
        self._pid = 0
        self._warned = False
        _TURNS.add(self)

    def _open(self) -> int:
        try:
            mode: int | None = stat.S_IMODE(self.database.stat().st_mode)
        except FileNotFoundError:  # written before the database exists: SQLite's own default for a new file
            mode = None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644 if mode is None else mode)
        except FileExistsError:
            return os.open(self.path, os.O_RDONLY)
        if mode is not None:
            os.fchmod(fd, mode)
        return fd

    def _file(self) -> int | None:
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd, self._pid = self._open(), os.getpid()
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("SQLite writes go without their turn file %s (%s); they meet in SQLite", self.path, exc)
                return None
        return self._fd

    def acquire(self, deadline: float) -> bool:
        """Wait for the turn until ``deadline`` (``Unavailable`` after it); False when there is no turn file."""
        fd, pause = self._file(), 0.0001
        if fd is None:
            return False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Unavailable("the database is busy; retry later") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)

    def release(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def forget(self) -> None:
        """In a forked child: close the parent's descriptor (the parent's lock stays with the parent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


_TURNS: weakref.WeakSet[FileTurn] = weakref.WeakSet()


def _forget_turns() -> None:
    for turn in list(_TURNS):
        turn.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_turns)


def _begin(session: Session, workspace_id: uuid.UUID | None, exclusive: bool, own: bool) -> None:
    """PostgreSQL: the workspace's lock, and with ``own`` the ``BEGIN`` of a connection in autocommit mode.

    One message in PostgreSQL's simple query protocol (psycopg uses it for a statement without parameters),
    which runs the statements it carries in turn and answers once: ``BEGIN`` and the lock cost one round trip
    instead of two. The lock key is an integer this module computes, written into the text as a number. On the
    driver (db.prepared): through the engine, taking the lock cost a single upsert a tenth of its time in process
    (bench/JOURNAL.md). Every statement after it, and psycopg's ``commit`` or ``rollback``, runs in the
    transaction it opened.
    """
    statements = ["BEGIN"] if own else []
    if workspace_id is not None:
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        statements.append(f"SELECT {function}({int(_lock_key(workspace_id))})")
    if statements:
        run_script(session, "; ".join(statements))


@functools.lru_cache(maxsize=4096)
def _lock_key(workspace_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for a workspace."""
    return int.from_bytes(hashlib.blake2b(workspace_id.bytes, digest_size=8).digest(), "big", signed=True)
