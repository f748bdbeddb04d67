"""Teams > Hierarchy's figures: each team's manager and its member counts, direct and with every sub-team, today or
on a date, in one statement whatever the number of teams (a recursive walk of the parents in SQL, not a query per
team)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import FromClause, and_, case, distinct, func, select
from sqlalchemy.orm import Session

from payroster.db.models import MembershipPeriod, Team, TeamMember, TeamPeriod, User
from payroster.services.timelines import in_force


@dataclass(frozen=True)
class Figures:
    """One team's line in the tree: its manager (id and name) and how many people are in it, directly and with
    its sub-teams (a person in a team and one of its sub-teams counts once)."""

    manager_id: uuid.UUID | None
    manager: str | None
    direct: int
    total: int


def pairs(ws: uuid.UUID, day: dt.date | None) -> FromClause:
    """The (team, user) pairs of the workspace: today's, or those whose membership was in force on ``day``."""
    if day is None:
        return select(TeamMember.team_id, TeamMember.user_id).where(TeamMember.workspace_id == ws).subquery()
    m = MembershipPeriod
    return select(m.team_id, m.user_id).where(m.workspace_id == ws, in_force(m, day)).subquery()


def _links(ws: uuid.UUID, day: dt.date | None) -> FromClause:
    """Each team's manager and parent: today's, or as they stood on ``day``."""
    if day is None:
        return (
            select(Team.id.label("team_id"), Team.manager_id, Team.parent_team_id)
            .where(Team.workspace_id == ws)
            .subquery()
        )
    tp = TeamPeriod
    return (
        select(tp.team_id, tp.manager_id, tp.parent_team_id).where(tp.workspace_id == ws, in_force(tp, day)).subquery()
    )


def figures(session: Session, ws: uuid.UUID, day: dt.date | None = None) -> dict[uuid.UUID, Figures]:
    """Every team's manager and member counts (see :class:`Figures`), today or on ``day``, in one statement."""
    links = _links(ws, day)
    # Every (ancestor, descendant) pair of the tree, a team being its own descendant. UNION, not UNION ALL: the
    # hierarchy is kept cycle-free, and a loop slipped in anyway would end the walk rather than run for ever.
    tree = select(links.c.team_id.label("ancestor"), links.c.team_id.label("descendant")).cte("tree", recursive=True)
    tree = tree.union(select(tree.c.ancestor, links.c.team_id).join(links, links.c.parent_team_id == tree.c.descendant))
    members = pairs(ws, day)
    counts = (
        select(
            tree.c.ancestor.label("team_id"),
            func.count(distinct(case((members.c.team_id == tree.c.ancestor, members.c.user_id)))).label("direct"),
            func.count(distinct(members.c.user_id)).label("total"),
        )
        .join(members, members.c.team_id == tree.c.descendant)
        .group_by(tree.c.ancestor)
        .subquery()
    )
    stmt = (
        select(
            Team.id, links.c.manager_id, User.email, User.first_name, User.last_name, counts.c.direct, counts.c.total
        )
        .outerjoin(links, links.c.team_id == Team.id)
        .outerjoin(User, and_(User.workspace_id == Team.workspace_id, User.id == links.c.manager_id))
        .outerjoin(counts, counts.c.team_id == Team.id)
        .where(Team.workspace_id == ws)
    )
    out = {}
    for tid, manager_id, email, first, last, direct, total in session.execute(stmt):
        name = (" ".join(p for p in (first, last) if p) or email) if manager_id else None
        out[tid] = Figures(manager_id, name, direct or 0, total or 0)
    return out
