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
    UniquenessException,
)
from sqlalchemy.orm import Session

from payroster.db.models import Team, User
from payroster.domain import normalize, wire
from payroster.domain.errors import Detail, NotFound
from payroster.ids import parse_id
from payroster.scim.filters import KEY_LOOKUPS
from payroster.scim.models import (
    Email,
    EnterpriseUser,
    GroupMember,
    Manager,
    Name,
    PayRosterUser,
    Role,
    UserModel,
)
from payroster.scim.models import (
    Group as ScimGroup,
)
from payroster.services import memberships, reads, teamreads, teams, userreads, users
from payroster.services.context import Actor
from payroster.services.inputs import (
    UNSET,
    TeamInput,
    UserInput,
    field_pointer,
    parse_team,
    parse_user,
    text_field,
)


@dataclass
class Urls:
    """Where a workspace's SCIM resources live."""

    base: str

    def user(self, user_id: uuid.UUID | str) -> str:
        return f"{self.base}/Users/{user_id}"

    def group(self, team_id: uuid.UUID) -> str:
        return f"{self.base}/Groups/{team_id}"


def _etag(*parts: object) -> str:
    return 'W/"' + hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:20] + '"'


# --- users -----------------------------------------------------------------------------------------------


def visible_user(session: Session, ws: uuid.UUID, user_id: str, lock: bool = False) -> User:
    """A user SCIM can see: unknown, foreign and SCIM-deleted ids are the same 404."""
    user = users.get(session, ws, parse_id(user_id), lock=lock)
    if user.scim_hidden:
        raise NotFound("user not found", target="user")
    return user


def users_by_key(session: Session, ws: uuid.UUID, index: str, key: str) -> list[User]:
    """The visible users a unique key finds (``index`` is a :data:`filters.KEY_LOOKUPS` name), in id order."""
    return [users.loaded(row) for row in KEY_LOOKUPS[index].run(session, {"ws": ws, "key": key})]


def user_resources(session: Session, rows: Sequence[User], urls: Urls) -> list[Any]:
    """SCIM User resources for these rows, with their tags, aliases and groups in one query."""
    if not rows:
        return []
    ids = [u.id for u in rows]
    tags: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    aliases: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    groups: dict[uuid.UUID, list[GroupMembership]] = {i: [] for i in ids}
    lists = {"tags": tags, "aliases": aliases}
    for kind, owner, value, _, team in userreads.lists_and_teams(session, rows[0].workspace_id, ids):
        if kind == "groups":
            groups[owner].append(GroupMembership(value=str(team), display=value, ref=urls.group(team), type="direct"))
        else:
            lists[kind][owner].append(value)
    out = []
    for u in rows:
        # The user's values as every door shows them (wire.user), mapped onto SCIM's attributes; SCIM keeps the
        # role apart from ``active`` (the stored role, never the shown one) and its times in ``meta``.
        shown = wire.user(
            u.id, u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, tags[u.id],
            aliases[u.id], u.created_at, u.updated_at,
        )  # fmt: skip
        first, last, manager = shown["firstName"], shown["lastName"], shown["directManagerId"]
        resource = UserModel(
            id=shown["id"],
            external_id=u.external_id,
            user_name=u.user_name or shown["emailAddress"],
            name=Name(given_name=first, family_name=last) if first or last else None,
            display_name=u.display_name,
            active=shown["active"],
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
            role=Role(u.role), tags=shown["tags"] or None, aliases=shown["aliases"] or None
        )
        if manager is not None:
            resource[EnterpriseUser] = EnterpriseUser(manager=Manager(value=manager, ref=urls.user(manager)))
        out.append(resource)
    return out


def _emails(u: User) -> list[Email]:
    """The stored ``emails`` list; the user's e-mail is always among them (as work, primary, if added)."""
    stored = [Email.model_validate(e) for e in json.loads(u.scim_emails)] if u.scim_emails else []
    if not any(normalize.email_key(e.value or "") == u.email_key for e in stored):
        stored.insert(0, Email(value=u.email, type="work", primary=True))
    return stored


# SCIM attribute paths of the JSON API fields ``parse_user`` checks, for its error messages.
_SCIM_NAMES = {
    "emailAddress": "emails",
    "firstName": "name.givenName",
    "lastName": "name.familyName",
    "directManagerId": "manager",
}


def _user_input(resource: Any, *, patched: bool = False) -> UserInput:
    """The desired state a SCIM User asks for, checked by the JSON API's own ``parse_user``.

    Core attributes the resource leaves out are cleared, and so are the lists of an extension it carries.
    An extension left out of a PUT leaves its attributes alone, so an identity provider that knows nothing
    of tags never wipes them; after a PATCH (``patched``) the resource is complete, so a missing extension
    means its attributes were removed.
    """
    problems: list[Detail] = []
    at = field_pointer()
    user_name = text_field(resource.user_name, "userName", at, problems, limit=320)
    if user_name is None and not problems:
        problems.append(Detail("required", "userName is required", "userName"))
    emails = resource.emails or []
    email = user_name
    if user_name is not None and normalize.email_problem(user_name) is not None:
        primary = [e for e in emails if e.primary] or emails
        email = (primary[0].value or "").strip() if primary else ""
        if normalize.email_problem(email) is not None:
            problems.append(Detail("invalidEmail", "neither userName nor emails holds an e-mail address", "emails"))
    raw: dict[str, Any] = {
        "emailAddress": email or "",
        "firstName": resource.name.given_name if resource.name else None,
        "lastName": resource.name.family_name if resource.name else None,
    }
    ext = resource[PayRosterUser]
    if ext is not None:
        if ext.role is not None:
            raw["role"] = str(ext.role)
            if normalize.parse_role(raw["role"]) == normalize.DEACTIVATED:
                problems.append(Detail("invalidRole", "role is FullAdmin, LimitedAdmin or Participant", "role"))
        raw["tags"], raw["aliases"] = ext.tags or [], ext.aliases or []
    elif patched:
        raw["tags"], raw["aliases"] = [], []
    enterprise = resource[EnterpriseUser]
    if enterprise is not None or patched:
        manager = enterprise.manager if enterprise is not None else None
        value = manager.value if manager else None
        if not value and manager is not None and manager.ref:
            value = str(manager.ref).rstrip("/").rsplit("/", 1)[-1]
        raw["directManagerId"] = value or None
    inp, found = parse_user(raw, at)
    problems += [Detail(d.code, d.message, _SCIM_NAMES.get(d.target or "", d.target)) for d in found]
    inp.display_name = text_field(resource.display_name, "displayName", at, problems)
    inp.external_id = text_field(resource.external_id, "externalId", at, problems)
    if problems:
        raise InvalidValueException(detail="; ".join(f"{p.target}: {p.message}" for p in problems))
    inp.user_name = user_name
    inp.scim_emails = json.dumps([e.model_dump(exclude_none=True) for e in emails]) if emails else None
    if resource.active is not None:
        inp.active = resource.active
    return inp


