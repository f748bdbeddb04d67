"""SCIM: userName, displayName, externalId, emails and the hidden flag on users; externalId on teams

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_name", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("user_name_key", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("display_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("scim_emails", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("scim_hidden", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_unique_constraint(
            op.f("uq_users_workspace_id_user_name_key"), ["workspace_id", "user_name_key"]
        )
        batch_op.create_index("ix_users_workspace_id_external_id", ["workspace_id", "external_id"], unique=False)
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_column("external_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_workspace_id_external_id")
        batch_op.drop_constraint(op.f("uq_users_workspace_id_user_name_key"), type_="unique")
        batch_op.drop_column("scim_hidden")
        batch_op.drop_column("scim_emails")
        batch_op.drop_column("external_id")
        batch_op.drop_column("display_name")
        batch_op.drop_column("user_name_key")
        batch_op.drop_column("user_name")
