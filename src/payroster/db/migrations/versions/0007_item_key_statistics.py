"""PostgreSQL: statistics that tell the planner a tag's or alias's key follows from its value

The OData feed compares a tag or alias by its value and adds what that implies of its stored key
(``value_key = key(value)``), so the (workspace, user, key) index finds the item. Without these statistics
PostgreSQL takes the two conditions for independent, expects far too few matches and sorts them all instead of
walking the ordered index (odata/compiler.py). They are built by ``ANALYZE``, as autovacuum runs it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (statistics object, table); SQLite has no extended statistics and needs none (its planner keeps the index).
STATISTICS = (("st_user_tags_value_key", "user_tags"), ("st_user_aliases_value_key", "user_aliases"))


def upgrade() -> None:
    """Apply this revision (PostgreSQL only)."""
    if op.get_bind().dialect.name == "postgresql":
        for name, table in STATISTICS:
            op.execute(f"CREATE STATISTICS {name} (dependencies) ON value, value_key FROM {table}")
            op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        for name, _ in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
