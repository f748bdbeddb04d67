"""Sign-in through a workspace's OpenID Connect providers: the providers (client secret sealed), the sign-in
rules (require SSO, break-glass administrators, users created on first sign-in), single-use attempts bound to
the browser, and who a provider's answer lets in. The provider conversation itself is ``auth.oidc``.

Every configuration change, sign-in and refusal is an audit event; none holds a secret (README.md, "Sign-in
with an identity provider"; docs/operations.md, "SSO").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from payroster.auth.oidc import ProviderConfig, issuer_problem
from payroster.db.models import (
    SsoAttempt,
    SsoBreakGlass,
    SsoDomain,
    SsoIdentity,
    SsoProvider,
    SsoSettings,
    User,
    Workspace,
    utcnow,
)
from payroster.domain import normalize
from payroster.domain.errors import Conflict, Detail, DomainError, Forbidden, Invalid, NotFound
from payroster.ids import new_id, parse_id
from payroster.services import audit, sealing, users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_user
from payroster.services.scoping import get_scoped, insert_ignoring_conflicts, scoped

log = logging.getLogger("payroster.sso")

ATTEMPT_LIFETIME = dt.timedelta(minutes=10)
DEFAULT_SCOPES = "openid email profile"
MAX_DOMAINS = 50
MAX_FIELD = 255
MAX_SUBJECT = 255  # the remembered subject's column

# What the person is told for each refusal (the audit event and the log line carry the code).
REASONS = {
    "stateUnknown": "This sign-in is unknown: start again from the log-in page.",
    "stateReplayed": "This sign-in was already used: start again from the log-in page.",
    "stateExpired": "This sign-in took longer than 10 minutes: start again from the log-in page.",
    "otherBrowser": "This sign-in was started in another browser: start again from this one.",
    "providerError": "The identity provider did not complete the sign-in.",
    "providerUnavailable": "The identity provider could not be reached or answered something unusable.",
    "issuer": "The identity provider's answer comes from another issuer than the one configured.",
    "audience": "The identity provider's token was issued for another application.",
    "expired": "The identity provider's token has expired.",
    "signature": "The identity provider's token is not signed by the provider's keys.",
    "nonce": "The identity provider's token does not belong to this sign-in.",
    "token": "The identity provider's token is not valid.",
    "emailMissing": "The identity provider did not give your e-mail address.",
    "emailUnverified": "The identity provider has not verified your e-mail address.",
    "domain": "Your e-mail domain is not accepted by this identity provider.",
    "deactivated": "Your PayRoster account is deactivated.",
    "noAccount": "There is no PayRoster account for you in this workspace.",
    "subjectInvalid": "The identity provider sent no usable account identifier (sub).",
    "subjectMismatch": "Another account of the identity provider is already linked to this PayRoster account.",
    "secretUnreadable": "This provider's client secret can no longer be read: an administrator must enter it again.",
}


@dataclass
class Refused(DomainError):
    """A sign-in through a provider is refused; ``code`` is a key of ``REASONS``."""

    code: str = "token"
    status: int = 403
    workspace_id: uuid.UUID | None = None  # whose admins are told, when known
    provider_id: uuid.UUID | None = None

    @classmethod
    def because(cls, reason: str, email: str | None = None, attempt: SsoAttempt | None = None) -> Refused:
        """The refusal for ``reason``, its message the sentence the person reads."""
        ws, provider = (attempt.workspace_id, attempt.provider_id) if attempt is not None else (None, None)
        return cls(REASONS[reason], target=email, code=reason, workspace_id=ws, provider_id=provider)


# -- sealing the client secret ----------------------------------------------------------------------------------


def _fernet(secret_key: str) -> Fernet:
    # A key of its own, derived from PAYROSTER_SECRET_KEY, so the sealed secrets share nothing with the signed
    # cookies; rotating PAYROSTER_SECRET_KEY leaves them unreadable (an admin enters them again).
    return sealing.box(secret_key, b"payroster.sso-client-secret")


def seal(secret_key: str, plaintext: str) -> str:
    """The stored form of a client secret (Fernet: AES-CBC with an HMAC)."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    """A stored client secret, readable only with the key that sealed it."""
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise Refused.because("secretUnreadable") from None


# -- providers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderInput:
    """A provider as an admin describes it (the page and the CLI)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = DEFAULT_SCOPES
    domains: tuple[str, ...] = ()
    trust_unverified_email: bool = False


