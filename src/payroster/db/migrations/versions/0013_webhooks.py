"""Webhooks: endpoints (secret sealed, position in the change feed, retry state, lease), their delivery log and
the messages asked for by hand (README.md, "Webhooks"; docs/architecture.md "Webhook delivery")

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ENDPOINT = (["workspace_id", "endpoint_id"], ["webhook_endpoints.workspace_id", "webhook_endpoints.id"])


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "webhook_endpoints",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("previous_secret_sealed", sa.Text(), nullable=True),
        sa.Column("previous_until", sa.DateTime(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_webhook_endpoints_workspace_id_workspaces"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_webhook_endpoints"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(512), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            *_ENDPOINT, ondelete="CASCADE", name="fk_webhook_attempts_workspace_id_endpoint_id_webhook_endpoints"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_webhook_attempts"),
    )
    op.create_index(
        "ix_webhook_attempts_workspace_id_endpoint_id_id", "webhook_attempts", ["workspace_id", "endpoint_id", "id"]
    )
    op.create_table(
        "webhook_sends",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            *_ENDPOINT, ondelete="CASCADE", name="fk_webhook_sends_workspace_id_endpoint_id_webhook_endpoints"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_webhook_sends"),
    )
    op.create_index(
        "ix_webhook_sends_workspace_id_endpoint_id_id", "webhook_sends", ["workspace_id", "endpoint_id", "id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("webhook_sends")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_endpoints")
