"""Read queries the doors share (the pages, SCIM, the command line): each confined to one workspace by the
scoping primitives, so no door compares ``workspace_id`` itself (tests/unit/test_scoping_rule.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payroster.db.models import Team, User, Workspace
from payroster.services.scoping import scoped, within
from payroster.services.userkernel import chunks


def workspace_slug(session: Session, workspace_id: uuid.UUID) -> str:
    """The slug of the workspace (it exists: the caller holds one of its rows)."""
    return session.scalars(select(Workspace.slug).where(Workspace.id == workspace_id)).one()


def user_or_none(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    """The user with that id in the workspace, or None."""
    return session.scalars(scoped(User, workspace_id).where(User.id == user_id)).first()


def team_names(session: Session, workspace_id: uuid.UUID, limit: int) -> list[str]:
    """The first ``limit`` team names of the workspace, in name order (the pages' suggestions)."""
    return list(session.scalars(within(workspace_id, Team, Team.name).order_by(Team.name_key).limit(limit)))


def person_name(first: str | None, last: str | None, email: str) -> str:
    """How a page names a person: first and last name, its e-mail when it has none."""
    return " ".join(p for p in (first, last) if p) or email


def people_names(session: Session, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """:func:`person_name` of these people of the workspace, by id (one query)."""
    wanted = set(ids)
    if not wanted:
        return {}
    people = within(workspace_id, User, User.id, User.first_name, User.last_name, User.email)
    return {
        uid: person_name(first, last, email)
        for uid, first, last, email in session.execute(people.where(User.id.in_(wanted)))
    }


def emails(session: Session, workspace_id: uuid.UUID, ids: Iterable[Any]) -> dict[Any, str]:
    """The e-mail of these people of the workspace, by id (one query; ``ids`` are user ids)."""
    wanted = set(ids)
    if not wanted:
        return {}
    found = session.execute(within(workspace_id, User, User.id, User.email).where(User.id.in_(wanted)))
    return {uid: email for uid, email in found}


def team_names_of(session: Session, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of these teams of the workspace, by id (one query)."""
    wanted = set(ids)
    if not wanted:
        return {}
    found = session.execute(within(workspace_id, Team, Team.id, Team.name).where(Team.id.in_(wanted)))
    return {tid: name for tid, name in found}


def workspace_names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of these workspaces, by id (the log-in page's choice between a person's workspaces)."""
    found = session.execute(select(Workspace.id, Workspace.name).where(Workspace.id.in_(list(ids))))
    return {wid: name for wid, name in found}


def default_scim_role(session: Session, workspace_id: uuid.UUID) -> str | None:
    """The role the workspace gives a user SCIM creates without naming one (None: the default)."""
    return session.scalar(select(Workspace.default_scim_role).where(Workspace.id == workspace_id))


def rows_where(session: Session, model: Any, conds: list[Any], order: list[Any], offset: int, limit: int) -> list[Any]:
    """Rows of ``model`` meeting ``conds`` (a door's compiled filter, confined to a workspace by the caller's
    ``scoping`` condition among them), in ``order``, ``limit`` of them after ``offset``."""
    return list(session.scalars(select(model).where(*conds).order_by(*order).offset(offset).limit(limit)))


def count_where(session: Session, model: Any, conds: list[Any]) -> int:
    """How many rows of ``model`` meet ``conds`` (as :func:`rows_where`)."""
    return int(session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


def labels(session: Session, workspace_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[str, str]:
    """How a page names these people and teams, by id as text: a person's name (its e-mail when it has none), a
    team's name. Two queries, whatever the number of ids."""
    wanted = set(ids)
    if not wanted:
        return {}
    found = {str(uid): name for uid, name in people_names(session, workspace_id, wanted).items()}
    return found | {str(tid): name for tid, name in team_names_of(session, workspace_id, wanted).items()}


def ids_by_key(session: Session, workspace_id: uuid.UUID, model: Any, keys: Iterable[str]) -> dict[str, uuid.UUID]:
    """The ids of the rows of ``model`` (users by normalised e-mail, teams by normalised name) that exist, by key,
    in chunked reads (the imports' and the bulk upsert's lookups of what a file names)."""
    column = model.email_key if model is User else model.name_key
    found: dict[str, uuid.UUID] = {}
    for part in chunks(list(keys)):
        stmt = within(workspace_id, model, column, model.id).where(column.in_(part))
        found.update((k, i) for k, i in session.execute(stmt))
    return found
