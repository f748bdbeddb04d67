"""Schema migrations: Alembic driven programmatically, SQLite upgraded automatically under a file lock."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from payroster.config import Settings
from payroster.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def on_this_database(dialect: str) -> Callable[..., bool]:
    """Autogenerate's ``include_object``: leave out what the models create only on another database
    (``Index(...).ddl_if(dialect=...)``), which autogenerate would otherwise report as missing."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)
        return ddl_if is None or ddl_if.dialect is None or ddl_if.dialect == dialect

    return include


def alembic_config() -> Config:
    """An Alembic config pointing at PayRoster's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision``."""
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def is_current(engine: Engine) -> bool:
    """True when the database schema is at the code's head revision."""
    return current_revision(engine) == head_revision()


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    # Several processes (serve --workers, a CLI command) may start at once on one SQLite file; the
    # lock lets exactly one migrate while the others wait and then find the schema current.
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:":
        yield
        return
    lock_path = Path(db).with_name(Path(db).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SchemaBehind(RuntimeError):
    """The PostgreSQL schema is older than the code: run ``payroster db upgrade``."""


def prepare_database(settings: Settings) -> Database:
    """Open the database; SQLite is migrated automatically, PostgreSQL must already be current.

    Here rather than beside the application: every CLI command opens the database this way, and importing the
    application (its routes, OData and SCIM models) was half of a command's start-up (~1.5 s)."""
    db = Database(settings)
    if db.is_sqlite:
        if not is_current(db.engine):
            upgrade(db.engine)
    elif not is_current(db.engine):
        db.dispose()
        raise SchemaBehind(
            f"the database schema is at {current_revision(db.engine) or 'nothing'}, the code needs "
            f"{head_revision()}: run `payroster db upgrade` first"
        )
    return db
