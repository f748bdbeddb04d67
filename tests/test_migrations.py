"""Alembic migrations: up, down and up again on both databases, no drift from the models, and concurrent
first starts on one SQLite file."""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select, text

from payroster.db import migrate
from payroster.db.models import AuditEvent, Base, Workspace
from tests.conftest import BACKENDS, PG_URL
from tests.procs import cli_env, pg_schema, run_cli

MODEL_TABLES = set(Base.metadata.tables)
TIMELINE_TABLES = {"membership_periods", "manager_periods", "team_periods"}


@pytest.fixture(params=BACKENDS)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database that has never been migrated."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    assert PG_URL is not None
    with pg_schema(PG_URL) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def statistics(engine: Engine) -> set[str]:
    """PostgreSQL's extended statistics objects in the database's schema (SQLite has none)."""
    if engine.dialect.name != "postgresql":
        return set()
    with engine.connect() as conn:
        query = (
            "SELECT stxname FROM pg_statistic_ext"
            " WHERE stxnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
        return {row[0] for row in conn.exec_driver_sql(query)}


def drift(engine: Engine) -> list[object]:
    """What autogenerate would still change to make the database match the models."""
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": migrate.on_this_database(conn.dialect.name)}
        ctx = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_downgrade_upgrade_round_trip(empty_engine: Engine) -> None:
    assert migrate.current_revision(empty_engine) is None
    assert not migrate.is_current(empty_engine)

    migrate.upgrade(empty_engine)
    assert migrate.is_current(empty_engine)
    assert tables(empty_engine) == MODEL_TABLES

    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert tables(empty_engine) == set()

    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    assert tables(empty_engine) == MODEL_TABLES
    # The planner's statistics of a tag's and an alias's key (revision 0007), which its models cannot hold.
    keyed = {"st_user_tags_value_key", "st_user_aliases_value_key"}
    assert statistics(empty_engine) == (keyed if empty_engine.dialect.name == "postgresql" else set())
    migrate.downgrade(empty_engine, "0006")
    # Revision 0010's tables (sign-in through an identity provider) and 0011's (timelines) go with it.
    sso = {"sso_providers", "sso_domains", "sso_identities", "sso_settings", "sso_break_glass", "sso_attempts"}
    webhooks = {"webhook_endpoints", "webhook_attempts", "webhook_sends"}  # revision 0013
    later = sso | {"change_sequences"} | TIMELINE_TABLES | webhooks
    assert statistics(empty_engine) == set() and tables(empty_engine) == MODEL_TABLES - later
    migrate.upgrade(empty_engine)
    # Upgrading a current database is a no-op, not an error.
    migrate.upgrade(empty_engine)
    assert migrate.is_current(empty_engine)


def test_migrations_match_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert drift(empty_engine) == []


def test_the_drift_check_sees_a_difference(empty_engine: Engine) -> None:
    """The no-drift test means something: a column missing from the database is reported."""
    migrate.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)")
    found = drift(empty_engine)
    assert any(op[0] == "remove_table" and op[1].name == "stray_table" for op in found if isinstance(op, tuple))


