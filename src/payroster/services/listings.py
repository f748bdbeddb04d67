"""The list pages' searches and filters as SQL conditions, shared by the pages and the exports: "Export" on a
page and ``GET /api/v1/exports/...`` with the same parameters select the same rows (README.md, "Exports")."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import aliased

from payroster.db.models import AuditEvent, Team, User, UserAlias, UserTag
from payroster.domain import normalize

STATUSES = ("active", "deactivated", "all")


def user_conditions(ws: uuid.UUID, q: str = "", status: str = "active", role: str = "") -> list[ColumnElement[bool]]:
    """Users > All Users: ``q`` in the name, e-mail, a tag, an alias or the role; the status; the role."""
    conds: list[ColumnElement[bool]] = [User.workspace_id == ws]
    if status == "active":
        conds.append(User.active.is_(True))
    elif status == "deactivated":
        conds.append(User.active.is_(False))
    if role in normalize.ROLES:
        conds.append(User.role == role)
    if q.strip():
        key = normalize.key(q)
        matches: list[Any] = [
            *(User.email_key.contains(part, autoescape=True) for part in normalize.email_fragments(q)),
            func.lower(User.first_name).contains(key, autoescape=True),
            func.lower(User.last_name).contains(key, autoescape=True),
            func.lower(func.coalesce(User.first_name, "") + " " + func.coalesce(User.last_name, "")).contains(
                key, autoescape=True
            ),
        ]
        for model in (UserTag, UserAlias):
            matches.append(
                exists().where(
                    model.workspace_id == User.workspace_id,
                    model.user_id == User.id,
                    model.value_key.contains(key, autoescape=True),
                )
            )
        named = normalize.parse_role(q.strip())
        if named in normalize.ROLES:
            matches.append(User.role == named)
        elif named == normalize.DEACTIVATED:
            matches.append(User.active.is_(False))
        conds.append(or_(*matches))
    return conds


def team_conditions(ws: uuid.UUID, q: str = "") -> list[ColumnElement[bool]]:
    """Teams > All Teams: ``q`` in the team's name."""
    conds: list[ColumnElement[bool]] = [Team.workspace_id == ws]
    if q.strip():
        conds.append(Team.name_key.contains(normalize.key(q), autoescape=True))
    return conds


@dataclass
class EventFilter:
    """The Activity Log's filters (all optional)."""

    actor: str = ""
    action: str = ""
    target: str = ""
    since: str = ""
    until: str = ""

    def problems(self) -> list[str]:
        """Dates that are not ``YYYY-MM-DD``."""
        out = []
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    out.append(f"{name} must be a date like 2026-01-31")
        return out


def events_query(
    workspace_id: uuid.UUID, flt: EventFilter | None = None, target_id: uuid.UUID | None = None
) -> Select[Any]:
    """Audit events newest first, with the actor's e-mail, filtered in SQL."""
    actor = aliased(User)
    stmt: Any = (
        select(AuditEvent, actor.email)
        .outerjoin(actor, (actor.workspace_id == AuditEvent.workspace_id) & (actor.id == AuditEvent.actor_user_id))
        .where(AuditEvent.workspace_id == workspace_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    if target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == target_id)
    if flt is not None:
        if flt.actor.strip():
            parts = normalize.email_fragments(flt.actor)
            stmt = stmt.where(or_(*(actor.email_key.contains(part, autoescape=True) for part in parts)))
        if flt.action.strip():
            stmt = stmt.where(AuditEvent.action.contains(flt.action.strip(), autoescape=True))
        if flt.target.strip():
            target = flt.target.strip()
            try:
                stmt = stmt.where(AuditEvent.target_id == uuid.UUID(target))
            except ValueError:
                # A name or e-mail: the users and teams it matches.
                parts = normalize.email_fragments(target)
                users = select(User.id).where(
                    User.workspace_id == workspace_id,
                    or_(*(User.email_key.contains(part, autoescape=True) for part in parts)),
                )
                teams = select(Team.id).where(
                    Team.workspace_id == workspace_id, Team.name_key.contains(normalize.key(target), autoescape=True)
                )
                stmt = stmt.where(AuditEvent.target_id.in_(users.union(teams)))
        if not flt.problems():
            if flt.since:
                stmt = stmt.where(AuditEvent.occurred_at >= dt.datetime.fromisoformat(flt.since))
            if flt.until and (until := dt.date.fromisoformat(flt.until)) < dt.date.max:  # 9999-12-31: no bound
                stmt = stmt.where(AuditEvent.occurred_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
    return cast("Select[Any]", stmt)
