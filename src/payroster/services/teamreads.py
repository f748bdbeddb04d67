"""The read queries of the teams' pages (Teams > All Teams, Teams > Hierarchy, a team's Members tab): each
confined to one workspace by the scoping primitives, so the pages build no statement themselves."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payroster.db.models import MembershipPeriod, Team, TeamMember, TeamPeriod, User
from payroster.services import listings, teamtree
from payroster.services.reads import person_name
from payroster.services.scoping import in_workspace
from payroster.services.timelines import in_force

MEMBERS_SHOWN = 10  # the first members the hierarchy shows per team


def page(session: Session, ws: uuid.UUID, q: str, number: int, size: int) -> tuple[list[Team], int]:
    """Page ``number`` (from 1) of ``size`` teams whose name matches ``q``, in name order, and their total."""
    stmt = select(Team).where(*listings.team_conditions(ws, q))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(stmt.order_by(Team.name_key).limit(size).offset((number - 1) * size)))
    return rows, total


def member_counts(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many members each of these teams has today (teams without members are left out)."""
    if not ids:
        return {}
    stmt = (
        select(TeamMember.team_id, func.count())
        .where(in_workspace(TeamMember, ws), TeamMember.team_id.in_(ids))
        .group_by(TeamMember.team_id)
    )
    return {tid: n for tid, n in session.execute(stmt)}


def all_teams(session: Session, ws: uuid.UUID) -> list[Team]:
    """Every team of the workspace, in name order (teams are few next to users)."""
    return list(session.scalars(select(Team).where(in_workspace(Team, ws)).order_by(Team.name_key)))


def parents_on(session: Session, ws: uuid.UUID, day: dt.date) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each team's parent as it stood on ``day`` (teams without a period in force that day are left out)."""
    tp = TeamPeriod
    held = session.execute(select(tp.team_id, tp.parent_team_id).where(in_workspace(tp, ws), in_force(tp, day)))
    return {tid: parent for tid, parent in held}


def first_members(
    session: Session, ws: uuid.UUID, day: dt.date | None = None
) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """Each team's first members by name, today or on ``day`` (at most :data:`MEMBERS_SHOWN` per team, numbered
    in SQL)."""
    pairs = teamtree.pairs(ws, day)
    rank = (
        func.row_number()
        .over(partition_by=pairs.c.team_id, order_by=(User.last_name, User.first_name, User.email_key))
        .label("rank")
    )
    inner = (
        select(pairs.c.team_id, User.id, User.email, User.first_name, User.last_name, rank)
        .join(User, in_workspace(User, ws) & (User.id == pairs.c.user_id))
        .subquery()
    )
    rows = session.execute(select(inner).where(inner.c.rank <= MEMBERS_SHOWN).order_by(inner.c.team_id, inner.c.rank))
    out: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    for team_id, uid, email, first, last, _ in rows:
        out[team_id].append((uid, person_name(first, last, email)))
    return out


def _by_name(stmt: Any, number: int, size: int) -> Any:
    """The Members tab's order (last name, first name, e-mail; names left out last) and page."""
    ordered = stmt.order_by(User.last_name.asc().nulls_last(), User.first_name.asc().nulls_last(), User.email_key)
    return ordered.limit(size).offset((number - 1) * size)


def members(session: Session, ws: uuid.UUID, team_id: uuid.UUID, number: int, size: int) -> tuple[list[User], int]:
    """Page ``number`` of the team's members today, by name, and their total."""
    stmt = (
        select(User)
        .join(TeamMember, (TeamMember.workspace_id == User.workspace_id) & (TeamMember.user_id == User.id))
        .where(in_workspace(TeamMember, ws), TeamMember.team_id == team_id)
    )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(session.scalars(_by_name(stmt, number, size))), total


def members_on(
    session: Session, ws: uuid.UUID, team_id: uuid.UUID, day: dt.date, number: int, size: int
) -> tuple[list[tuple[User, dt.date, dt.date | None]], int]:
    """Page ``number`` of the team's members on ``day`` with their membership's period, by name, and their
    total."""
    m = MembershipPeriod
    dated = (
        select(User, m.valid_from, m.valid_to)
        .join(m, (m.workspace_id == User.workspace_id) & (m.user_id == User.id))
        .where(in_workspace(m, ws), m.team_id == team_id, in_force(m, day))
    )
    total = session.scalar(select(func.count()).select_from(dated.subquery())) or 0
    found = session.execute(_by_name(dated, number, size)).all()
    return [(user, start, end) for user, start, end in found], total


def member_stamps(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, str]]:
    """Each of these teams' member count and latest membership's creation, as text (what a SCIM Group's
    version is made of; teams without members are left out)."""
    stmt = (
        select(TeamMember.team_id, func.count(), func.max(TeamMember.created_at))
        .where(in_workspace(TeamMember, ws), TeamMember.team_id.in_(ids))
        .group_by(TeamMember.team_id)
    )
    return {team_id: (count, str(latest)) for team_id, count, latest in session.execute(stmt)}


def visible_members(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``(team, user)`` of these teams' members SCIM sees (not hidden by a SCIM DELETE), by team then user."""
    stmt = (
        select(TeamMember.team_id, User.id)
        .join(User, (User.workspace_id == TeamMember.workspace_id) & (User.id == TeamMember.user_id))
        .where(in_workspace(TeamMember, ws), TeamMember.team_id.in_(ids), User.scim_hidden.is_(False))
        .order_by(TeamMember.team_id, User.id)
    )
    return [(team_id, user_id) for team_id, user_id in session.execute(stmt)]


def visible_member_ids(session: Session, ws: uuid.UUID, team_id: uuid.UUID) -> set[uuid.UUID]:
    """The ids of the team's members SCIM sees (not hidden by a SCIM DELETE)."""
    stmt = (
        select(TeamMember.user_id)
        .join(User, (User.workspace_id == TeamMember.workspace_id) & (User.id == TeamMember.user_id))
        .where(in_workspace(TeamMember, ws), TeamMember.team_id == team_id, in_workspace(User, ws))
        .where(User.scim_hidden.is_(False))
    )
    return set(session.scalars(stmt))
