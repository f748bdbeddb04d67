"""OData order: a PostgreSQL index on users' last name with nulls first, as the feed sorts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = "ix_users_workspace_id_last_name_nulls_first"


def upgrade() -> None:
    """Apply this revision (PostgreSQL only: SQLite's indexes already hold nulls first)."""
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(NAME, "users", ["workspace_id", sa.text("last_name NULLS FIRST"), "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(NAME, table_name="users")
