"""initial schema: workspaces, users, tags, aliases, teams, members, variables, keys, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:49:02.211934
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("default_scim_role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("slug", name=op.f("uq_workspaces_slug")),
    )
    op.create_table(
        "audit_events",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_audit_events_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_workspace_id_occurred_at", ["workspace_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_audit_events_workspace_id_target_id", ["workspace_id", "target_id"], unique=False)

    op.create_table(
        "custom_variables",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_type", sa.String(length=10), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_key", sa.String(length=255), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=False),
        sa.Column("number_value", sa.Numeric(), nullable=True),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("end_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_custom_variables_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_custom_variables")),
    )
    with op.batch_alter_table("custom_variables", schema=None) as batch_op:
        batch_op.create_index(
            "ix_custom_variables_target", ["workspace_id", "target_id", "name_key", "start_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("direct_manager_id", sa.Uuid(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "direct_manager_id"],
            ["users.workspace_id", "users.id"],
            name="fk_users_direct_manager",
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_users_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_users")),
        sa.UniqueConstraint("workspace_id", "email_key", name=op.f("uq_users_workspace_id_email_key")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_workspace_id_last_name", ["workspace_id", "last_name", "first_name"], unique=False
        )

    op.create_table(
        "api_keys",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_api_keys_workspace_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_api_keys_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_workspace_id_user_id", ["workspace_id", "user_id"], unique=False)

    op.create_table(
        "teams",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("name_key", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("manager_id", sa.Uuid(), nullable=True),
        sa.Column("parent_team_id", sa.Uuid(), nullable=True),
        sa.Column("manager_can_view_results", sa.Boolean(), nullable=False),
        sa.Column("manager_can_view_credits", sa.Boolean(), nullable=False),
        sa.Column("members_can_view_credits", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "manager_id"], ["users.workspace_id", "users.id"], name="fk_teams_manager"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "parent_team_id"], ["teams.workspace_id", "teams.id"], name="fk_teams_parent"
        ),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_teams_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_teams")),
        sa.UniqueConstraint("workspace_id", "name_key", name=op.f("uq_teams_workspace_id_name_key")),
    )
    op.create_table(
        "user_aliases",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("value_key", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_user_aliases_workspace_id_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "value_key", name=op.f("pk_user_aliases")),
    )
    with op.batch_alter_table("user_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_user_aliases_workspace_id_user_id", ["workspace_id", "user_id"], unique=False)

    op.create_table(
        "user_tags",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("value_key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_user_tags_workspace_id_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", "value_key", name=op.f("pk_user_tags")),
    )
    with op.batch_alter_table("user_tags", schema=None) as batch_op:
        batch_op.create_index("ix_user_tags_workspace_id_value_key", ["workspace_id", "value_key"], unique=False)

    op.create_table(
        "team_members",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "team_id"],
            ["teams.workspace_id", "teams.id"],
            name=op.f("fk_team_members_workspace_id_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["users.workspace_id", "users.id"],
            name=op.f("fk_team_members_workspace_id_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "team_id", "user_id", name=op.f("pk_team_members")),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index("ix_team_members_workspace_id_user_id", ["workspace_id", "user_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_index("ix_team_members_workspace_id_user_id")

    op.drop_table("team_members")
    with op.batch_alter_table("user_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_user_tags_workspace_id_value_key")

    op.drop_table("user_tags")
    with op.batch_alter_table("user_aliases", schema=None) as batch_op:
        batch_op.drop_index("ix_user_aliases_workspace_id_user_id")

    op.drop_table("user_aliases")
    op.drop_table("teams")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_workspace_id_user_id")

    op.drop_table("api_keys")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_workspace_id_last_name")

    op.drop_table("users")
    with op.batch_alter_table("custom_variables", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_variables_target")

    op.drop_table("custom_variables")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_workspace_id_target_id")
        batch_op.drop_index("ix_audit_events_workspace_id_occurred_at")

    op.drop_table("audit_events")
    op.drop_table("workspaces")
