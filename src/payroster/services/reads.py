"""Read queries the doors share (the pages, SCIM, the command line): each confined to one workspace by the
scoping primitives, so no door compares ``workspace_id`` itself (tests/unit/test_scoping_rule.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from payroster.db.models import Team, User, Workspace
from payroster.services.scoping import scoped, within


def workspace_slug(session: Session, workspace_id: uuid.UUID) -> str:
    """The slug of the workspace (it exists: the caller holds one of its rows)."""
    return session.scalars(select(Workspace.slug).where(Workspace.id == workspace_id)).one()


def user_or_none(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    """The user with that id in the workspace, or None."""
    return session.scalars(scoped(User, workspace_id).where(User.id == user_id)).first()


def team_names(session: Session, workspace_id: uuid.UUID, limit: int) -> list[str]:
    """The first ``limit`` team names of the workspace, in name order (the pages' suggestions)."""
    return list(session.scalars(within(workspace_id, Team, Team.name).order_by(Team.name_key).limit(limit)))


def labels(session: Session, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[str, str]:
    """How a page names these people and teams, by id as text: a person's name (its e-mail when it has none), a
    team's name. Two queries, whatever the number of ids."""
    wanted = set(ids)
    if not wanted:
        return {}
    found: dict[str, str] = {}
    people = within(workspace_id, User, User.id, User.first_name, User.last_name, User.email)
    for uid, first, last, email in session.execute(people.where(User.id.in_(wanted))):
        found[str(uid)] = " ".join(p for p in (first, last) if p) or email
    for tid, name in session.execute(within(workspace_id, Team, Team.id, Team.name).where(Team.id.in_(wanted))):
        found[str(tid)] = name
    return found
