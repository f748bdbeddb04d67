"""PostgreSQL plans each statement with its values (db/engine.py, ``make_engine``): no connection keeps a generic
plan made while a table was small."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from payroster.db.engine import Database
from payroster.db.models import User
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgres"], indirect=True)


def test_a_statement_repeated_on_one_connection_is_never_run_from_a_generic_plan(db: Database) -> None:
    ws = uuid.uuid4()
    keys = [f"k{i}@x.example" for i in range(50)]
    with db.engine.connect() as conn:
        for _ in range(12):  # psycopg prepares a statement on its fifth run; PostgreSQL may go generic after five
            conn.execute(select(User.id).where(User.workspace_id == ws, User.email_key.in_(keys))).all()
        prepared = conn.execute(
            text("SELECT count(*), coalesce(sum(generic_plans), 0) FROM pg_prepared_statements")
        ).one()
    assert tuple(prepared) == (0, 0)
