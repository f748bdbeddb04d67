"""Browser accounts: password log-in, server-side sessions, and invitation / password-reset links.

Session and link tokens are 256-bit random strings; only their SHA-256 digests are stored, so a copy of
the database opens no session and redeems no link. Deactivating a user deletes their sessions
(``services.sessions``, from every door's deactivation), so a reactivation opens none of them again; a session is
also checked against its user on every request.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from payroster.db.models import Invitation, User, WebSession, Workspace, utcnow
from payroster.domain import normalize
from payroster.domain.errors import Detail, Invalid, NotFound
from payroster.services import audit, passwords, sessions, sso, timelines, users
from payroster.services.context import Actor

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_CANDIDATES = 20  # accounts sharing one e-mail across workspaces that a log-in tries
TOUCH_EVERY = dt.timedelta(minutes=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified when no account matches, so an unknown e-mail costs the same Argon2 work as a wrong password.

    Made at the first such log-in, not at import: hashing takes ~0.1 s, which every process that imports this
    module (the server, each CLI command) paid at start-up whether or not anyone logged in."""
    return passwords.hash_password(secrets.token_urlsafe(16))


def digest(token: str) -> str:
    """The stored form of a session or link token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionUser:
    """The signed-in user of a browser session, as the pages see it."""

    digest: str
    csrf_secret: str
    workspace_id: uuid.UUID
    workspace_slug: str
    workspace_name: str
    user_id: uuid.UUID
    email: str
    role: str
    first_name: str | None
    last_name: str | None
    timeline_stale: bool = False  # the workspace's current values are to be refreshed (services.timelines)

    @property
    def is_full_admin(self) -> bool:
        """May change anything in the workspace."""
        return self.role == "FullAdmin"

    @property
    def is_admin(self) -> bool:
        """May read everything in the workspace (FullAdmin or LimitedAdmin)."""
        return self.role in ("FullAdmin", "LimitedAdmin")

    @property
    def display(self) -> str:
        """The name shown in the header."""
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.email

    def actor(self) -> Actor:
        """The audit actor of a change made in the browser."""
        return Actor(self.workspace_id, self.user_id, "user", "ui")


def password_problems(password: str, confirm: str | None = None) -> list[Detail]:
    """Why a new password is refused (empty list when it is acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(Detail("tooShort", f"use at least {MIN_PASSWORD} characters", "password"))
    if len(password) > MAX_PASSWORD:
        problems.append(Detail("tooLong", f"use at most {MAX_PASSWORD} characters", "password"))
    if normalize.has_control(password):
        problems.append(Detail("invalidCharacters", "control characters are not allowed", "password"))
    if confirm is not None and confirm != password:
        problems.append(Detail("mismatch", "the two passwords differ", "confirm"))
    return problems


def check_login(session: Session, email: str, password: str) -> list[User]:
    """The active accounts with this e-mail and password (one per workspace; usually one or none)."""
    stmt = (
        select(User)
        .where(User.email_key == normalize.email_key(email), User.active.is_(True), User.password_hash.is_not(None))
        .limit(MAX_CANDIDATES)
    )
    found = list(session.scalars(stmt))
    if not found:
        passwords.check_password(_dummy_hash(), password)
        return []
    return [u for u in found if passwords.check_password(u.password_hash, password)]


def start(session: Session, user: User, lifetime: dt.timedelta) -> str:
    """A new session for ``user``; returns the token the cookie carries (a fresh one at every log-in).

    NotFound when the user was deactivated since the password was checked: the user's row is read under a share
    lock, so a deactivation either committed before (and is seen here) or waits for this session and ends it."""
    still_active = session.scalar(
        select(User.active).where(User.workspace_id == user.workspace_id, User.id == user.id).with_for_update(read=True)
    )
    if not still_active:
        raise NotFound("this account can no longer log in", target="user")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            digest=digest(token),
            workspace_id=user.workspace_id,
            user_id=user.id,
            csrf_secret=secrets.token_hex(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


def load(session: Session, token: str) -> tuple[SessionUser | None, bool]:
    """The session's user, or None when it is unknown, expired, or its user may no longer log in; and
    whether its expiry is due to be extended (at most once a minute)."""
    row = _by_token(session, WebSession, token)
    if row is None:
        return None, False
    web, user, ws = row
    now = utcnow()
    if web.expires_at <= now or not user.active:
        return None, False
    who = SessionUser(
        web.digest, web.csrf_secret, ws.id, ws.slug, ws.name, user.id, user.email, user.role,
        user.first_name, user.last_name, timelines.stale(ws.timeline_day, ws.timeline_due),
    )  # fmt: skip
    return who, now - web.last_seen_at >= TOUCH_EVERY


def touch(session: Session, token_digest: str, lifetime: dt.timedelta) -> None:
    """Slide the session's expiry forward."""
    now = utcnow()
    session.execute(
        update(WebSession).where(WebSession.digest == token_digest).values(last_seen_at=now, expires_at=now + lifetime)
    )


def end(session: Session, token: str) -> None:
    """Log out: the session row is deleted, so the cookie opens nothing any more."""
    session.execute(delete(WebSession).where(WebSession.digest == digest(token)))


def sweep(session: Session) -> None:
    """Delete expired sessions."""
    session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))


