"""Team memberships: a duplicate add and a missing remove are silent no-ops."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from payroster.db.models import TeamMember, User, utcnow
from payroster.domain import normalize
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


def _event(actor: Actor, action: str, team_id: uuid.UUID, user_id: uuid.UUID, added: bool) -> dict[str, object]:
    ids = {"teamId": str(team_id), "systemUserId": str(user_id)}
    changes = [{"field": f, "before": None if added else v, "after": v if added else None} for f, v in ids.items()]
    return audit.event_row(actor, action, "membership", team_id, changes)


def add(session: Session, actor: Actor, user_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """Add the user to the team; True when a membership was created."""
    _exists(session, actor.workspace_id, user_id, team_id)
    return bool(add_many(session, actor, team_id, [user_id]))


def remove(session: Session, actor: Actor, user_id: uuid.UUID, team_id: uuid.UUID) -> bool:
    """Remove the user from the team; True when a membership was deleted."""
    _exists(session, actor.workspace_id, user_id, team_id)
    return bool(remove_many(session, actor, team_id, [user_id]))


def add_many(session: Session, actor: Actor, team_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> int:
    """Add several users of the workspace to a team in set-based statements; ids that are not users of the
    workspace and memberships that exist are skipped. Returns how many were created."""
    ws = actor.workspace_id
    created: list[uuid.UUID] = []
    for chunk in _chunks(sorted(set(user_ids))):
        known = select(User.id).where(User.workspace_id == ws, User.id.in_(chunk))
        now = utcnow()
        rows = [
            {"workspace_id": ws, "team_id": team_id, "user_id": uid, "created_at": now}
            for uid in session.scalars(known)
        ]
        if rows:
            stmt = insert_ignoring_conflicts(session, TeamMember).values(rows).returning(TeamMember.user_id)
            created += session.scalars(stmt).all()
    audit.record_many(session, (_event(actor, "membership.added", team_id, uid, True) for uid in created))
    return len(created)


def remove_many(session: Session, actor: Actor, team_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> int:
    """Remove several users from a team in set-based statements; missing memberships are skipped."""
    ws = actor.workspace_id
    deleted: list[uuid.UUID] = []
    for chunk in _chunks(sorted(set(user_ids))):
        stmt = (
            delete(TeamMember)
            .where(TeamMember.workspace_id == ws, TeamMember.team_id == team_id, TeamMember.user_id.in_(chunk))
            .returning(TeamMember.user_id)
        )
        deleted += session.scalars(stmt).all()
    audit.record_many(session, (_event(actor, "membership.removed", team_id, uid, False) for uid in deleted))
    return len(deleted)


def _chunks(ids: list[uuid.UUID], size: int = 500) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass
class AddedByEmail:
    """What adding a pasted list of addresses to a team did: how many joined, how many were members already,
    and each address not added with why."""

    added: int
    already: int
    refused: list[tuple[str, str]]


def add_by_emails(session: Session, actor: Actor, team_id: uuid.UUID, addresses: list[str]) -> AddedByEmail:
    """Add the people of the workspace these addresses name; a malformed or unknown address is listed with why,
    never a reason to add nobody (an admin pastes a list, some of it stale)."""
    malformed: dict[str, str] = {}
    keys: dict[str, str] = {}
    for address in addresses:
        problem = normalize.email_problem(address)
        if problem:
            malformed[address] = f"not an e-mail address ({problem})"
        else:
            keys.setdefault(normalize.email_key(address), address)
    found: dict[str, uuid.UUID] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        stmt = select(User.email_key, User.id).where(User.workspace_id == actor.workspace_id, User.email_key.in_(chunk))
        found.update((key, uid) for key, uid in session.execute(stmt))
    unknown = {keys[k] for k in keys if k not in found}
    refused = [
        (a, malformed.get(a) or "no person of this workspace has this e-mail")
        for a in addresses
        if a in malformed or a in unknown
    ]
    added = add_many(session, actor, team_id, list(found.values())) if found else 0
    return AddedByEmail(added, len(found) - added, refused)
