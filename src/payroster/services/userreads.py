"""The read queries of the users' pages (Users > All Users, a person's pages): each confined to one workspace by
the scoping primitives, so the pages build no statement themselves."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Uuid, cast, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from payroster.db.models import Team, TeamMember, User, UserAlias, UserTag
from payroster.services import listings, users
from payroster.services.scoping import in_workspace

SORTS = ("name", "email", "role")


def _order(sort: str, direction: str) -> list[Any]:
    """The list's ORDER BY: the chosen column first, then name and e-mail so that pages are stable."""
    name = [User.last_name, User.first_name]
    columns: list[Any] = {"name": name, "email": [], "role": [User.role, *name]}[sort]
    desc = direction == "desc"
    ordered = [(c.desc() if desc else c.asc()).nulls_last() for c in columns]
    return [*ordered, User.email_key.desc() if desc else User.email_key, User.id]


def search(
    session: Session,
    ws: uuid.UUID,
    q: str,
    status: str,
    role: str,
    page: int,
    size: int,
    sort: str = "name",
    direction: str = "asc",
) -> tuple[list[User], int, dict[uuid.UUID, list[str]], dict[uuid.UUID, list[str]]]:
    """Page ``page`` (from 1) of ``size`` users (``sort``: one of :data:`SORTS`), their total, and the page's tags
    and aliases: four queries, whatever the size."""
    stmt = select(User).where(*listings.user_conditions(ws, q, status, role))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    ordered = stmt.order_by(*_order(sort, direction))
    rows = list(session.scalars(ordered.limit(size).offset((page - 1) * size)))
    ids = [u.id for u in rows]
    items: list[dict[uuid.UUID, list[str]]] = []
    for model in (UserTag, UserAlias):
        found: dict[uuid.UUID, list[str]] = defaultdict(list)
        if ids:
            for uid, value in session.execute(
                select(model.user_id, model.value)
                .where(in_workspace(model, ws), model.user_id.in_(ids))
                .order_by(model.user_id, model.position)
            ):
                found[uid].append(value)
        items.append(found)
    return rows, total, items[0], items[1]


def membership_count(session: Session, ws: uuid.UUID, user_id: uuid.UUID) -> int:
    """How many teams the person is a member of today."""
    stmt = select(func.count()).where(in_workspace(TeamMember, ws), TeamMember.user_id == user_id)
    return session.scalar(stmt) or 0


def _lists_query() -> Any:
    """``(kind, user, value, position, team)`` of a page of users: tags and aliases by position, then teams
    by name (``kind`` is ``tags``, ``aliases`` or ``groups``), one statement built once: every SCIM User
    read runs it, and as two statements it was a measurable share of a lookup."""
    ws, uids = users.item_params()
    parts: list[Any] = [*users.item_selects(ws, uids, cast(null(), Uuid).label("team"))]
    parts.append(
        select(literal("groups"), TeamMember.user_id, Team.name, literal(0), Team.id)
        .join(Team, (Team.workspace_id == TeamMember.workspace_id) & (Team.id == TeamMember.team_id))
        .where(in_workspace(TeamMember, ws), TeamMember.user_id.in_(uids))
    )
    lists = union_all(*parts).subquery()
    return select(lists).order_by(lists.c.kind, lists.c.user_id, lists.c.position, lists.c.value)


_LISTS = _lists_query()


def lists_and_teams(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> Iterator[Any]:
    """``(kind, user, value, position, team)`` rows of these users: their tags and aliases in position order,
    then their teams by name (``kind``: ``tags``, ``aliases`` or ``groups``; ``team`` the team's id)."""
    return iter(session.connection().execute(_LISTS, {"ws": ws, "uids": ids}))


def scim_hidden_among(session: Session, ws: uuid.UUID, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these users a SCIM DELETE hid."""
    stmt = select(User.id).where(in_workspace(User, ws), User.id.in_(set(ids)), User.scim_hidden)
    return set(session.scalars(stmt))
