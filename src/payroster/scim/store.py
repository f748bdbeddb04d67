"""SCIM resources to and from PayRoster's rows; every change goes through the same services as the JSON API.

A SCIM write is turned into the desired state of the record and applied by ``users.patch`` /
``teams.patch`` / ``memberships`` in the caller's transaction, so role rules, alias uniqueness, cycles and
the audit trail hold exactly as on the JSON API. PATCH is applied by scim2-models to the resource as
stored, and the result is written the same way: one bad operation leaves nothing changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scim2_models import (
    GroupMembership,
    InvalidValueException,
    Meta,
    NotFoundException,
    UniquenessException,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payroster.db.models import Team, TeamMember, User, UserAlias, UserTag, Workspace
from payroster.domain import normalize
from payroster.scim.models import (
    Email,
    EnterpriseUser,
    GroupMember,
    Manager,
    Name,
    PayRosterUser,
    Role,
    ScimGroup,
    UserModel,
)
from payroster.services import memberships, teams, users
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, TeamInput, UserInput


@dataclass
class Urls:
    """Where a workspace's SCIM resources live."""

    base: str

    def user(self, user_id: uuid.UUID) -> str:
        return f"{self.base}/Users/{user_id}"

    def group(self, team_id: uuid.UUID) -> str:
        return f"{self.base}/Groups/{team_id}"


def parse_id(text: str) -> uuid.UUID | None:
    """A path or body id as a UUID, or None when malformed."""
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None


def _etag(*parts: object) -> str:
    return 'W/"' + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:20] + '"'


# --- users -----------------------------------------------------------------------------------------------


def visible_user(session: Session, ws: uuid.UUID, user_id: str, lock: bool = False) -> User:
    """A user SCIM can see (not hidden by a SCIM DELETE), or 404."""
    uid = parse_id(user_id)
    user = None
    if uid is not None:
        stmt = select(User).where(User.workspace_id == ws, User.id == uid, User.scim_hidden.is_(False))
        user = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if user is None:
        raise NotFoundException(detail=f"no user with id {user_id}")
    return user


def user_resources(session: Session, rows: Sequence[User], urls: Urls) -> list[Any]:
    """SCIM User resources for these rows, with tags, aliases, groups and managers in one query each."""
    if not rows:
        return []
    ws = rows[0].workspace_id
    ids = [u.id for u in rows]
    tags: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    aliases: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for model, into in ((UserTag, tags), (UserAlias, aliases)):
        for owner, value in session.execute(
            select(model.user_id, model.value)
            .where(model.workspace_id == ws, model.user_id.in_(ids))
            .order_by(model.user_id, model.position)
        ):
            into[owner].append(value)
    groups: dict[uuid.UUID, list[GroupMembership]] = {i: [] for i in ids}
    for owner, team_id, name in session.execute(
        select(TeamMember.user_id, Team.id, Team.name)
        .join(Team, (Team.workspace_id == TeamMember.workspace_id) & (Team.id == TeamMember.team_id))
        .where(TeamMember.workspace_id == ws, TeamMember.user_id.in_(ids))
        .order_by(Team.name)
    ):
        groups[owner].append(GroupMembership(value=str(team_id), display=name, ref=urls.group(team_id), type="direct"))
    out = []
    for u in rows:
        resource = UserModel(
            id=str(u.id),
            external_id=u.external_id,
            user_name=u.user_name or u.email,
            name=Name(given_name=u.first_name, family_name=u.last_name) if u.first_name or u.last_name else None,
            display_name=u.display_name,
            active=u.active,
            emails=_emails(u),
            groups=groups[u.id] or None,
            meta=Meta(
                resource_type="User",
                created=u.created_at.replace(tzinfo=dt.UTC),
                last_modified=u.updated_at.replace(tzinfo=dt.UTC),
                location=urls.user(u.id),
                version=_etag(u.id, u.updated_at.isoformat()),
            ),
        )
        resource[PayRosterUser] = PayRosterUser(
            role=Role(u.role), tags=tags[u.id] or None, aliases=aliases[u.id] or None
        )
        if u.direct_manager_id:
            resource[EnterpriseUser] = EnterpriseUser(
                manager=Manager(
                    value=str(u.direct_manager_id),
                    ref=urls.user(u.direct_manager_id),
                )
            )
        out.append(resource)
    return out


def _emails(u: User) -> list[Email]:
    """The stored ``emails`` list; the user's e-mail is always among them (as work, primary, if added)."""
    stored = [Email.model_validate(e) for e in json.loads(u.scim_emails)] if u.scim_emails else []
    if not any(normalize.key(e.value or "") == u.email_key for e in stored):
        stored.insert(0, Email(value=u.email, type="work", primary=True))
    return stored