def create_user(session: Session, actor: Actor, resource: Any, role_given: bool = True) -> User:
    """POST /Users: a new user, or the same record back when its userName was hidden by a SCIM DELETE."""
    inp = _user_input(resource)
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
        view = users.patch_locked(session, actor, existing, inp)
        return view.user
    if inp.role is UNSET:
        inp.role = default_role(session, ws)
    inp.scim_hidden = False
    view, _ = users.upsert(session, actor, inp)
    return view.user


def default_role(session: Session, ws: uuid.UUID) -> str:
    """The role a user created by SCIM gets when the request names none."""
    return reads.default_scim_role(session, ws) or "Participant"


def replace_user(session: Session, actor: Actor, user: User, resource: Any, *, patched: bool = False) -> User:
    """PUT, or the result of a PATCH (``patched``): the stored record becomes what the resource says (``user``
    read with ``lock=True`` in this transaction)."""
    inp = _user_input(resource, patched=patched)
    view = users.patch_locked(session, actor, user, inp)
    return view.user


def delete_user(session: Session, actor: Actor, user: User) -> None:
    """DELETE: deactivate and hide from SCIM, keeping the record for the JSON API and OData."""
    users.patch_locked(session, actor, user, UserInput(active=False, scim_hidden=True))


# --- groups ----------------------------------------------------------------------------------------------


def visible_team(session: Session, ws: uuid.UUID, team_id: str, lock: bool = False) -> Team:
    """A team of the workspace, or the same 404 for unknown and foreign ids."""
    return teams.get(session, ws, parse_id(team_id), lock=lock)


def group_resources(session: Session, rows: Sequence[Team], urls: Urls, with_members: bool = True) -> list[Any]:
    """SCIM Group resources; members are the visible (not SCIM-deleted) users of each team."""
    if not rows:
        return []
    ws = rows[0].workspace_id
    ids = [t.id for t in rows]
    members: dict[uuid.UUID, list[GroupMember]] = {i: [] for i in ids}
    stamps = teamreads.member_stamps(session, ws, ids)
    if with_members:
        for team_id, user_id in teamreads.visible_members(session, ws, ids):
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


def _team_input(resource: ScimGroup) -> TeamInput:
    """Name and externalId, checked by the JSON API's own ``parse_team``."""
    at = field_pointer()
    inp, problems = parse_team({"name": resource.display_name}, at)
    inp.external_id = text_field(resource.external_id, "externalId", at, problems)
    if problems:
        names = {"name": "displayName"}
        raise InvalidValueException(
            detail="; ".join(f"{names.get(p.target or '', p.target)}: {p.message}" for p in problems)
        )
    return inp


def create_group(session: Session, actor: Actor, resource: ScimGroup) -> Team:
    """POST /Groups: a new team with its members; a taken name is 409 uniqueness (not an upsert)."""
    inp = _team_input(resource)
    if teams.find_by_name(session, actor.workspace_id, inp.name, lock=True) is not None:
        raise UniquenessException(detail=f"a group named {inp.name} exists")
    team, _ = teams.upsert(session, actor, inp)
    set_members(session, actor, team, resource.members or [])
    return team


def replace_group(session: Session, actor: Actor, team: Team, resource: ScimGroup) -> Team:
    """PUT, or the result of a PATCH: name, externalId and the whole member list (a taken name is 409)."""
    teams.patch(session, actor, team.id, _team_input(resource))
    set_members(session, actor, team, resource.members or [])
    return team


def set_members(session: Session, actor: Actor, team: Team, wanted: Sequence[GroupMember]) -> None:
    """Make the team's SCIM-visible members exactly ``wanted``; unknown or malformed values are ignored."""
    ws = actor.workspace_id
    wanted_ids = {uid for m in wanted if (uid := parse_id(m.value)) is not None}
    current = teamreads.visible_member_ids(session, ws, team.id)
    to_add = wanted_ids - current
    if to_add:
        # SCIM-deleted users stay out of groups; the service skips ids that are not users at all.
        hidden = userreads.scim_hidden_among(session, ws, to_add)
        memberships.add_many(session, actor, team.id, to_add - hidden)
    memberships.remove_many(session, actor, team.id, current - wanted_ids)


def delete_group(session: Session, actor: Actor, team: Team) -> None:
    """DELETE /Groups/{id}: the team goes (children move up, memberships and variables go)."""
    teams.delete_team(session, actor, team.id)
