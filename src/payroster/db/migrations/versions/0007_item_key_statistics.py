"""PostgreSQL: statistics that tell the planner a tag's or alias's key follows from its value

The OData feed compares a tag or alias by its value and adds what that implies of its stored key
(``value_key = key(value)``), so the table's key index finds the item. Without these statistics PostgreSQL takes
the two conditions for independent, expects far too few matches and sorts them all instead of walking the
ordered index (odata/compiler.py). They are built by ``ANALYZE``, as autovacuum runs it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (statistics object, table); SQLite has no extended statistics and needs none (its planner keeps the index).
STATISTICS = (("st_user_tags_value_key", "user_tags"), ("st_user_aliases_value_key", "user_aliases"))


def _schema_of(table: str) -> str:
    """The schema the table is in: an unqualified statistics object would go to the first schema of the search
    path, which need not be the table's."""
    found = op.get_bind().execute(
        sa.text("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )
    return str(found.scalar_one())


def upgrade() -> None:
    """Apply this revision (PostgreSQL only)."""
    if op.get_bind().dialect.name == "postgresql":
        for name, table in STATISTICS:
            qualified = f"{_schema_of(table)}.{name}"
            op.execute(f"CREATE STATISTICS IF NOT EXISTS {qualified} (dependencies) ON value, value_key FROM {table}")
            op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        for name, table in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {_schema_of(table)}.{name}")
