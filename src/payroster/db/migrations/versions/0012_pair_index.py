"""The membership periods' pair index holds ``valid_to``

Whether a pair's period is in force on a day is then read from the index alone; a team's members as of a day no
longer read every period of the team (bench/JOURNAL.md, "time travel's first pages, second round").

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 21:55:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NAME = "ix_membership_periods_pair"


def upgrade() -> None:
    op.drop_index(NAME, table_name="membership_periods")
    op.create_index(NAME, "membership_periods", ["workspace_id", "team_id", "user_id", "valid_from", "valid_to"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="membership_periods")
    op.create_index(NAME, "membership_periods", ["workspace_id", "team_id", "user_id", "valid_from"])
