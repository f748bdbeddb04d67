"""OData order on SQLite: the last-name index ends with the id instead of the first name

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD = "ix_users_workspace_id_last_name"
NEW = "ix_users_workspace_id_last_name_id"


def upgrade() -> None:
    """Apply this revision (SQLite only: PostgreSQL has its own nulls-first index since 0004)."""
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(NEW, "users", ["workspace_id", "last_name", "id"], unique=False)
        op.drop_index(OLD, table_name="users")


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(OLD, "users", ["workspace_id", "last_name", "first_name"], unique=False)
        op.drop_index(NEW, table_name="users")
