"""Team memberships: a duplicate add and a missing remove are silent no-ops."""

from __future__ import annotations

import uuid

from sqlalchemy import delete
from sqlalchemy.orm import Session

from payroster.db.models import TeamMember, utcnow
from payroster.domain.errors import NotFound
from payroster.services import audit, teams, users
from payroster.services.context import Actor
from payroster.services.scoping import insert_ignoring_conflicts


def _exists(session: Session, ws: uuid.UUID, user_id: uuid.UUID, team_id: uuid.UUID) -> None:
    """Both ends exist in the workspace; a 404 names the body field that is unknown."""
    try:
        users.get(session, ws, user_id)
    except NotFound:
        raise NotFound("no user with that systemUserId in this workspace", target="systemUserId") from None
    try:
        teams.get(session, ws, team_id)
    except NotFound:
        raise NotFound("no team with that teamId in this workspace", target="teamId") from None


def add(session: Session, actor: Actor, user_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """Add the user to the team; True when a membership was created."""
    ws = actor.workspace_id
    _exists(session, ws, user_id, team_id)
    stmt = insert_ignoring_conflicts(session, TeamMember).values(
        workspace_id=ws, team_id=team_id, user_id=user_id, created_at=utcnow()
    )
    created = session.execute(stmt.returning(TeamMember.user_id)).first() is not None
    if created:
        audit.record(
            session,
            actor,
            "membership.added",
            "membership",
            team_id,
            [
                {"field": "teamId", "before": None, "after": str(team_id)},
                {"field": "systemUserId", "before": None, "after": str(user_id)},
            ],
        )
    return created


def remove(session: Session, actor: Actor, user_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """Remove the user from the team; True when a membership was deleted."""
    ws = actor.workspace_id
    _exists(session, ws, user_id, team_id)
    result = session.execute(
        delete(TeamMember)
        .returning(TeamMember.user_id)
        .where(TeamMember.workspace_id == ws, TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )
    deleted = result.first() is not None
    if deleted:
        audit.record(
            session,
            actor,
            "membership.removed",
            "membership",
            team_id,
            [
                {"field": "teamId", "before": str(team_id), "after": None},
                {"field": "systemUserId", "before": str(user_id), "after": None},
            ],
        )
    return deleted
