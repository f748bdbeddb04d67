"""Timelines: membership, manager and team periods, and the day the current values were made for

Every membership becomes a period from its creation date, every user's manager a period from the user's
creation date, every team's manager and parent a period from the team's creation date, all open-ended
(README.md, "Dates and timelines"): today's reads answer as before. The downgrade drops the periods; the
current values stay as they are.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

from payroster.ids import new_id

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 5000
_USER = (["workspace_id", "user_id"], ["users.workspace_id", "users.id"])
_MANAGER = (["workspace_id", "manager_id"], ["users.workspace_id", "users.id"])


def _table(name: str, *columns: sa.Column[Any], keys: Iterable[tuple[list[str], list[str], str]] = ()) -> None:
    op.create_table(
        name,
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *columns,
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f(f"fk_{name}_workspace_id_workspaces")),
        *(sa.ForeignKeyConstraint(local, remote, name=op.f(fk)) for local, remote, fk in keys),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("timeline_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("timeline_due", sa.Date(), nullable=True))
    _table(
        "membership_periods",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        keys=[(*_USER, "fk_membership_periods_workspace_id_user_id_users")],
    )
    _table(
        "manager_periods",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("manager_id", sa.Uuid(), nullable=False),
        keys=[
            (*_USER, "fk_manager_periods_workspace_id_user_id_users"),
            (*_MANAGER, "fk_manager_periods_workspace_id_manager_id_users"),
        ],
    )
    _table(
        "team_periods",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("manager_id", sa.Uuid(), nullable=True),
        sa.Column("parent_team_id", sa.Uuid(), nullable=True),
        keys=[(*_MANAGER, "fk_team_periods_workspace_id_manager_id_users")],
    )
    indexes = {
        "membership_periods": [
            ("ix_membership_periods_pair", ["workspace_id", "team_id", "user_id", "valid_from"]),
            ("ix_membership_periods_workspace_id_user_id", ["workspace_id", "user_id"]),
        ],
        "manager_periods": [
            ("ix_manager_periods_workspace_id_user_id_valid_from", ["workspace_id", "user_id", "valid_from"]),
            ("ix_manager_periods_workspace_id_manager_id", ["workspace_id", "manager_id"]),
        ],
        "team_periods": [
            ("ix_team_periods_workspace_id_team_id_valid_from", ["workspace_id", "team_id", "valid_from"]),
            ("ix_team_periods_workspace_id_parent_team_id", ["workspace_id", "parent_team_id"]),
        ],
    }
    for name, made in indexes.items():
        for column in ("valid_from", "valid_to"):
            made.append((f"ix_{name}_workspace_id_{column}", ["workspace_id", column]))
        for index, columns in made:
            op.create_index(index, name, columns)
    _copy_current_values()


def _copy_current_values() -> None:
    """The current memberships, managers and parents as open periods from their record's creation date."""
    bind = op.get_bind()

    def ids(*names: str) -> list[sa.ColumnClause[Any]]:
        return [sa.column(n, sa.Uuid()) for n in names]

    def dates() -> list[sa.ColumnClause[Any]]:
        return [sa.column("valid_from", sa.Date()), sa.column("valid_to", sa.Date())]

    at = sa.column("created_at", sa.DateTime())
    members = sa.table("team_members", *ids("workspace_id", "team_id", "user_id"), at)
    users = sa.table("users", *ids("workspace_id", "id", "direct_manager_id"), sa.column("created_at", sa.DateTime()))
    teams = sa.table("teams", *ids("workspace_id", "id", "manager_id", "parent_team_id"),
                     sa.column("created_at", sa.DateTime()))  # fmt: skip
    periods = {
        "membership_periods": sa.table("membership_periods", *ids("workspace_id", "id", "team_id", "user_id"),
                                       *dates(), sa.column("created_at", sa.DateTime())),
        "manager_periods": sa.table("manager_periods", *ids("workspace_id", "id", "user_id", "manager_id"), *dates()),
        "team_periods": sa.table("team_periods", *ids("workspace_id", "id", "team_id", "manager_id", "parent_team_id"),
                                 *dates()),
    }  # fmt: skip
    copies: list[tuple[str, Any, Callable[[Any], dict[str, Any]]]] = [
        (
            "membership_periods",
            sa.select(members.c.workspace_id, members.c.team_id, members.c.user_id, members.c.created_at),
            lambda r: {"workspace_id": r[0], "id": new_id(), "team_id": r[1], "user_id": r[2],
                       "valid_from": r[3].date(), "valid_to": None, "created_at": r[3]},
        ),
        (
            "manager_periods",
            sa.select(users.c.workspace_id, users.c.id, users.c.direct_manager_id, users.c.created_at).where(
                users.c.direct_manager_id.is_not(None)
            ),
            lambda r: {"workspace_id": r[0], "id": new_id(), "user_id": r[1], "manager_id": r[2],
                       "valid_from": r[3].date(), "valid_to": None},
        ),
        (
            "team_periods",
            sa.select(teams.c.workspace_id, teams.c.id, teams.c.manager_id, teams.c.parent_team_id,
                      teams.c.created_at).where(
                sa.or_(teams.c.manager_id.is_not(None), teams.c.parent_team_id.is_not(None))
            ),
            lambda r: {"workspace_id": r[0], "id": new_id(), "team_id": r[1], "manager_id": r[2],
                       "parent_team_id": r[3], "valid_from": r[4].date(), "valid_to": None},
        ),
    ]  # fmt: skip
    for name, query, make in copies:
        # Read in batches (a server-side cursor on PostgreSQL), each written before the next is read.
        result = bind.execute(query, execution_options={"yield_per": BATCH})
        for part in result.partitions():
            bind.execute(periods[name].insert(), [make(r) for r in part])


def downgrade() -> None:
    """Revert this revision."""
    for name in ("team_periods", "manager_periods", "membership_periods"):
        op.drop_table(name)
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("timeline_due")
        batch.drop_column("timeline_day")
