"""Alembic migrations: up, down and up again on both databases, no drift from the models, and concurrent
first starts on one SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from payroster.db import migrate
from payroster.db.models import Base
from tests.conftest import BACKENDS, PG_URL
from tests.procs import cli_env, pg_schema, run_cli

MODEL_TABLES = set(Base.metadata.tables)


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
    # Revision 0009's tables (sign-in through an identity provider) go with it.
    sso = {"sso_providers", "sso_domains", "sso_identities", "sso_settings", "sso_break_glass", "sso_attempts"}
    assert statistics(empty_engine) == set() and tables(empty_engine) == MODEL_TABLES - sso
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
