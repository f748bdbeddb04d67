"""The change feed: audit events carry a per-workspace sequence number, and each workspace its counter

Existing events are numbered in the order they were written (occurred time, then id), and each workspace's
counter starts after its last one. Events written later are numbered when the feed first reads them
(services/changes.py, docs/architecture.md "The change feed").

Revision ID: 0008_change_feed
Revises: 0007
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_change_feed"
down_revision = "0007"
branch_labels = None
depends_on = None

UNNUMBERED = sa.text("sequence IS NULL")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("sequence", sa.BigInteger(), nullable=True))
    # UPDATE ... FROM: PostgreSQL, and SQLite since 3.33 (Python 3.11 ships later ones).
    op.execute(
        "UPDATE audit_events SET sequence = numbered.n FROM ("
        " SELECT workspace_id AS w, id AS i,"
        " row_number() OVER (PARTITION BY workspace_id ORDER BY occurred_at, id) AS n FROM audit_events"
        ") AS numbered WHERE audit_events.workspace_id = numbered.w AND audit_events.id = numbered.i"
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.create_unique_constraint("uq_audit_events_workspace_id_sequence", ["workspace_id", "sequence"])
    op.create_index(
        "ix_audit_events_unnumbered",
        "audit_events",
        ["workspace_id", "occurred_at", "id"],
        sqlite_where=UNNUMBERED,
        postgresql_where=UNNUMBERED,
    )
    op.create_table(
        "change_sequences",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name="fk_change_sequences_workspace_id_workspaces"
        ),
        sa.PrimaryKeyConstraint("workspace_id", name="pk_change_sequences"),
    )
    op.execute(
        "INSERT INTO change_sequences (workspace_id, last_sequence, pruned_through)"
        " SELECT id, COALESCE((SELECT max(sequence) FROM audit_events WHERE workspace_id = workspaces.id), 0), 0"
        " FROM workspaces"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("change_sequences")
    op.drop_index("ix_audit_events_unnumbered", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_workspace_id_sequence", type_="unique")
        batch.drop_column("sequence")
