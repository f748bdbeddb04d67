"""OpenID Connect sign-in: providers of a workspace, the subjects they vouch for, sign-in rules, attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PROVIDER = (["workspace_id", "provider_id"], ["sso_providers.workspace_id", "sso_providers.id"])


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sso_providers",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("issuer", sa.String(length=2048), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(length=1024), nullable=False),
        sa.Column("trust_unverified_email", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_sso_providers_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_sso_providers")),
    )
    op.create_table(
        "sso_settings",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("require_sso", sa.Boolean(), nullable=False),
        sa.Column("create_users", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_sso_settings_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_sso_settings")),
    )
    op.create_table(
        "sso_attempts",
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("return_to", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            *_PROVIDER, name=op.f("fk_sso_attempts_workspace_id_provider_id_sso_providers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("state_digest", name=op.f("pk_sso_attempts")),
    )
    op.create_index("ix_sso_attempts_expires_at", "sso_attempts", ["expires_at"], unique=False)
    op.create_table(
        "sso_break_glass",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_sso_break_glass_workspace_id_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name=op.f("pk_sso_break_glass")),
    )
    op.create_table(
        "sso_domains",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("domain_key", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            *_PROVIDER, name=op.f("fk_sso_domains_workspace_id_provider_id_sso_providers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "provider_id", "domain_key", name=op.f("pk_sso_domains")),
    )
    op.create_index("ix_sso_domains_domain_key", "sso_domains", ["domain_key"], unique=False)
    op.create_table(
        "sso_identities",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            *_PROVIDER, name=op.f("fk_sso_identities_workspace_id_provider_id_sso_providers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_sso_identities_workspace_id_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "provider_id", "subject", name=op.f("pk_sso_identities")),
        sa.UniqueConstraint(
            "workspace_id", "provider_id", "user_id", name=op.f("uq_sso_identities_workspace_id_provider_id_user_id")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("sso_identities")
    op.drop_index("ix_sso_domains_domain_key", table_name="sso_domains")
    op.drop_table("sso_domains")
    op.drop_table("sso_break_glass")
    op.drop_index("ix_sso_attempts_expires_at", table_name="sso_attempts")
    op.drop_table("sso_attempts")
    op.drop_table("sso_settings")
    op.drop_table("sso_providers")