@dataclass(frozen=True)
class ProviderView:
    """A provider as pages and the CLI show it: never its secret."""

    id: uuid.UUID
    name: str
    issuer: str
    client_id: str
    scopes: str
    domains: list[str]
    trust_unverified_email: bool
    created_at: dt.datetime

    def wire(self) -> dict[str, Any]:
        """The CLI's JSON form."""
        return {
            "id": str(self.id), "name": self.name, "issuer": self.issuer, "clientId": self.client_id,
            "scopes": self.scopes, "domains": self.domains, "trustUnverifiedEmail": self.trust_unverified_email,
        }  # fmt: skip


def _domain_key(value: str) -> str:
    """A listed domain compared as an e-mail's domain is (normalize.domain_key: müller.de is xn--mller-kva.de)."""
    return normalize.domain_key(value.strip().lstrip("@").rstrip("."))


def _problems(inp: ProviderInput) -> tuple[list[Detail], str, list[str]]:
    problems = []
    for name, value in (("name", inp.name), ("clientId", inp.client_id), ("clientSecret", inp.client_secret)):
        if not value.strip():
            problems.append(Detail("required", f"{name} is required", name))
        elif len(value) > (1024 if name == "clientSecret" else MAX_FIELD) or normalize.has_control(value):
            problems.append(Detail("invalid", f"{name} is too long or holds control characters", name))
    issuer = inp.issuer.strip().rstrip("/")
    why = issuer_problem(issuer) if len(issuer) <= 2048 else "longer than 2048 characters"
    if why:
        problems.append(Detail("invalidIssuer", why, "issuer"))
    scopes = inp.scopes.split()
    if "openid" not in scopes or normalize.has_control(inp.scopes) or len(inp.scopes) > 1024:
        problems.append(Detail("invalidScopes", "the scopes must include openid", "scopes"))
    domains = list(dict.fromkeys(_domain_key(d) for d in inp.domains if d.strip()))
    for d in domains:
        if normalize.email_problem(f"a@{d}") is not None:
            problems.append(Detail("invalidDomain", f"{d} is not an e-mail domain", "domains"))
    if len(domains) > MAX_DOMAINS:
        problems.append(Detail("tooMany", f"at most {MAX_DOMAINS} domains", "domains"))
    return problems, issuer, domains