def _user_input(resource: Any, *, replace: bool, patched: bool = False) -> UserInput:
    """The desired state a SCIM User asks for.

    ``replace`` (PUT, and the result of a PATCH) clears core attributes the resource leaves out, and the
    lists of an extension it carries. An extension left out of a PUT leaves its attributes alone, so an
    identity provider that knows nothing of tags never wipes them; after a PATCH (``patched``) the
    resource is complete, so a missing extension means its attributes were removed.
    """
    user_name = (resource.user_name or "").strip()
    if not user_name or normalize.has_control(user_name) or len(user_name) > 320:
        raise InvalidValueException(detail="userName is required and must be printable text")
    emails = resource.emails or []
    email = user_name if normalize.email_problem(user_name) is None else None
    if email is None:
        primary = [e for e in emails if e.primary] or emails
        candidate = (primary[0].value or "").strip() if primary else ""
        if normalize.email_problem(candidate) is not None:
            raise InvalidValueException(detail="neither userName nor emails holds a valid e-mail address")
        email = candidate
    inp = UserInput(email=email, user_name=user_name)
    name = resource.name
    if name is not None or replace:
        inp.first_name = _text(name.given_name if name else None, "name.givenName")
        inp.last_name = _text(name.family_name if name else None, "name.familyName")
    if resource.display_name is not None or replace:
        inp.display_name = _text(resource.display_name, "displayName")
    if resource.external_id is not None or replace:
        inp.external_id = _text(resource.external_id, "externalId")
    if resource.emails is not None or replace:
        inp.scim_emails = json.dumps([e.model_dump(exclude_none=True) for e in emails]) if resource.emails else None
    ext = resource[PayRosterUser]
    if ext is not None:
        if ext.role is not None:
            role = normalize.parse_role(str(ext.role))
            if role is None or role == normalize.DEACTIVATED:
                raise InvalidValueException(
                    detail=f"role must be FullAdmin, LimitedAdmin or Participant, not {ext.role}"
                )
            inp.role = role
        for field in ("tags", "aliases"):
            items = getattr(ext, field)
            if items is None and replace:
                items = []
            if items is not None:
                clean = normalize.split_items(items)
                if problems := normalize.item_problems(clean, field):
                    raise InvalidValueException(detail=problems[0].message)
                setattr(inp, field, clean)
    elif patched:
        inp.tags, inp.aliases = [], []
    enterprise = resource[EnterpriseUser]
    if enterprise is None and patched:
        inp.direct_manager_id = None
    if enterprise is not None:
        manager_ref = enterprise.manager.ref if enterprise.manager else None
        value = enterprise.manager.value if enterprise.manager else None
        if not value and manager_ref:
            value = str(manager_ref).rstrip("/").rsplit("/", 1)[-1]
        if value:
            manager = parse_id(value)
            if manager is None:
                raise InvalidValueException(detail=f"manager value {value} is not a user id")
            inp.direct_manager_id = manager
        else:
            inp.direct_manager_id = None
    if resource.active is not None:
        inp.active = resource.active
    return inp


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if normalize.has_control(value) or len(value) > 255:
        raise InvalidValueException(detail=f"{field} must be printable text of at most 255 characters")
    return value.strip() or None


def create_user(session: Session, actor: Actor, resource: Any, role_given: bool = True) -> User:
    """POST /Users: a new user, or the same record back when its userName was hidden by a SCIM DELETE."""
    inp = _user_input(resource, replace=True)
    ws = actor.workspace_id
    existing = users.find_by_user_name(session, ws, inp.user_name, lock=True)
    if existing is not None and not existing.scim_hidden:
        raise UniquenessException(detail=f"userName {inp.user_name} is already provisioned")
    if existing is None:
        by_email = users.find_by_email(session, ws, inp.email, lock=True)
        if by_email is not None and by_email.user_name is not None and not by_email.scim_hidden:
            raise UniquenessException(detail=f"e-mail {inp.email} belongs to userName {by_email.user_name}")
        existing = by_email
    if existing is not None:
        # Reactivate and un-hide the same record (same id); a user made by the API or import is adopted.
        inp.scim_hidden = False
        if not role_given:
            inp.role = UNSET  # the record keeps (and on reactivation restores) its last role
        view = users.patch(session, actor, existing.id, inp)
        return view.user
    if inp.role is UNSET:
        inp.role = default_role(session, ws)
    inp.scim_hidden = False
    view, _ = users.upsert(session, actor, inp)
    return view.user


def default_role(session: Session, ws: uuid.UUID) -> str:
    """The role a user created by SCIM gets when the request names none."""
    return session.scalar(select(Workspace.default_scim_role).where(Workspace.id == ws)) or "Participant"


def replace_user(
    session: Session, actor: Actor, user: User, resource: Any, *, replace: bool, patched: bool = False
) -> User:
    """PUT (``replace``) or the result of a PATCH: the stored record becomes what the resource says."""
    inp = _user_input(resource, replace=replace, patched=patched)
    view = users.patch(session, actor, user.id, inp)
    return view.user


def delete_user(session: Session, actor: Actor, user: User) -> None:
    """DELETE: deactivate and hide from SCIM, keeping the record for the JSON API and OData."""
    users.patch(session, actor, user.id, UserInput(active=False, scim_hidden=True))


# --- groups ----------------------------------------------------------------------------------------------


def visible_team(session: Session, ws: uuid.UUID, team_id: str, lock: bool = False) -> Team:
    """A team of the workspace, or 404."""
    tid = parse_id(team_id)
    team = None
    if tid is not None:
        stmt = select(Team).where(Team.workspace_id == ws, Team.id == tid)
        team = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if team is None:
        raise NotFoundException(detail=f"no group with id {team_id}")
    return team


def group_resources(session: Session, rows: Sequence[Team], urls: Urls, with_members: bool = True) -> list[Any]:
    """SCIM Group resources; members are the visible (not SCIM-deleted) users of each team."""
    if not rows:
        return []
    ws = rows[0].workspace_id
    ids = [t.id for t in rows]
    members: dict[uuid.UUID, list[GroupMember]] = {i: [] for i in ids}
    stamps: dict[uuid.UUID, tuple[int, str]] = {}
    for team_id, count, latest in session.execute(
        select(TeamMember.team_id, func.count(), func.max(TeamMember.created_at))
        .where(TeamMember.workspace_id == ws, TeamMember.team_id.in_(ids))
        .group_by(TeamMember.team_id)
    ):
        stamps[team_id] = (count, str(latest))
    if with_members:
        for team_id, user_id in session.execute(
            select(TeamMember.team_id, User.id)
            .join(User, (User.workspace_id == TeamMember.workspace_id) & (User.id == TeamMember.user_id))
            .where(TeamMember.workspace_id == ws, TeamMember.team_id.in_(ids), User.scim_hidden.is_(False))
            .order_by(TeamMember.team_id, User.id)
        ):
            members[team_id].append(GroupMember(value=str(user_id), ref=urls.user(user_id), type="User"))
    out = []
    for t in rows:
        out.append(
            ScimGroup(
                id=str(t.id),
                external_id=t.external_id,
                display_name=t.name,
                members=members[t.id] or None if with_members else None,
                meta=Meta(
                    resource_type="Group",
                    created=t.created_at.replace(tzinfo=dt.UTC),
                    last_modified=t.updated_at.replace(tzinfo=dt.UTC),
                    location=urls.group(t.id),
                    version=_etag(t.id, t.updated_at.isoformat(), *stamps.get(t.id, (0, ""))),
                ),
            )
        )
    return out


def _group_name(resource: ScimGroup) -> str:
    name = (resource.display_name or "").strip()
    if not name or normalize.has_control(name) or len(name) > 255:
        raise InvalidValueException(detail="displayName is required: printable text of at most 255 characters")
    return name


def create_group(session: Session, actor: Actor, resource: ScimGroup) -> Team:
    """POST /Groups: a new team with its members; a taken name is 409 uniqueness."""
    name = _group_name(resource)
    if teams.find_by_name(session, actor.workspace_id, name, lock=True) is not None:
        raise UniquenessException(detail=f"a group named {name} exists")
    team, _ = teams.upsert(session, actor, TeamInput(name=name))
    team.external_id = _text(resource.external_id, "externalId")
    set_members(session, actor, team, resource.members or [])
    return team


def replace_group(session: Session, actor: Actor, team: Team, resource: ScimGroup) -> Team:
    """PUT, or the result of a PATCH: name, externalId and the whole member list."""
    name = _group_name(resource)
    if name != team.name:
        holder = teams.find_by_name(session, actor.workspace_id, name)
        if holder is not None and holder.id != team.id:
            raise UniquenessException(detail=f"a group named {name} exists")
        teams.patch(session, actor, team.id, TeamInput(name=name))
    team.external_id = _text(resource.external_id, "externalId")
    set_members(session, actor, team, resource.members or [])
    return team


def set_members(session: Session, actor: Actor, team: Team, wanted: Sequence[GroupMember]) -> None:
    """Make the team's visible members exactly ``wanted``; unknown or malformed values are ignored."""
    ws = actor.workspace_id
    wanted_ids = {uid for m in wanted if (uid := parse_id(m.value or "")) is not None}
    current = set(
        session.scalars(
            select(TeamMember.user_id)
            .join(User, (User.workspace_id == TeamMember.workspace_id) & (User.id == TeamMember.user_id))
            .where(TeamMember.workspace_id == ws, TeamMember.team_id == team.id, User.scim_hidden.is_(False))
        )
    )
    to_add = wanted_ids - current
    if to_add:
        known = set(
            session.scalars(
                select(User.id).where(User.workspace_id == ws, User.id.in_(to_add), User.scim_hidden.is_(False))
            )
        )
        for uid in sorted(known):
            memberships.add(session, actor, uid, team.id)
    for uid in sorted(current - wanted_ids):
        memberships.remove(session, actor, uid, team.id)


def delete_group(session: Session, actor: Actor, team: Team) -> None:
    """DELETE /Groups/{id}: the team goes (children move up, memberships and variables go)."""
    teams.delete_team(session, actor, team.id)
