"""``payroster changes prune`` as an operator runs it: kept forever unless a retention is configured."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from payroster.config import Settings
from payroster.db.migrate import prepare_database
from payroster.services import changes
from tests.conftest import make_workspace
from tests.procs import run_cli


def workspace(env: dict[str, str], name: str, email: str) -> None:
    """A workspace made in process (its events are the test's data; only the command under test runs apart)."""
    db = prepare_database(Settings(database_url=env["PAYROSTER_DATABASE_URL"], secret_key="x"))  # SQLite: migrated
    try:
        make_workspace(db, name, email)
    finally:
        db.dispose()


def events(env: dict[str, str]) -> list[tuple[int | None, dt.datetime]]:
    engine = sa.create_engine(env["PAYROSTER_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            query = sa.select(changes.EVENTS.c.sequence, changes.EVENTS.c.occurred_at).order_by(changes.EVENTS.c.id)
            return [(row.sequence, row.occurred_at) for row in conn.execute(query)]
    finally:
        engine.dispose()


def age(env: dict[str, str], days: int) -> int:
    """Move every event ``days`` into the past; how many there are."""
    engine = sa.create_engine(env["PAYROSTER_DATABASE_URL"])
    table = changes.EVENTS
    try:
        with engine.begin() as conn:
            rows = conn.execute(sa.select(table.c.workspace_id, table.c.id, table.c.occurred_at)).all()
            for row in rows:
                where = (table.c.workspace_id == row.workspace_id) & (table.c.id == row.id)
                conn.execute(sa.update(table).where(where).values(occurred_at=row.occurred_at - dt.timedelta(days)))
        return len(rows)
    finally:
        engine.dispose()


def test_prune_deletes_only_with_a_retention(env: dict[str, str]) -> None:
    workspace(env, "Acme", "owner@acme.example")
    old = age(env, 100)
    workspace(env, "Bravo", "owner@bravo.example")
    young = len(events(env)) - old

    kept = run_cli(env, "changes", "prune", "--json")
    assert kept.code == 0 and kept.json() == {"pruned": 0}
    assert "kept forever" in kept.err and len(events(env)) == old + young

    pruned = run_cli({**env, "PAYROSTER_CHANGE_RETENTION": "90 days"}, "changes", "prune", "--json")
    assert pruned.code == 0 and pruned.json() == {"pruned": old}
    left = events(env)
    assert len(left) == young and all(when > dt.datetime.now() - dt.timedelta(days=1) for _, when in left)

    assert run_cli(env, "changes", "prune", "--older-than", "soon").code == 2
