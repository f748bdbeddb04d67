"""Teams: upsert by name, manager and parent validation, cycle-free hierarchy, rename, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from payroster.db.models import CustomVariable, Team, TeamMember, User, utcnow
from payroster.domain import normalize
from payroster.domain.errors import Conflict, Detail, Invalid
from payroster.ids import new_id
from payroster.services import audit
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, TeamInput
from payroster.services.scoping import chain_contains, get_scoped, insert_ignoring_conflicts, scoped

FLAG_COLUMNS = {
    "managerCanViewResults": "manager_can_view_results",
    "managerCanViewCredits": "manager_can_view_credits",
    "membersCanViewCredits": "members_can_view_credits",
}


def snapshot(team: Team) -> dict[str, Any]:
    """The audited fields, in wire names."""
    return {
        "name": team.name,
        "description": team.description,
        "managerId": str(team.manager_id) if team.manager_id else None,
        "parentTeamId": str(team.parent_team_id) if team.parent_team_id else None,
        **{wire: getattr(team, col) for wire, col in FLAG_COLUMNS.items()},
        "externalId": team.external_id,
    }


def get(session: Session, workspace_id: uuid.UUID, team_id: uuid.UUID | None, lock: bool = False) -> Team:
    """The team with that id in the workspace, or NotFound."""
    return get_scoped(session, Team, workspace_id, team_id, "team", lock=lock)


def find_by_name(session: Session, workspace_id: uuid.UUID, name: str, lock: bool = False) -> Team | None:
    """The team whose normalised name matches, or None."""
    stmt = scoped(Team, workspace_id).where(Team.name_key == normalize.key(name))
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def upsert(session: Session, actor: Actor, inp: TeamInput) -> tuple[Team, bool]:
    """Create or update the team by name. Returns (team, created)."""
    ws = actor.workspace_id
    team = find_by_name(session, ws, inp.name, lock=True)
    created = False
    if team is None:
        now = utcnow()
        stmt = insert_ignoring_conflicts(session, Team).values(
            workspace_id=ws,
            id=new_id(),
            name=inp.name,
            name_key=normalize.key(inp.name),
            manager_can_view_results=False,
            manager_can_view_credits=False,
            members_can_view_credits=False,
            created_at=now,
            updated_at=now,
        )
        created = session.execute(stmt.returning(Team.id)).first() is not None
        team = find_by_name(session, ws, inp.name, lock=True)
        assert team is not None
    before = snapshot(team)
    _apply(session, team, inp)
    after = snapshot(team)
    changes = (
        [{"field": f, "before": None, "after": v} for f, v in after.items()] if created else (audit.diff(before, after))
    )
    if created or changes:
        team.updated_at = utcnow()
        audit.record(session, actor, "team.created" if created else "team.updated", "team", team.id, changes)
    session.flush()
    return team, created


def patch(session: Session, actor: Actor, team_id: uuid.UUID | None, inp: TeamInput) -> Team:
    """Change a team by id, including its name."""
    team = get(session, actor.workspace_id, team_id, lock=True)
    before = snapshot(team)
    if inp.name is not UNSET and normalize.key(inp.name) != team.name_key:
        if find_by_name(session, actor.workspace_id, inp.name) is not None:
            raise Conflict(f"team name '{inp.name}' is taken", target="name", scim_type="uniqueness")
        team.name_key = normalize.key(inp.name)
    if inp.name is not UNSET:
        team.name = inp.name
    _apply(session, team, inp)
    changes = audit.diff(before, snapshot(team))
    if changes:
        team.updated_at = utcnow()
        audit.record(session, actor, "team.updated", "team", team.id, changes)
    session.flush()
    return team


def delete_team(session: Session, actor: Actor, team_id: uuid.UUID | None) -> None:
    """Delete a team: children move up to its parent; its memberships and variables go; users stay."""
    ws = actor.workspace_id
    team = get(session, ws, team_id, lock=True)
    children = session.scalars(scoped(Team, ws).where(Team.parent_team_id == team.id)).all()
    members = session.scalars(
        select(TeamMember.user_id).where(TeamMember.workspace_id == ws, TeamMember.team_id == team.id)
    ).all()
    parent = str(team.parent_team_id) if team.parent_team_id else None
    session.execute(
        update(Team)
        .where(Team.workspace_id == ws, Team.parent_team_id == team.id)
        .values(parent_team_id=team.parent_team_id, updated_at=utcnow())
    )
    session.execute(delete(TeamMember).where(TeamMember.workspace_id == ws, TeamMember.team_id == team.id))
    session.execute(
        delete(CustomVariable).where(CustomVariable.workspace_id == ws, CustomVariable.target_id == team.id)
    )
    events = [
        audit.event_row(
            actor, "team.updated", "team", c.id, [{"field": "parentTeamId", "before": str(team.id), "after": parent}]
        )
        for c in children
    ]
    events += [
        audit.event_row(
            actor,
            "membership.removed",
            "membership",
            team.id,
            [{"field": "systemUserId", "before": str(u), "after": None}],
        )
        for u in members
    ]
    events.append(
        audit.event_row(
            actor,
            "team.deleted",
            "team",
            team.id,
            [{"field": f, "before": v, "after": None} for f, v in snapshot(team).items()],
        )
    )
    session.delete(team)
    session.flush()
    audit.record_many(session, events)


def _apply(session: Session, team: Team, inp: TeamInput) -> None:
    if inp.description is not UNSET:
        team.description = inp.description
    if inp.manager_id is not UNSET:
        if (
            inp.manager_id is not None
            and session.scalar(
                scoped(User, team.workspace_id).where(User.id == inp.manager_id).with_only_columns(User.id)
            )
            is None
        ):
            raise Invalid(
                "managerId is not a user of this workspace",
                target="managerId",
                details=[Detail("unknownId", "no such user", "managerId")],
            )
        team.manager_id = inp.manager_id
    if inp.parent_team_id is not UNSET:
        _set_parent(session, team, inp.parent_team_id)
    for wire, value in inp.flags.items():
        setattr(team, FLAG_COLUMNS[wire], value)
    if inp.external_id is not UNSET:
        team.external_id = inp.external_id


def _set_parent(session: Session, team: Team, parent_id: uuid.UUID | None) -> None:
    if parent_id is not None:
        parent = session.scalar(scoped(Team, team.workspace_id).where(Team.id == parent_id).with_only_columns(Team.id))
        if parent is None:
            raise Invalid(
                "parentTeamId is not a team of this workspace",
                target="parentTeamId",
                details=[Detail("unknownId", "no such team", "parentTeamId")],
            )
        if chain_contains(session, Team, "parent_team_id", team.workspace_id, parent_id, team.id):
            raise Conflict(
                "parentTeamId would create a cycle in the team hierarchy", target="parentTeamId", code="cycle"
            )
    team.parent_team_id = parent_id
