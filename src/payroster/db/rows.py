"""Many new rows straight to the driver, for bulk imports.

SQLAlchemy's executemany builds a parameter dictionary per row and passes every value through its column
type's bind processor; on a 100,000-row import that bookkeeping cost about as much as the database's own
work (profiles in bench/JOURNAL.md). Here the caller builds tuples already in the driver's form (``Driver``
converts the three types that differ) and they go to ``executemany`` on SQLite and to ``COPY`` on
PostgreSQL. No library offers this conversion-free path across both drivers, hence these few lines.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# SQLAlchemy's storage format for DateTime on SQLite (always with microseconds), so rows written here read
# back exactly like rows written through the ORM.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


class Driver:
    """Values in the form the session's driver stores them, as SQLAlchemy's column types would send them."""

    def __init__(self, session: Session) -> None:
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def uid(self, value: uuid.UUID | None) -> Any:
        """``Uuid``: 32 hex digits on SQLite, native on PostgreSQL."""
        if value is None or not self.sqlite:
            return value
        return value.hex

    def when(self, value: dt.datetime) -> Any:
        """``DateTime`` (naive UTC): SQLAlchemy's text format on SQLite, native on PostgreSQL."""
        return value.strftime(SQLITE_DATETIME) if self.sqlite else value

    def flag(self, value: bool) -> Any:
        """``Boolean``: 0/1 on SQLite, native on PostgreSQL."""
        return int(value) if self.sqlite else value


def insert_many(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, values from ``Driver``) in the session's transaction.

    Column defaults of the model are not applied: give every column that has no server default. Driver
    errors are raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``...), like any other write.
    """
    if not rows:
        return
    conn = session.connection()
    driver = conn.connection.driver_connection
    names = ", ".join(table.c[c].name for c in columns)  # unknown columns fail here, before any SQL
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        statement = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
    else:
        statement = f"COPY {table.name} ({names}) FROM STDIN"
    try:
        if sqlite:
            driver.executemany(statement, rows)  # type: ignore[union-attr]
            return
        with driver.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            statement, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect, ismulti=True
        ) from exc