def open_sessions(session: Session, user: User) -> int:
    """How many unexpired sessions the user has (what a deactivation ends)."""
    stmt = select(func.count()).where(
        WebSession.workspace_id == user.workspace_id, WebSession.user_id == user.id, WebSession.expires_at > utcnow()
    )
    return session.scalar(stmt) or 0


PENDING_SHOWN = 500


def pending_links(session: Session, workspace_id: uuid.UUID) -> list[tuple[Invitation, User]]:
    """The workspace's links not yet used nor expired, soonest expiry first (at most ``PENDING_SHOWN``)."""
    stmt = (
        select(Invitation, User)
        .join(User, (User.workspace_id == Invitation.workspace_id) & (User.id == Invitation.user_id))
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.used_at.is_(None),
            Invitation.expires_at > utcnow(),
            User.active.is_(True),
        )
        .order_by(Invitation.expires_at)
        .limit(PENDING_SHOWN)
    )
    return [(inv, user) for inv, user in session.execute(stmt)]


def create_link(session: Session, actor: Actor, user_id: uuid.UUID | None, lifetime: dt.timedelta) -> tuple[str, str]:
    """A single-use link token for a user of the actor's workspace, and its purpose: ``invite`` for a user
    who has never had a password, ``reset`` otherwise. Earlier open links of that user stop working."""
    user = users.get(session, actor.workspace_id, user_id)
    if not user.active:
        raise Invalid(
            "a deactivated user cannot be invited: reactivate them first",
            details=[Detail("deactivated", "the user is deactivated", "user")],
        )
    purpose = "reset" if user.password_hash else "invite"
    now = utcnow()
    _close_links(session, user)
    token = secrets.token_urlsafe(32)
    session.add(
        Invitation(
            digest=digest(token),
            workspace_id=user.workspace_id,
            user_id=user.id,
            purpose=purpose,
            created_by=actor.user_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    audit.record(session, actor, f"user.{purpose}LinkCreated", "user", user.id, [])
    return token, purpose


def _close_links(session: Session, user: User) -> None:
    session.execute(
        update(Invitation)
        .where(
            Invitation.workspace_id == user.workspace_id, Invitation.user_id == user.id, Invitation.used_at.is_(None)
        )
        .values(used_at=utcnow())
    )


def open_link(session: Session, token: str) -> tuple[Invitation, User, Workspace]:
    """The link, its user and workspace while it can still be used; NotFound once used or expired."""
    row = _by_token(session, Invitation, token)
    if row is None or row[0].used_at is not None or row[0].expires_at <= utcnow() or not row[1].active:
        raise NotFound("this link has expired or has already been used", target="invitation")
    sso.refuse_link(session, row[1])
    return row[0], row[1], row[2]


def redeem(session: Session, token: str, password: str, confirm: str) -> User:
    """Set the password through a link, once: a second use, or a use after expiry, is NotFound."""
    invitation, user, _ = open_link(session, token)
    problems = password_problems(password, confirm)
    if problems:
        raise Invalid("choose another password", details=problems)
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.digest == invitation.digest, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent use won the race
        raise NotFound("this link has expired or has already been used", target="invitation")
    users.set_password_hash(session, user, passwords.hash_password(password))
    sessions.end_all(session, user.workspace_id, [user.id])
    actor = Actor(user.workspace_id, user.id, "user", "ui")
    audit.record(
        session, actor, "user.updated", "user", user.id, [{"field": "password", "before": None, "after": "(changed)"}]
    )
    return user


def _by_token(session: Session, model: Any, token: str) -> Any:
    """The session or link whose token's digest this is, with its user and workspace (None: no such)."""
    return session.execute(
        select(model, User, Workspace)
        .join(User, (User.workspace_id == model.workspace_id) & (User.id == model.user_id))
        .join(Workspace, Workspace.id == model.workspace_id)
        .where(model.digest == digest(token))
    ).first()
