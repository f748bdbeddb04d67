"""Workspaces: creation with a first FullAdmin and an API key; lookup by slug."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from payroster.db.models import Workspace, utcnow
from payroster.domain import normalize
from payroster.domain.errors import Detail, Invalid, NotFound
from payroster.ids import new_id
from payroster.services import apikeys, audit, passwords, users
from payroster.services.context import Actor
from payroster.services.inputs import UserInput, field_pointer, parse_user


@dataclass
class Created:
    """What creating a workspace returns (the CLI prints it as JSON)."""

    workspace: Workspace
    admin_user_id: str
    api_key: str


def slugify(name: str) -> str:
    """A URL-safe slug from a workspace name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:50]
    return slug or "workspace"


def by_slug(session: Session, slug: str) -> Workspace:
    """The workspace with that slug, or NotFound."""
    ws = session.scalars(select(Workspace).where(Workspace.slug == slug)).first()
    if ws is None:
        raise NotFound(f"no workspace with slug {slug!r}", target="workspace")
    return ws


def create(
    session: Session,
    name: str,
    admin_email: str,
    admin_password: str | None,
    channel: str = "cli",
    slug: str | None = None,
    admin_names: tuple[str | None, str | None] = (None, None),
) -> Created:
    """Create a workspace, its first FullAdmin (with first and last names when given) and an API key."""
    if not name.strip():
        raise Invalid("name must not be empty", details=[Detail("required", "name is required", "name")])
    first, last = admin_names
    raw = {"emailAddress": admin_email, "role": "FullAdmin", "firstName": first or None, "lastName": last or None}
    inp, problems = parse_user(raw, field_pointer())
    if problems:
        raise Invalid("invalid admin e-mail", details=problems)
    base = slugify(slug or name)
    candidate = base
    while session.scalar(select(Workspace.id).where(Workspace.slug == candidate)) is not None:
        candidate = f"{base}-{secrets.token_hex(2)}"
    ws = Workspace(id=new_id(), slug=candidate, name=name.strip(), default_scim_role="Participant", created_at=utcnow())
    session.add(ws)
    session.flush()
    actor = Actor(ws.id, None, "cli" if channel == "cli" else "system", channel)
    audit.record(
        session,
        actor,
        "workspace.created",
        "workspace",
        ws.id,
        [{"field": "slug", "before": None, "after": ws.slug}, {"field": "name", "before": None, "after": ws.name}],
    )
    admin = _first_admin(session, actor, inp, admin_password)
    key, _ = apikeys.issue(session, Actor(ws.id, admin, actor.kind, channel), admin, "Initial API key")
    return Created(ws, str(admin), key)


def _first_admin(session: Session, actor: Actor, inp: UserInput, password: str | None) -> uuid.UUID:
    view, _ = users.upsert(session, actor, inp)
    if password:
        users.set_password_hash(session, view.user, passwords.hash_password(password))
    return view.user.id


def set_default_scim_role(session: Session, actor: Actor, role: str) -> None:
    """The role users created by SCIM get when the identity provider names none."""
    canonical = normalize.parse_role(role)
    if canonical is None or canonical == normalize.DEACTIVATED:
        raise Invalid(
            "the default SCIM role is FullAdmin, LimitedAdmin or Participant",
            details=[Detail("invalidRole", f"{role} is not a role", "defaultScimRole")],
        )
    ws = session.get(Workspace, actor.workspace_id)
    if ws is None:
        raise NotFound("workspace not found", target="workspace")
    if ws.default_scim_role != canonical:
        change = {"field": "defaultScimRole", "before": ws.default_scim_role, "after": canonical}
        ws.default_scim_role = canonical
        audit.record(session, actor, "workspace.updated", "workspace", ws.id, [change])