def add_provider(session: Session, actor: Actor, secret_key: str, inp: ProviderInput) -> ProviderView:
    """Add a provider to the actor's workspace; its secret is sealed and never shown again."""
    problems, issuer, domains = _problems(inp)
    if problems:
        raise Invalid("the identity provider cannot be saved", details=problems)
    now = utcnow()
    row = SsoProvider(
        workspace_id=actor.workspace_id, id=new_id(), name=inp.name.strip(), issuer=issuer,
        client_id=inp.client_id.strip(), client_secret_sealed=seal(secret_key, inp.client_secret.strip()),
        scopes=" ".join(inp.scopes.split()), trust_unverified_email=inp.trust_unverified_email, created_at=now,
        updated_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    session.add_all(SsoDomain(workspace_id=row.workspace_id, provider_id=row.id, domain_key=d) for d in domains)
    view = _view(row, domains)
    shown = {k: v for k, v in view.wire().items() if k != "id"}
    audit.record(session, actor, "sso.providerAdded", "ssoProvider", row.id, audit.created(shown))
    return view


def _view(row: SsoProvider, domains: list[str]) -> ProviderView:
    return ProviderView(
        row.id, row.name, row.issuer, row.client_id, row.scopes, domains, row.trust_unverified_email, row.created_at
    )


def list_providers(session: Session, workspace_id: uuid.UUID) -> list[ProviderView]:
    """The workspace's providers by name."""
    rows = list(session.scalars(scoped(SsoProvider, workspace_id).order_by(SsoProvider.name, SsoProvider.id)))
    domains: dict[uuid.UUID, list[str]] = {r.id: [] for r in rows}
    for provider_id, key in session.execute(
        select(SsoDomain.provider_id, SsoDomain.domain_key)
        .where(SsoDomain.workspace_id == workspace_id)
        .order_by(SsoDomain.domain_key)
    ):
        domains.setdefault(provider_id, []).append(key)
    return [_view(r, domains[r.id]) for r in rows]


def remove_provider(session: Session, actor: Actor, provider_id: str) -> None:
    """Remove a provider (its remembered subjects and open attempts go with it); unknown ids are NotFound."""
    row = get_scoped(session, SsoProvider, actor.workspace_id, parse_id(provider_id), "ssoProvider")
    for model in (SsoDomain, SsoIdentity, SsoAttempt):
        session.execute(delete(model).where(model.workspace_id == row.workspace_id, model.provider_id == row.id))
    change = [
        {"field": "name", "before": row.name, "after": None},
        {"field": "issuer", "before": row.issuer, "after": None},
    ]
    session.delete(row)
    audit.record(session, actor, "sso.providerRemoved", "ssoProvider", row.id, change)


def provider_config(
    session: Session, workspace_id: uuid.UUID, provider_id: uuid.UUID, secret_key: str
) -> ProviderConfig:
    """What the client side needs of a provider of this workspace, its secret unsealed."""
    row = get_scoped(session, SsoProvider, workspace_id, provider_id, "ssoProvider")
    return ProviderConfig(
        str(row.id), row.issuer, row.client_id, unseal(secret_key, row.client_secret_sealed), row.scopes,
        row.updated_at.isoformat(),
    )  # fmt: skip


# -- workspace rules --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """A workspace's sign-in rules."""

    require_sso: bool
    create_users: bool
    break_glass: frozenset[uuid.UUID]


def rules(session: Session, workspace_id: uuid.UUID) -> Rules:
    """The workspace's sign-in rules (defaults when never set)."""
    row = session.get(SsoSettings, workspace_id)
    glass = frozenset(session.scalars(select(SsoBreakGlass.user_id).where(SsoBreakGlass.workspace_id == workspace_id)))
    return Rules(bool(row and row.require_sso), bool(row and row.create_users), glass)


def _full_admins(session: Session, workspace_id: uuid.UUID) -> dict[uuid.UUID, User]:
    found = session.scalars(
        scoped(User, workspace_id).where(User.role == "FullAdmin", User.active.is_(True)).order_by(User.email_key)
    )
    return {u.id: u for u in found}


def full_admins(session: Session, workspace_id: uuid.UUID) -> list[User]:
    """The active full administrators: who may be chosen as break-glass."""
    return list(_full_admins(session, workspace_id).values())


def set_rules(session: Session, actor: Actor, require_sso: bool, create_users: bool, break_glass: list[str]) -> Rules:
    """Save the workspace's rules. Requiring SSO needs at least one active full administrator on the break-glass
    list, who can still sign in with a password if the provider fails; removing the last one is refused."""
    ws = actor.workspace_id
    session.execute(select(Workspace.id).where(Workspace.id == ws).with_for_update())  # one change at a time
    admins = _full_admins(session, ws)
    chosen = {parse_id(i) for i in break_glass}
    if None in chosen or not chosen <= set(admins):
        raise Invalid(
            "only active full administrators can be break-glass administrators",
            details=[Detail("notFullAdmin", "choose among the listed full administrators", "breakGlass")],
        )
    if require_sso and not chosen:
        raise Conflict(
            "keep at least one break-glass administrator while SSO is required: someone must be able to sign in "
            "if the identity provider fails",
            target="breakGlass",
        )
    before = rules(session, ws)
    row = session.get(SsoSettings, ws)
    if row is None:
        row = SsoSettings(workspace_id=ws, require_sso=False, create_users=False)
        session.add(row)
    row.require_sso, row.create_users = require_sso, create_users
    ids = {i for i in chosen if i is not None}
    session.execute(delete(SsoBreakGlass).where(SsoBreakGlass.workspace_id == ws, SsoBreakGlass.user_id.not_in(ids)))
    session.add_all(SsoBreakGlass(workspace_id=ws, user_id=i) for i in ids - before.break_glass)
    after = Rules(require_sso, create_users, frozenset(ids))

    def shown(r: Rules) -> dict[str, Any]:
        emails = sorted(admins[i].email for i in r.break_glass if i in admins)
        return {"requireSso": r.require_sso, "createUsers": r.create_users, "breakGlass": emails}

    changes = audit.diff(shown(before), shown(after))
    if changes:
        audit.record(session, actor, "sso.settingsChanged", "workspace", ws, changes)
    return after


def password_allowed(session: Session, candidates: list[User]) -> list[User]:
    """The accounts among ``candidates`` whose workspace lets them use a password (or an invitation link): all,
    unless it requires SSO, where only its break-glass full administrators."""
    if not candidates:
        return []
    ws_ids = {u.workspace_id for u in candidates}
    required = set(
        session.scalars(
            select(SsoSettings.workspace_id).where(SsoSettings.workspace_id.in_(ws_ids), SsoSettings.require_sso)
        )
    )
    if not required:
        return candidates
    glass = {
        (w, u)
        for w, u in session.execute(
            select(SsoBreakGlass.workspace_id, SsoBreakGlass.user_id).where(SsoBreakGlass.workspace_id.in_(required))
        )
    }
    return [
        u
        for u in candidates
        if u.workspace_id not in required or ((u.workspace_id, u.id) in glass and u.role == "FullAdmin")
    ]


def refuse_link(session: Session, user: User) -> None:
    """Invitation and reset links stop working where SSO is required, but for the break-glass administrators."""
    if not password_allowed(session, [user]):
        raise Forbidden("this workspace signs in through its identity provider: use the log-in page's button")


# -- the log-in page --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginChoices:
    """What the log-in page offers for a workspace."""

    slug: str
    name: str
    require_sso: bool
    providers: list[tuple[uuid.UUID, str]]


def login_choices(session: Session, slug: str) -> LoginChoices | None:
    """The providers of the workspace with that slug (None when there is no such workspace)."""
    ws = session.scalars(select(Workspace).where(Workspace.slug == slug)).first()
    if ws is None:
        return None
    providers = session.execute(
        select(SsoProvider.id, SsoProvider.name)
        .where(SsoProvider.workspace_id == ws.id)
        .order_by(SsoProvider.name, SsoProvider.id)
    ).all()
    return LoginChoices(ws.slug, ws.name, rules(session, ws.id).require_sso, [(i, n) for i, n in providers])


def workspaces_for_email(session: Session, email: str) -> list[str]:
    """The slugs of the workspaces with a provider that lists the e-mail's domain."""
    domain = normalize.email_key(email).rpartition("@")[2]
    if not domain:
        return []
    found = session.scalars(
        select(Workspace.slug)
        .join(SsoDomain, SsoDomain.workspace_id == Workspace.id)
        .where(SsoDomain.domain_key == domain)
        .distinct()
        .order_by(Workspace.slug)
        .limit(10)
    )
    return list(found)


# -- attempts ---------------------------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def begin(
    session: Session,
    workspace_id: uuid.UUID,
    provider_id: uuid.UUID,
    browser: str,
    state: str,
    nonce: str,
    verifier: str,
    back: str | None,
) -> None:
    """Record a sign-in sent to a provider, bound to the browser's ``browser`` secret; expired attempts go."""
    now = utcnow()
    session.execute(delete(SsoAttempt).where(SsoAttempt.expires_at <= now - dt.timedelta(days=1)))
    session.add(
        SsoAttempt(
            state_digest=_digest(state), browser_digest=_digest(browser), workspace_id=workspace_id,
            provider_id=provider_id, nonce=nonce, code_verifier=verifier, return_to=back, created_at=now,
            expires_at=now + ATTEMPT_LIFETIME,
        )
    )  # fmt: skip


