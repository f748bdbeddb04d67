"""Read units of work: on SQLite one snapshot for every statement of a read; on PostgreSQL statements without a
transaction around them (READ COMMITTED gave each statement its own snapshot anyway), so a read and the key check
every request makes cost no BEGIN and ROLLBACK round trips."""

from __future__ import annotations

import threading
import types
from typing import Any

from sqlalchemy import event, text
from starlette.requests import Request

from payroster.auth.apikey import authenticate
from payroster.db.engine import Database
from tests.conftest import WS, make_workspace


def test_a_read_is_one_snapshot_on_sqlite_and_autocommit_statements_on_postgresql(db: Database, ws: WS) -> None:
    with db.read() as s:
        if db.is_sqlite:
            # The read's snapshot holds while another connection commits a workspace.
            before = s.execute(text("SELECT count(*) FROM workspaces")).scalar_one()
            writer = threading.Thread(target=make_workspace, args=(db, "Later", "later@x.example"))
            writer.start()
            writer.join()
            assert s.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == before
        else:
            # now() is the start of the transaction: it moves between statements only without one.
            first = s.execute(text("SELECT now()")).scalar_one()
            s.execute(text("SELECT pg_sleep(0.02)"))
            assert s.execute(text("SELECT now()")).scalar_one() > first
    with db.read() as s:  # a new read sees the commit
        assert s.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == (2 if db.is_sqlite else 1)
    with db.write() as s:  # a write is one transaction on both
        if not db.is_sqlite:
            first = s.execute(text("SELECT now()")).scalar_one()
            s.execute(text("SELECT pg_sleep(0.02)"))
            assert s.execute(text("SELECT now()")).scalar_one() == first


def test_the_key_check_reads_without_a_transaction_on_postgresql(db: Database, ws: WS) -> None:
    """The key check's one statement runs on an autocommit connection on PostgreSQL (no BEGIN, no ROLLBACK),
    inside a read transaction on SQLite (which costs no round trip there)."""
    seen: list[bool] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM api_keys" in statement:
            driver = conn.connection.driver_connection
            seen.append(driver.in_transaction if db.is_sqlite else driver.autocommit)

    scope = {"type": "http", "headers": [(b"x-apikey", ws.key.encode())], "app": types.SimpleNamespace(state=None)}
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        principal = authenticate(db, Request(scope), "api", "Basic")
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert principal.workspace_id == ws.id
    assert seen == [True]