def test_concurrent_first_commands_on_one_sqlite_file_migrate_once(tmp_path: Path) -> None:
    """Several processes starting on a fresh SQLite file at once (``serve --workers``, a cron'd import):
    the file lock lets one migrate while the others wait, and every command succeeds."""
    env = cli_env(f"sqlite:///{tmp_path / 'race.db'}")

    def create(i: int) -> int:
        run = run_cli(env, "workspace", "create", "--name", f"Team {i}", "--admin-email", f"a{i}@x.example")
        assert run.code == 0, run.err
        return run.code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(create, range(4))) == [0] * 4
    engine = create_engine(f"sqlite:///{tmp_path / 'race.db'}")
    assert migrate.is_current(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM workspaces").scalar() == 4
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    engine.dispose()


def test_existing_events_are_numbered_in_the_order_they_were_written(empty_engine: Engine) -> None:
    """Revision 0008_change_feed numbers each workspace's events by time, then id (an id written later may sort
    first), and starts each workspace's counter after its last event; a workspace without events at 0."""
    migrate.upgrade(empty_engine, "0007")
    a, b, quiet = (uuid.UUID(int=n) for n in (1, 2, 3))
    t0 = dt.datetime(2026, 1, 1)
    # (workspace, id, seconds after t0): in A the event with the smallest id was written last.
    written = [(a, 30, 2), (a, 10, 3), (a, 20, 1), (b, 40, 5), (a, 50, 3)]
    with empty_engine.begin() as conn:  # the models' tables, with only the columns revision 0007 has
        for ws in (a, b, quiet):
            conn.execute(insert(Workspace.__table__).values(id=ws, slug=ws.hex, name="W", created_at=t0))
        for ws, n, seconds in written:
            event = {"workspace_id": ws, "id": uuid.UUID(int=n), "target_id": uuid.UUID(int=n), "changes": "[]"}
            at = t0 + dt.timedelta(seconds=seconds)
            values = {**event, "occurred_at": at, "actor_kind": "system", "channel": "cli", "action": "user.created"}
            conn.execute(insert(AuditEvent.__table__).values(**values, target_type="user"))
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        numbered = conn.execute(text("SELECT workspace_id, id, sequence FROM audit_events")).all()
        counters = dict(conn.execute(text("SELECT workspace_id, last_sequence FROM change_sequences")).all())
    by_id = {uuid.UUID(str(row.id)).int: row.sequence for row in numbered}
    assert by_id == {20: 1, 30: 2, 10: 3, 50: 4, 40: 1}
    assert {uuid.UUID(str(k)): v for k, v in counters.items()} == {a: 4, b: 1, quiet: 0}
    migrate.downgrade(empty_engine, "0007")
    migrate.upgrade(empty_engine)


def _old_key(value: str) -> str:
    """The e-mail key of revisions 0001-0008."""
    return unicodedata.normalize("NFC", value.strip().casefold())


def test_revision_0009_recomputes_email_keys_and_reports_users_sharing_one(
    empty_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys written by the previous schema are recomputed; of two users that would share one, the one already
    holding it (else the first created) takes it, the other keeps its old key, with a warning and an audit event
    (docs/operations.md, "Users sharing one e-mail address"). The downgrade brings the old keys back."""
    migrate.upgrade(empty_engine, "0007")
    ws_a, ws_b = uuid.uuid4(), uuid.uuid4()
    t0 = dt.datetime(2026, 1, 1)
    people = {  # name: (workspace, e-mail, SCIM userName, created)
        "unicode": (ws_a, "jdoe@müller.de", None, t0),
        "a-label": (ws_a, "jdoe@xn--mller-kva.de", None, t0 + dt.timedelta(days=1)),
        "sharp-s": (ws_a, "Straße@example.com", "Straße@Example.com", t0),
        "ascii": (ws_a, "Finance@example.com", None, t0),
        "first": (ws_b, "ana@bücher.de", None, t0),
        "wide": (ws_b, "ana@\uff42ücher.de", None, t0 + dt.timedelta(days=1)),
    }
    ids = {name: uuid.uuid4() for name in people}
    users, workspaces = Base.metadata.tables["users"], Base.metadata.tables["workspaces"]
    with empty_engine.begin() as conn:
        for ws in (ws_a, ws_b):
            conn.execute(workspaces.insert().values(id=ws, slug=ws.hex, name=ws.hex, default_scim_role="Participant",
                                                    created_at=t0))  # fmt: skip
        for name, (ws, email, user_name, created) in people.items():
            conn.execute(
                users.insert().values(
                    workspace_id=ws, id=ids[name], email=email, email_key=_old_key(email), role="Participant",
                    active=True, created_at=created, updated_at=created, user_name=user_name,
                    user_name_key=user_name and _old_key(user_name), scim_hidden=False,
                )
            )  # fmt: skip

    def keys() -> dict[str, tuple[str, str | None]]:
        with empty_engine.connect() as conn:
            rows = conn.execute(select(users.c.id, users.c.email_key, users.c.user_name_key))
            by_id = {uid: (k, u) for uid, k, u in rows}
        return {name: by_id[uid] for name, uid in ids.items()}

    with caplog.at_level(logging.WARNING, logger="payroster.migrate"):
        migrate.upgrade(empty_engine)
    assert keys() == {
        "unicode": ("jdoe@müller.de", None),  # kept: the A-label user already held the new key
        "a-label": ("jdoe@xn--mller-kva.de", None),
        "sharp-s": ("straße@example.com", "straße@example.com"),  # no longer strasse@
        "ascii": ("finance@example.com", None),
        "first": ("ana@xn--bcher-kva.de", None),  # created first, so it takes the key
        "wide": ("ana@\uff42ücher.de", None),  # kept
    }
    warnings = [r.getMessage() for r in caplog.records if r.name == "payroster.migrate"]
    assert len(warnings) == 2, warnings
    for kept, holder in (("unicode", "a-label"), ("wide", "first")):
        assert any(str(ids[kept]) in w and f"the same address as {people[holder][1]} ({ids[holder]})" in w
                   for w in warnings), warnings  # fmt: skip
    events = Base.metadata.tables["audit_events"]
    with empty_engine.connect() as conn:
        found = conn.execute(select(events.c.target_id, events.c.action, events.c.channel, events.c.changes)).all()
    assert {(uid, action, channel) for uid, action, channel, _ in found} == {
        (ids["unicode"], "user.addressConflict", "migration"),
        (ids["wide"], "user.addressConflict", "migration"),
    }
    assert all("the same address as" in json.loads(c)[0]["after"] for *_, c in found)

    migrate.downgrade(empty_engine, "0007")
    assert {name: k for name, (k, _) in keys().items()} == {name: _old_key(p[1]) for name, p in people.items()}
    migrate.upgrade(empty_engine)
    assert keys()["sharp-s"] == ("straße@example.com", "straße@example.com")


def test_revision_0011_turns_current_values_into_open_periods_and_keeps_todays_reads(empty_engine: Engine) -> None:
    """A database made by revision 0010: every membership becomes a period from its creation date, every user's
    manager and every team's manager and parent a period from the record's creation date, all open; today's
    values (team_members, the managers and parents) are untouched; the downgrade drops the periods only."""
    migrate.upgrade(empty_engine, "0010")
    meta = Base.metadata.tables
    ws, boss, rep, east, west = (uuid.UUID(int=n) for n in (1, 2, 3, 4, 5))
    t0, t1, t2 = dt.datetime(2025, 3, 4, 23, 59), dt.datetime(2025, 6, 1, 8), dt.datetime(2026, 1, 2, 0, 1)
    with empty_engine.begin() as conn:
        conn.execute(insert(meta["workspaces"]).values(id=ws, slug="w", name="W", default_scim_role="Participant",
                                                       created_at=t0))  # fmt: skip
        for uid, email, manager, at in ((boss, "boss@x.com", None, t0), (rep, "rep@x.com", boss, t1)):
            conn.execute(insert(meta["users"]).values(
                workspace_id=ws, id=uid, email=email, email_key=email, role="Participant", active=True,
                direct_manager_id=manager, created_at=at, updated_at=at, scim_hidden=False))  # fmt: skip
        for tid, name, manager, parent, at in ((east, "East", boss, None, t0), (west, "West", None, east, t1)):
            conn.execute(insert(meta["teams"]).values(
                workspace_id=ws, id=tid, name=name, name_key=name.lower(), manager_id=manager, parent_team_id=parent,
                manager_can_view_results=False, manager_can_view_credits=False, members_can_view_credits=False,
                created_at=at, updated_at=at))  # fmt: skip
        conn.execute(insert(meta["team_members"]).values(workspace_id=ws, team_id=west, user_id=rep, created_at=t2))

    def current() -> tuple[object, ...]:
        with empty_engine.connect() as conn:
            return (
                conn.execute(text("SELECT team_id, user_id, created_at FROM team_members")).all(),
                sorted(conn.execute(text("SELECT id, direct_manager_id, updated_at FROM users")).all()),
                sorted(conn.execute(text("SELECT id, manager_id, parent_team_id, updated_at FROM teams")).all()),
            )

    before = current()
    migrate.upgrade(empty_engine)
    assert current() == before
    with empty_engine.connect() as conn:

        def rows(name: str, *columns: str) -> set[tuple[object, ...]]:
            t = meta[name]
            return {tuple(r) for r in conn.execute(select(*(t.c[c] for c in columns)))}

        members = rows("membership_periods", "team_id", "user_id", "valid_from", "valid_to")
        managers = rows("manager_periods", "user_id", "manager_id", "valid_from", "valid_to")
        teams = rows("team_periods", "team_id", "manager_id", "parent_team_id", "valid_from", "valid_to")
    assert members == {(west, rep, t2.date(), None)}
    assert managers == {(rep, boss, t1.date(), None)}
    assert teams == {(east, boss, None, t0.date(), None), (west, None, east, t1.date(), None)}
    migrate.downgrade(empty_engine, "0010")
    assert current() == before and not (tables(empty_engine) & TIMELINE_TABLES)
    migrate.upgrade(empty_engine)


def test_revision_0012_puts_the_end_date_in_the_pair_index(empty_engine: Engine) -> None:
    """A team's members on a day are read from the pair index alone (bench/JOURNAL.md): revision 0012 adds
    ``valid_to`` to it, and its downgrade takes it out again."""

    def pair_columns() -> list[str | None]:
        found = inspect(empty_engine).get_indexes("membership_periods")
        return next(ix["column_names"] for ix in found if ix["name"] == "ix_membership_periods_pair")

    migrate.upgrade(empty_engine, "0011")
    assert pair_columns() == ["workspace_id", "team_id", "user_id", "valid_from"]
    migrate.upgrade(empty_engine)
    assert pair_columns() == ["workspace_id", "team_id", "user_id", "valid_from", "valid_to"]
    migrate.downgrade(empty_engine, "0011")
    assert pair_columns() == ["workspace_id", "team_id", "user_id", "valid_from"]
