"""Statements run on the driver (db.prepared): the values they write and read are the engine's, their errors
are SQLAlchemy's, they run in the session's transaction, and the single upsert's user is written once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payroster.db.engine import Database
from payroster.db.models import User, Workspace, table, utcnow
from payroster.db.prepared import Prepared
from payroster.services import users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_user
from tests.conftest import WS

USERS = table(User)
COLUMNS = [c.name for c in USERS.c]
INSERT = Prepared(insert(USERS).values({c: bindparam(c) for c in COLUMNS}))
READ = Prepared(select(*USERS.c).where(USERS.c.workspace_id == bindparam("ws"), USERS.c.id == bindparam("id")))


def a_user(ws: WS, **values: Any) -> dict[str, Any]:
    now = utcnow()
    row = dict.fromkeys(COLUMNS)
    row.update(workspace_id=ws.id, id=uuid.uuid4(), email="p@x.example", email_key="p@x.example", role="Participant",
               active=True, created_at=now, updated_at=now, scim_hidden=False)  # fmt: skip
    row.update(values)
    return row


def test_values_written_and_read_on_the_driver_are_the_engines(db: Database, ws: WS) -> None:
    """UUIDs, datetimes, booleans, NULLs and text: what the driver path writes, the engine reads back equal,
    and the other way round (on SQLite each of these types has a stored form of its own)."""
    written = a_user(ws, first_name="Zoë", last_name=None, active=False, created_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6))
    by_engine = a_user(ws, email="q@x.example", email_key="q@x.example", direct_manager_id=written["id"])
    with db.write() as s:
        INSERT.run(s, written)
        s.execute(insert(USERS), by_engine)
    with db.read() as s:
        for row in (written, by_engine):
            engine_row = s.execute(select(*USERS.c).where(USERS.c.id == row["id"])).one()
            driver_rows = READ.run(s, {"ws": ws.id, "id": row["id"]})
            assert driver_rows == [tuple(engine_row)]
            assert dict(zip(READ.columns, driver_rows[0], strict=True)) == row
    got = dict(zip(READ.columns, driver_rows[0], strict=True))
    assert isinstance(got["id"], uuid.UUID) and isinstance(got["created_at"], dt.datetime)
    assert got["active"] is True and got["direct_manager_id"] == written["id"]


def test_an_error_is_sqlalchemys_and_the_transaction_rolls_back(db: Database, ws: WS) -> None:
    """A driver error comes out as SQLAlchemy's exception (what callers catch), and the unit of work rolls
    back everything the transaction wrote, driver statements included."""
    first = a_user(ws, email="r@x.example", email_key="r@x.example")
    with pytest.raises(IntegrityError), db.write() as s:
        INSERT.run(s, first)
        INSERT.run(s, {**first, "id": uuid.uuid4()})  # the same e-mail key in the workspace
    with db.read() as s:
        assert READ.run(s, {"ws": ws.id, "id": first["id"]}) == []


def test_a_missing_parameter_is_named(db: Database, ws: WS) -> None:
    with pytest.raises(KeyError, match="'id'"), db.read() as s:
        READ.run(s, {"ws": ws.id})


def updated_rows(s: Session) -> int:
    """Rows of ``users`` this PostgreSQL backend has updated, this transaction's included (the counts of
    earlier transactions stay until the server collects them, hence differences)."""
    query = text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = 'users'::regclass")
    return int(s.execute(query).scalar_one())


def test_an_upsert_writes_its_user_once(db: Database, ws: WS) -> None:
    """The update of a user the session had loaded itself (as SCIM's writes do) and the upsert's own: one
    ``UPDATE`` of the row each, with the changed columns only, and none for an upsert that changes nothing (its
    role given again, a tag it holds); the commit writes nothing more. SQLite's trace
    shows every statement the driver runs; PostgreSQL counts the transaction's updated rows, counted after
    the flush a commit would run."""
    actor = Actor(ws.id, None, "cli", "cli")
    inp, _ = parse_user({"emailAddress": "s@x.example", "role": "Participant", "tags": "A"}, field_pointer())
    with db.write(ws.id) as s:
        made, _ = users.upsert(s, actor, inp)
    traced: list[str] = []
    cases = (("patch", "last_name", "first_name"), ("upsert", "first_name", "last_name"), ("unchanged", None, "role"))
    for change, column, untouched in cases:
        traced.clear()
        with db.write(ws.id) as s:
            driver = s.connection().connection.driver_connection
            if db.is_sqlite:
                driver.set_trace_callback(traced.append)  # type: ignore[union-attr]
            else:
                before = updated_rows(s)
            try:
                if change != "patch":
                    given = {"firstName": "New"} if change == "upsert" else {"role": "Participant", "tags": "a"}
                    inp, _ = parse_user({"emailAddress": "s@x.example", **given}, field_pointer())
                    users.upsert(s, actor, inp)
                else:  # a user the session loaded itself, as SCIM's writes do
                    inp, _ = parse_user({"lastName": "Later"}, field_pointer(), require_email=False)
                    users.patch_locked(s, actor, users.get(s, ws.id, made.user.id, lock=True), inp)
                if not db.is_sqlite:
                    s.flush()
                    assert updated_rows(s) - before == (0 if column is None else 1), change
                s.commit()
            finally:
                if db.is_sqlite:
                    driver.set_trace_callback(None)  # type: ignore[union-attr]
        if db.is_sqlite:
            updates = [t for t in traced if t.startswith("UPDATE users")]
            assert len(updates) == (0 if column is None else 1), traced
            if column is not None:
                assert f"{column}=" in updates[0] and f"{untouched}=" not in updates[0] and "role=" not in updates[0]
            assert traced[-1] == "COMMIT", traced
    with db.read() as s:
        found = users.find_by_email(s, ws.id, "s@x.example")
    assert found is not None and (found.first_name, found.last_name) == ("New", "Later")


def test_a_statement_the_engine_would_complete_per_call_is_refused(db: Database, ws: WS) -> None:
    """A column's Python default (here ``workspaces.created_at``) or an expanding ``IN`` is computed by the engine
    on each call; on the driver it would be written as NULL or sent unexpanded, so preparing it fails loudly."""
    defaulted = Prepared(
        insert(table(Workspace)).values(id=bindparam("id"), name=bindparam("name"), slug=bindparam("slug"))
    )
    expanding = Prepared(select(USERS.c.id).where(USERS.c.id.in_(bindparam("ids", expanding=True))))
    with db.write() as s:
        with pytest.raises(ValueError, match="per-call"):
            defaulted.run(s, {"id": uuid.uuid4(), "name": "N", "slug": "n"})
        with pytest.raises(ValueError, match="per-call"):
            expanding.run(s, {"ids": [ws.id]})


def test_run_many_writes_every_row_in_one_call(db: Database, ws: WS) -> None:
    """``run_many`` (tags, aliases, audit events) writes each parameter set, a single one included (run as one
    statement); a statement with rows to return is refused there, and a failing row, alone or among others,
    rolls the whole unit of work back."""
    rows = [a_user(ws, email=f"m{i}@x.example", email_key=f"m{i}@x.example") for i in range(4)]
    with db.write() as s:
        INSERT.run_many(s, rows[:3])
        INSERT.run_many(s, rows[3:])
        with pytest.raises(ValueError, match="no rows"):
            READ.run_many(s, [{"ws": ws.id, "id": rows[0]["id"]}])
    with db.read() as s:
        assert all(READ.run(s, {"ws": ws.id, "id": r["id"]}) for r in rows)
    clash = [a_user(ws, email="n@x.example", email_key="n@x.example"), {**rows[0], "id": uuid.uuid4()}]
    with pytest.raises(IntegrityError), db.write() as s:
        INSERT.run_many(s, clash)
    single = a_user(ws, email="o@x.example", email_key="o@x.example")
    with pytest.raises(IntegrityError), db.write() as s:
        INSERT.run_many(s, [single])
        INSERT.run_many(s, [{**rows[1], "id": uuid.uuid4()}])
    with db.read() as s:
        assert READ.run(s, {"ws": ws.id, "id": clash[0]["id"]}) == []
        assert READ.run(s, {"ws": ws.id, "id": single["id"]}) == []
