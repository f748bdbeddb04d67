"""Alembic environment: runs on the connection PayRoster hands it (no URL in alembic.ini)."""

from __future__ import annotations

from alembic import context

from payroster.db.migrate import on_this_database
from payroster.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through payroster.db.migrate (payroster db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
    include_object=on_this_database(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