def find_provider(session: Session, slug: str, provider_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The (workspace, provider) ids of a provider of the workspace with that slug; NotFound otherwise, the
    same for an unknown id and another workspace's."""
    ws = session.scalars(select(Workspace.id).where(Workspace.slug == slug)).first()
    if ws is None:
        raise NotFound("identity provider not found", target="ssoProvider")
    row = get_scoped(session, SsoProvider, ws, parse_id(provider_id), "ssoProvider")
    return ws, row.id


def claim(session: Session, state: str, browser: str | None) -> SsoAttempt:
    """Use the attempt ``state`` names, once: unknown, used, expired or started in another browser is refused."""
    row = session.get(SsoAttempt, _digest(state)) if state else None
    if row is None:
        raise Refused.because("stateUnknown")
    if row.used_at is not None:
        raise Refused.because("stateReplayed", attempt=row)
    if row.expires_at <= utcnow():
        raise Refused.because("stateExpired", attempt=row)
    # Not spent by a use from another browser: the browser that started it can still finish.
    if browser is None or not hmac.compare_digest(row.browser_digest, _digest(browser)):
        raise Refused.because("otherBrowser", attempt=row)
    used = session.execute(
        update(SsoAttempt)
        .where(SsoAttempt.state_digest == row.state_digest, SsoAttempt.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent use won the race
        raise Refused.because("stateReplayed", attempt=row)
    return row


# -- who gets in ------------------------------------------------------------------------------------------------


def sign_in(session: Session, workspace_id: uuid.UUID, provider_id: uuid.UUID, claims: dict[str, Any]) -> User:
    """The active user of the workspace the provider's validated ``claims`` name: by the remembered ``sub``
    first, else by the normalised e-mail (verified, of an accepted domain), whose ``sub`` is then remembered.
    Creates a Participant when the workspace allows it. Audited."""
    provider = get_scoped(session, SsoProvider, workspace_id, provider_id, "ssoProvider")
    subject = str(claims["sub"])
    if not 0 < len(subject) <= MAX_SUBJECT:  # OpenID Connect Core 1.0 §2: at most 255 ASCII characters
        raise Refused.because("subjectInvalid")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    identity = session.get(SsoIdentity, (workspace_id, provider_id, subject))
    if identity is not None:
        user = users.get(session, workspace_id, identity.user_id)
        if not user.active:
            raise Refused.because("deactivated", email)
        identity.last_used_at = utcnow()
    else:
        user = _by_email(session, provider, email, claims.get("email_verified"))
        held = session.scalars(
            select(SsoIdentity.subject).where(
                SsoIdentity.workspace_id == workspace_id,
                SsoIdentity.provider_id == provider_id,
                SsoIdentity.user_id == user.id,
            )
        ).first()
        if held is not None:
            raise Refused.because("subjectMismatch", email)
        # Conflict-safe in the database: a first sign-in racing another for this subject or this user finds the
        # row taken and is refused, never a unique-index error.
        remembered = session.execute(
            insert_ignoring_conflicts(session, SsoIdentity)
            .values(workspace_id=workspace_id, provider_id=provider_id, subject=subject, user_id=user.id)
            .returning(SsoIdentity.subject)
        ).first()
        if remembered is None:
            raise Refused.because("subjectMismatch", email)
    actor = Actor(workspace_id, user.id, "user", "sso")
    changes = [{"field": "provider", "before": None, "after": provider.name}]
    audit.record(session, actor, "sso.signedIn", "user", user.id, changes)
    return user


def _by_email(session: Session, provider: SsoProvider, email: str | None, verified: object) -> User:
    if not email or normalize.email_problem(email) is not None:
        raise Refused.because("emailMissing")
    if verified is not True and not provider.trust_unverified_email:
        raise Refused.because("emailUnverified", email)
    domains = set(
        session.scalars(
            select(SsoDomain.domain_key).where(
                SsoDomain.workspace_id == provider.workspace_id, SsoDomain.provider_id == provider.id
            )
        )
    )
    if domains and normalize.email_key(email).rpartition("@")[2] not in domains:
        raise Refused.because("domain", email)
    user = users.find_by_email(session, provider.workspace_id, email, lock=True)
    if user is None:
        if not rules(session, provider.workspace_id).create_users:
            raise Refused.because("noAccount", email)
        inp, problems = parse_user({"emailAddress": email, "role": "Participant"}, field_pointer())
        if problems:
            raise Refused.because("emailMissing")
        view, _ = users.upsert(session, Actor(provider.workspace_id, None, "system", "sso"), inp)
        return view.user
    if not user.active:
        raise Refused.because("deactivated", email)
    return user


def record_refusal(
    session: Session, workspace_id: uuid.UUID, provider_id: uuid.UUID, reason: str, email: str | None
) -> None:
    """The audit event of a refused sign-in, for the workspace's admins (the reason and e-mail; no token)."""
    changes = [{"field": "reason", "before": None, "after": reason}]
    if email:
        changes.append({"field": "email", "before": None, "after": email})
    audit.record(
        session, Actor(workspace_id, None, "system", "sso"), "sso.signInRefused", "ssoProvider", provider_id, changes
    )
