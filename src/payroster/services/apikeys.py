"""API keys and provisioning tokens: ``pr_<key id>_<secret>``, stored as key id + SHA-256 digest.

The secret has 238 bits of entropy, so a fast digest is enough (no Argon2 on the request path) and the
digest does not depend on ``PAYROSTER_SECRET_KEY``: rotating that secret never kills keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, select, update
from sqlalchemy.orm import Session

from payroster.db.models import ApiKey, User, Workspace, utcnow
from payroster.domain.errors import Forbidden, NotFound, Unauthorized
from payroster.ids import new_id
from payroster.services import audit, timelines
from payroster.services.context import Actor
from payroster.services.scoping import scoped

ALPHABET = string.ascii_letters + string.digits
PREFIXES = {"api": "pr", "scim": "prs"}
_KEY_RE = re.compile(r"^(prs?)_([A-Za-z0-9]{8})_([A-Za-z0-9]{32,128})$")
_DUMMY_DIGEST = hashlib.sha256(b"payroster-no-such-key").hexdigest()
LAST_USED_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """The verified owner of a key, as the doors see it."""

    workspace_id: uuid.UUID
    workspace_slug: str
    user_id: uuid.UUID | None
    email: str | None
    role: str | None
    key_id: str
    kind: str
    default_scim_role: str = "Participant"  # the workspace's role for users SCIM creates without one
    timeline_stale: bool = False  # today's values of the timelines are to be refreshed (services.timelines)

    def actor(self, channel: str) -> Actor:
        """The audit actor for a change made with this key."""
        return Actor(self.workspace_id, self.user_id, "apiKey" if self.kind == "api" else "scimToken", channel)


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def digest(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(
    session: Session, actor: Actor, user_id: uuid.UUID | None, name: str, kind: str = "api"
) -> tuple[str, ApiKey]:
    """Create a key; returns the plaintext (shown once) and its row."""
    key_id, secret = _random(8), _random(40)
    row = ApiKey(
        workspace_id=actor.workspace_id,
        id=new_id(),
        key_id=key_id,
        kind=kind,
        user_id=user_id,
        name=name,
        digest=digest(secret),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        f"{'apiKey' if kind == 'api' else 'scimToken'}.created",
        "apiKey",
        row.id,
        [
            {"field": "keyId", "before": None, "after": key_id},
            {"field": "secret", "before": None, "after": "(changed)"},
        ],
    )
    return f"{PREFIXES[kind]}_{key_id}_{secret}", row


def list_keys(
    session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID | None = None, kind: str = "api"
) -> list[ApiKey]:
    """Keys of a workspace (or of one user), newest first."""
    stmt = scoped(ApiKey, workspace_id).where(ApiKey.kind == kind)
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    return list(session.scalars(stmt.order_by(ApiKey.created_at.desc())).all())


def revoke(session: Session, actor: Actor, key_id: str, user_id: uuid.UUID | None = None) -> ApiKey:
    """Revoke a key of the workspace (of ``user_id`` when given); unknown keys raise NotFound."""
    stmt = scoped(ApiKey, actor.workspace_id).where(ApiKey.key_id == key_id)
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound("key not found", target="keyId")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "apiKey.revoked",
            "apiKey",
            row.id,
            [{"field": "revokedAt", "before": None, "after": row.revoked_at.isoformat()}],
        )
    return row


# One round trip for the key, its workspace and its owner, as plain columns, built once: every request runs it.
_KEY_OWNER = (
    select(
        ApiKey.digest,
        ApiKey.revoked_at,
        ApiKey.kind,
        ApiKey.workspace_id,
        ApiKey.user_id,
        ApiKey.last_used_at,
        Workspace.slug,
        Workspace.default_scim_role,
        Workspace.timeline_day,
        Workspace.timeline_due,
        User.email,
        User.role,
        User.active,
    )  # fmt: skip
    .join(Workspace, Workspace.id == ApiKey.workspace_id)
    .outerjoin(User, and_(User.workspace_id == ApiKey.workspace_id, User.id == ApiKey.user_id))
    .where(ApiKey.key_id == bindparam("key_id"))
)


def verify(
    session: Session | Connection, presented: str | None, kind: str = "api", roles: tuple[str, ...] = ("FullAdmin",)
) -> tuple[Principal, bool]:
    """Check a presented key; returns the principal and whether ``last_used_at`` is due for an update. The key's
    owner must be active and hold one of ``roles`` (the exports also admit a LimitedAdmin's key).

    Unknown key ids still compare against a dummy digest so both failures cost the same.
    """
    match = _KEY_RE.match(presented or "")
    if match is None or match.group(1) != PREFIXES[kind]:
        raise Unauthorized("missing or invalid credentials")
    _, key_id, secret = match.groups()
    row = session.execute(_KEY_OWNER, {"key_id": key_id}).first()
    stored = row.digest if row is not None else _DUMMY_DIGEST
    ok = hmac.compare_digest(stored, digest(secret))
    if row is None or not ok or row.revoked_at is not None or row.kind != kind:
        raise Unauthorized("missing or invalid credentials")
    email = role = None
    if row.user_id is not None:
        if row.email is None or not row.active or row.role not in roles:
            raise Forbidden(f"the key's owner is not an active {' or '.join(roles)}")
        email, role = row.email, row.role
    due = row.last_used_at is None or utcnow() - row.last_used_at >= LAST_USED_EVERY
    stale = timelines.stale(row.timeline_day, row.timeline_due)
    principal = Principal(
        row.workspace_id, row.slug, row.user_id, email, role, key_id, kind, row.default_scim_role, stale
    )
    return principal, due


def touch(session: Session, key_id: str) -> None:
    """Record use, at most once a minute (the WHERE clause keeps concurrent requests from repeating it)."""
    now = utcnow()
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.key_id == key_id,
            (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at <= now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )
