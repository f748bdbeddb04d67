"""Statements of the single-record write path, compiled once per dialect and run on the driver.

A single upsert runs four to six one-row statements. Through ``Connection.execute`` each paid SQLAlchemy's
execution context (events, cache lookup, parameter and result processing set up anew): a one-row ``SELECT``
by key took 130 us on SQLite where the driver itself took 15 us (263 and 109 us on PostgreSQL), so the
framework's share was most of the upsert's database time (bench/JOURNAL.md). Here SQLAlchemy still writes the
SQL (built from the models, compiled once per dialect) and still converts every value (each column type's own
bind and result processors, SQLAlchemy's public type API); only the per-call execution machinery is skipped.
No library offers that split, hence these few lines. Driver errors are raised as SQLAlchemy's
(``IntegrityError``...), like any other statement's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Form:
    """A statement as one dialect's driver takes it."""

    sql: str
    positional: tuple[str, ...] | None  # parameter names in order (qmark drivers), None for named ones
    binds: dict[str, Processor]
    fixed: dict[str, Any]  # values the statement carries itself (literals)
    results: tuple[Processor, ...]

    def arguments(self, params: Mapping[str, Any]) -> Any:
        values = {**self.fixed, **params} if self.fixed else params
        out = {name: (value if (p := self.binds[name]) is None or value is None else p(value))
               for name, value in values.items() if name in self.binds}  # fmt: skip
        if len(out) != len(self.binds):
            raise KeyError(f"missing parameters: {sorted(set(self.binds) - set(out))}")
        return tuple(out[name] for name in self.positional) if self.positional is not None else out


class Prepared:
    """A statement with bound parameters (no expanding ``IN``), run in a session's transaction.

    ``run`` returns the rows (a ``RETURNING`` or ``SELECT``), each value converted by its column's type as a
    ``Result`` would; ``columns`` names them. ``run_many`` runs a statement that returns nothing once per
    parameter set, in one ``executemany``.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._selected = tuple(getattr(statement, "exported_columns", None) or ())
        self.columns = tuple(c.key for c in self._selected)
        self._forms: dict[tuple[str, str, str], _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        # Per driver, not per database: two PostgreSQL drivers take different placeholders and processors.
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        form = self._forms.get(key)
        if form is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            # What the engine would compute or rewrite per call (a column's Python default, an expanding IN,
            # a renamed parameter) has no place here: refuse it rather than write NULL or a wrong name.
            per_call = (compiled.insert_prefetch, compiled.update_prefetch, compiled.post_compile_params,
                        compiled.literal_execute_params, compiled.escaped_bind_names)  # fmt: skip
            if any(per_call):
                raise ValueError(f"a statement with per-call parameters cannot be prepared: {compiled.string}")
            binds: dict[str, Processor] = {
                name: b.type.dialect_impl(dialect).bind_processor(dialect) for name, b in compiled.binds.items()
            }
            fixed = {name: b.effective_value for name, b in compiled.binds.items() if not b.required}
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in self._selected)
            positional = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            form = self._forms[key] = _Form(compiled.string, positional, binds, fixed, results)
        return form

    def run(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        conn = session.connection()
        form = self._form(conn.dialect)
        args = form.arguments(params)
        rows = self._execute(conn, form, args, many=False)
        if not rows or not any(form.results):
            return rows
        convert = form.results
        return [tuple(v if p is None or v is None else p(v) for p, v in zip(convert, row, strict=True)) for row in rows]

    def run_many(self, session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return
        conn = session.connection()
        form = self._form(conn.dialect)
        if form.results:
            raise ValueError("run_many is for statements that return no rows")
        if len(params) == 1:
            # One row (a single write's new tag): psycopg's executemany runs in pipeline mode, whose set-up
            # and extra polls cost more than the one statement.
            self._execute(conn, form, form.arguments(params[0]), many=False)
            return
        self._execute(conn, form, [form.arguments(p) for p in params], many=True)

    @staticmethod
    def _execute(conn: Connection, form: _Form, args: Any, many: bool) -> list[Any]:
        dbapi = conn.dialect.loaded_dbapi
        driver: Any = conn.connection.driver_connection
        try:
            if many:
                # sqlite3 runs executemany on its connection, psycopg on a cursor.
                (driver if hasattr(driver, "executemany") else driver.cursor()).executemany(form.sql, args)
                return []
            cursor = driver.execute(form.sql, args)
            return cursor.fetchall() if form.results else []
        except dbapi.Error as exc:
            # As the engine does: a lost connection is invalidated, so the pool never hands it out again.
            lost = conn.dialect.is_disconnect(exc, driver, None)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                form.sql, args, exc, dbapi.Error, dialect=conn.dialect, connection_invalidated=lost, ismulti=many
            ) from exc


def run_script(session: Session, sql: str) -> None:
    """Statements without parameters, as one message to the driver and with a prepared statement's error
    handling. psycopg sends a statement without parameters in PostgreSQL's simple query protocol, which runs
    several, separated by semicolons, in one round trip; only constant text belongs here."""
    Prepared._execute(session.connection(), _Form(sql, None, {}, {}, ()), None, many=False)
