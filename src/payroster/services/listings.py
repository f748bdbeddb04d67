"""The list pages' searches and filters as SQL conditions, shared by the pages and the exports: "Export" on a
page and ``GET /api/v1/exports/...`` with the same parameters select the same rows (README.md, "Exports")."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from payroster.db.models import AuditEvent, MembershipPeriod, Team, User, UserAlias, UserTag
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


# Every action the services record, in plain words, in the order the Activity Log's filter lists them.
ACTIONS: dict[str, str] = {
    "user.created": "person added",
    "user.updated": "person changed (names, role, deactivated, tags...)",
    "membership.added": "joined a team",
    "membership.removed": "left a team",
    "membership.updated": "team membership dates changed",
    "customVariables.replaced": "variables changed (quotas, rates...)",
    "user.inviteLinkCreated": "invitation link created",
    "user.resetLinkCreated": "password reset link created",
    "team.created": "team created",
    "team.updated": "team changed",
    "team.deleted": "team deleted",
    "apiKey.created": "API key created",
    "scimToken.created": "provisioning token created",
    "apiKey.revoked": "API key or token revoked",
    "sso.signedIn": "signed in with SSO",
    "sso.signInRefused": "SSO sign-in refused",
    "sso.providerAdded": "identity provider added",
    "sso.providerRemoved": "identity provider removed",
    "sso.settingsChanged": "SSO settings changed",
    "workspace.created": "workspace created",
    "workspace.updated": "workspace changed",
    "webhook.created": "webhook endpoint added",
    "webhook.updated": "webhook endpoint changed",
    "webhook.deleted": "webhook endpoint deleted",
    "webhook.secretRotated": "webhook secret rotated",
    "webhook.replayed": "webhook deliveries replayed",
}


def events_query(
    workspace_id: uuid.UUID,
    flt: EventFilter | None = None,
    target_id: uuid.UUID | None = None,
    session: Session | None = None,
) -> Select[Any]:
    """Audit events newest first, with the actor's e-mail, filtered in SQL; a person's events include the
    memberships they joined and left (with ``session``, a target typed by name too)."""
    actor = aliased(User)
    stmt: Any = (
        select(AuditEvent, actor.email)
        .outerjoin(actor, (actor.workspace_id == AuditEvent.workspace_id) & (actor.id == AuditEvent.actor_user_id))
        .where(AuditEvent.workspace_id == workspace_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    if target_id is not None:
        stmt = stmt.where(_about(None, workspace_id, str(target_id)))
    if flt is not None:
        if flt.actor.strip():
            stmt = stmt.where(actor.id.in_(_people(workspace_id, flt.actor)))
        if flt.action.strip():
            wanted = flt.action.strip()
            if wanted in ACTIONS:  # chosen from the list: that action only
                stmt = stmt.where(AuditEvent.action == wanted)
            else:  # typed (an older link, or a prefix such as "sso")
                stmt = stmt.where(AuditEvent.action.contains(wanted, autoescape=True))
        if flt.target.strip():
            stmt = stmt.where(_about(session, workspace_id, flt.target.strip()))
        if not flt.problems():
            if flt.since:
                stmt = stmt.where(AuditEvent.occurred_at >= dt.datetime.fromisoformat(flt.since))
            if flt.until and (until := dt.date.fromisoformat(flt.until)) < dt.date.max:  # 9999-12-31: no bound
                stmt = stmt.where(AuditEvent.occurred_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time()))
    return cast("Select[Any]", stmt)


def events_page(session: Session, stmt: Select[Any], page: int, size: int) -> list[Any]:
    """Page ``page`` (from 1) of :func:`events_query`'s ``(event, actor e-mail)`` rows, ``size`` of them and one
    more when there is a next page."""
    return list(session.execute(stmt.limit(size + 1).offset((page - 1) * size)).all())


def _people(workspace_id: uuid.UUID, text: str) -> Select[Any]:
    """The ids of the people a search names: by e-mail (any part of it) or by first, last or full name."""
    key = normalize.key(text)
    full = func.lower(func.coalesce(User.first_name, "") + " " + func.coalesce(User.last_name, ""))
    return select(User.id).where(
        User.workspace_id == workspace_id,
        or_(
            *(User.email_key.contains(part, autoescape=True) for part in normalize.email_fragments(text)),
            full.contains(key, autoescape=True),
        ),
    )


PEOPLE_FOLLOWED = 20  # a target search naming more people than this finds their own events, not their memberships


def _about(session: Session | None, workspace_id: uuid.UUID, target: str) -> Any:
    """The events about a target: an id; or the people a name or e-mail matches, with the memberships they
    joined or left; or the team of exactly that name ("East" is not "SouthEast")."""
    try:
        people = [uuid.UUID(target)]
        return or_(AuditEvent.target_id == people[0], _memberships_of(workspace_id, people))
    except ValueError:
        pass
    team = select(Team.id).where(Team.workspace_id == workspace_id, Team.name_key == normalize.key(target))
    about = AuditEvent.target_id.in_(_people(workspace_id, target).union(team))
    if session is None:
        return about
    people = list(session.scalars(_people(workspace_id, target).limit(PEOPLE_FOLLOWED + 1)))
    if not people or len(people) > PEOPLE_FOLLOWED:
        return about
    return or_(about, _memberships_of(workspace_id, people))


def _memberships_of(workspace_id: uuid.UUID, people: list[uuid.UUID]) -> Any:
    """The membership events of these people. A membership event is recorded against its team, the person being
    in its changes; no column holds the member, so the events are narrowed first by the indexed ids of the teams
    those people ever had a period in, then matched on the person's id in the changes (a few events per team,
    never the whole log)."""
    teams_of = select(MembershipPeriod.team_id).where(
        MembershipPeriod.workspace_id == workspace_id, MembershipPeriod.user_id.in_(people)
    )
    return and_(
        AuditEvent.target_type == "membership",
        AuditEvent.target_id.in_(teams_of),
        or_(*(AuditEvent.changes.contains(f'"{uid}"', autoescape=True) for uid in people)),
    )
