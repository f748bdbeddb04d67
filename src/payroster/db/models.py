"""Typed SQLAlchemy models. Every tenant table leads with ``workspace_id`` (see docs/architecture.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migration names)."""

    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table of a model, for executemany without the ORM's per-row bookkeeping."""
    return model.__table__  # type: ignore[return-value]


def utcnow() -> dt.datetime:
    """Now, as the naive UTC datetime every column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Workspace(Base):
    """One company's tenant."""

    __tablename__ = "workspaces"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    default_scim_role: Mapped[str] = mapped_column(String(20), default="Participant")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The current values (team_members, managers, parents) hold for every day from timeline_day (NULL: any day
    # before) until timeline_due (NULL: no recorded change ahead), services/timelines.py.
    timeline_day: Mapped[dt.date | None] = mapped_column(Date)
    timeline_due: Mapped[dt.date | None] = mapped_column(Date)


class User(Base):
    """A person of a workspace; ``role`` and ``active`` are separate (docs/rules.md, "Users")."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email_key"),
        ForeignKeyConstraint(
            ["workspace_id", "direct_manager_id"],
            ["users.workspace_id", "users.id"],
            name="fk_users_direct_manager",
        ),
        UniqueConstraint("workspace_id", "user_name_key"),
        Index("ix_users_workspace_id_external_id", "workspace_id", "external_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    direct_manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # SCIM (README.md, "SCIM provisioning"): the identity provider's own names for the person, stored as given.
    user_name: Mapped[str | None] = mapped_column(String(320))
    user_name_key: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str | None] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(255))
    scim_emails: Mapped[str | None] = mapped_column(Text)  # the ``emails`` list as JSON, as last written
    scim_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The user as the OData feed writes it (JSON text, db.feed.feed_text), written with the row by every
    # change to the user, its tags or its aliases; NULL is computed when read. Not loaded with the row.
    feed_json: Mapped[str | None] = mapped_column(Text, deferred=True)


# Ordering by last name. OData sorts nulls first ascending and always ends its order with the id (pages are
# read after the last row's values); PostgreSQL's indexes keep nulls last unless told, hence its own index for
# the feed (the first-name one serves the web directory's nulls-last order). SQLite's indexes hold nulls first
# and cannot say NULLS FIRST: one index in the feed's order, with the id, so a filtered page ordered by last
# name walks it and checks each candidate's tags by id without reading the user's row (bench/JOURNAL.md).
Index("ix_users_workspace_id_last_name", User.workspace_id, User.last_name, User.first_name).ddl_if(
    dialect="postgresql"
)
Index("ix_users_workspace_id_last_name_nulls_first", User.workspace_id, User.last_name.nulls_first(), User.id).ddl_if(
    dialect="postgresql"
)
Index("ix_users_workspace_id_last_name_id", User.workspace_id, User.last_name, User.id).ddl_if(dialect="sqlite")


class UserTag(Base):
    """A tag (classification, plan target); once per user, indexed per workspace for lookups."""

    __tablename__ = "user_tags"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_user_tags_workspace_id_value_key", "workspace_id", "value_key"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    value_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)


class UserAlias(Base):
    """An alias under which transactions credit the user; the key is unique per workspace."""

    __tablename__ = "user_aliases"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_user_aliases_workspace_id_user_id", "workspace_id", "user_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    value_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    value: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)


class Team(Base):
    """A team, upserted by name; hierarchy by ``parent_team_id``."""

    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name_key"),
        ForeignKeyConstraint(
            ["workspace_id", "manager_id"], ["users.workspace_id", "users.id"], name="fk_teams_manager"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "parent_team_id"], ["teams.workspace_id", "teams.id"], name="fk_teams_parent"
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    parent_team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    manager_can_view_results: Mapped[bool] = mapped_column(Boolean, default=False)
    manager_can_view_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    members_can_view_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    external_id: Mapped[str | None] = mapped_column(String(255))  # SCIM Group externalId


class TeamMember(Base):
    """The pair (team, user) while a membership period is in force today (services/timelines.py keeps it);
    ``created_at`` is when that period was recorded."""

    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "team_id"], ["teams.workspace_id", "teams.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_team_members_workspace_id_user_id", "workspace_id", "user_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MembershipPeriod(Base):
    """A user on a team from ``valid_from`` (inclusive) to ``valid_to`` (exclusive, NULL: open). The periods
    of one pair never overlap or touch. No key to ``teams``: a deleted team's history stays."""

    __tablename__ = "membership_periods"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        # ``valid_to`` in the pair index: "in force on a day" is answered from the index alone, without reading
        # each period of a team (bench/JOURNAL.md, "time travel's first pages, second round").
        Index("ix_membership_periods_pair", "workspace_id", "team_id", "user_id", "valid_from", "valid_to"),
        Index("ix_membership_periods_workspace_id_user_id", "workspace_id", "user_id"),
        Index("ix_membership_periods_workspace_id_valid_from", "workspace_id", "valid_from"),
        Index("ix_membership_periods_workspace_id_valid_to", "workspace_id", "valid_to"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ManagerPeriod(Base):
    """A user's direct manager from ``valid_from`` to ``valid_to``; no row for days without a manager."""

    __tablename__ = "manager_periods"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        ForeignKeyConstraint(["workspace_id", "manager_id"], ["users.workspace_id", "users.id"]),
        Index("ix_manager_periods_workspace_id_user_id_valid_from", "workspace_id", "user_id", "valid_from"),
        Index("ix_manager_periods_workspace_id_manager_id", "workspace_id", "manager_id"),
        Index("ix_manager_periods_workspace_id_valid_from", "workspace_id", "valid_from"),
        Index("ix_manager_periods_workspace_id_valid_to", "workspace_id", "valid_to"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    manager_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)


class TeamPeriod(Base):
    """A team's manager and parent from ``valid_from`` to ``valid_to`` (cut where either changes); no row for
    days with neither. No key to ``teams``: a deleted team's history stays."""

    __tablename__ = "team_periods"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "manager_id"], ["users.workspace_id", "users.id"]),
        Index("ix_team_periods_workspace_id_team_id_valid_from", "workspace_id", "team_id", "valid_from"),
        Index("ix_team_periods_workspace_id_parent_team_id", "workspace_id", "parent_team_id"),
        Index("ix_team_periods_workspace_id_valid_from", "workspace_id", "valid_from"),
        Index("ix_team_periods_workspace_id_valid_to", "workspace_id", "valid_to"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    parent_team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)


class CustomVariable(Base):
    """An effective-dated entry on a user or a team; ``value_json`` keeps the exact JSON text."""

    __tablename__ = "custom_variables"
    __table_args__ = (Index("ix_custom_variables_target", "workspace_id", "target_id", "name_key", "start_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    target_type: Mapped[str] = mapped_column(String(10))
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255))
    value_json: Mapped[str] = mapped_column(Text)
    # Exact numbers for SQL filters; the JSON text above stays the source of truth for output.
    number_value: Mapped[Decimal | None] = mapped_column(Numeric(asdecimal=True))
    start_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    end_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ApiKey(Base):
    """An API key (``pr_``) or SCIM provisioning token (``prs_``): key id + SHA-256 of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_api_keys_workspace_id_user_id", "workspace_id", "user_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(8), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AuditEvent(Base):
    """One changed record: who, through which door, what, and per-field before/after."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_workspace_id_target_id", "workspace_id", "target_id"),
        Index("ix_audit_events_workspace_id_occurred_at", "workspace_id", "occurred_at"),
        # The change feed's order (services/changes.py); NULL until the event is numbered.
        UniqueConstraint("workspace_id", "sequence"),
        # The events still to number, in the order they get their numbers.
        Index(
            "ix_audit_events_unnumbered",
            "workspace_id",
            "occurred_at",
            "id",
            sqlite_where=text("sequence IS NULL"),
            postgresql_where=text("sequence IS NULL"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    changes: Mapped[str] = mapped_column(Text)
    sequence: Mapped[int | None] = mapped_column(BigInteger)


class ChangeSequence(Base):
    """A workspace's change feed: the last number given to an event, and the last one pruned away."""

    __tablename__ = "change_sequences"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned_through: Mapped[int] = mapped_column(BigInteger, default=0)


class WebSession(Base):
    """A signed-in browser: the cookie carries a random token, the table only its SHA-256 digest."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_web_sessions_workspace_id_user_id", "workspace_id", "user_id"),
    )

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Invitation(Base):
    """A single-use, expiring link that sets a user's password (invitation or reset)."""

    __tablename__ = "invitations"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        Index("ix_invitations_workspace_id_user_id", "workspace_id", "user_id"),
    )

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    purpose: Mapped[str] = mapped_column(String(10))  # invite | reset
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class SsoProvider(Base):
    """An OpenID Connect identity provider of a workspace; the client secret is stored sealed (services.sso)."""

    __tablename__ = "sso_providers"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    issuer: Mapped[str] = mapped_column(String(2048))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(1024))
    trust_unverified_email: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SsoDomain(Base):
    """An e-mail domain a provider accepts (none: any); indexed so the log-in page finds a provider by domain."""

    __tablename__ = "sso_domains"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "provider_id"], ["sso_providers.workspace_id", "sso_providers.id"], ondelete="CASCADE"
        ),
        Index("ix_sso_domains_domain_key", "domain_key"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    domain_key: Mapped[str] = mapped_column(String(255), primary_key=True)


class SsoIdentity(Base):
    """The provider's ``sub`` remembered for a user: matched before the e-mail, one per user and provider."""

    __tablename__ = "sso_identities"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "provider_id"], ["sso_providers.workspace_id", "sso_providers.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),
        UniqueConstraint("workspace_id", "provider_id", "user_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SsoSettings(Base):
    """A workspace's sign-in rules: SSO required (passwords only for the break-glass admins), users created on
    their first sign-in. No row: neither."""

    __tablename__ = "sso_settings"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    require_sso: Mapped[bool] = mapped_column(Boolean, default=False)
    create_users: Mapped[bool] = mapped_column(Boolean, default=False)


class SsoBreakGlass(Base):
    """A full administrator whose password and links keep working when the workspace requires SSO."""

    __tablename__ = "sso_break_glass"
    __table_args__ = (ForeignKeyConstraint(["workspace_id", "user_id"], ["users.workspace_id", "users.id"]),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class SsoAttempt(Base):
    """A sign-in sent to a provider: found by the digest of its ``state``, bound to the browser that started it
    (digest of a cookie), used once, expiring after ten minutes."""

    __tablename__ = "sso_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "provider_id"], ["sso_providers.workspace_id", "sso_providers.id"], ondelete="CASCADE"
        ),
        Index("ix_sso_attempts_expires_at", "expires_at"),
    )

    state_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_digest: Mapped[str] = mapped_column(String(64))
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class WebhookEndpoint(Base):
    """Where a workspace's changes are POSTed (services/webhooks.py): its secret sealed, its position in the change
    feed (the last sequence handled: delivered or filtered out), its retry state and the lease of the delivery
    thread working on it (services/delivery.py)."""

    __tablename__ = "webhook_endpoints"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("workspaces.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(1024), default="")
    event_types: Mapped[str] = mapped_column(Text)  # JSON list of patterns
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


_ENDPOINT = (["workspace_id", "endpoint_id"], ["webhook_endpoints.workspace_id", "webhook_endpoints.id"])


class _EndpointMessage:
    """What an attempt and a hand-made message share: the endpoint they belong to and the message they carry."""

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Any, ...]:
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (
            ForeignKeyConstraint(*_ENDPOINT, ondelete="CASCADE"),
            Index(f"ix_{table}_workspace_id_endpoint_id_id", "workspace_id", "endpoint_id", "id"),
        )

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    message_id: Mapped[str] = mapped_column(String(80))
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))


class WebhookAttempt(_EndpointMessage, Base):
    """One delivery attempt, kept for the endpoint's log (the last 100)."""

    __tablename__ = "webhook_attempts"

    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(512))
    duration_ms: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text, default="")


class WebhookSend(_EndpointMessage, Base):
    """A message asked for by hand (a test event, a resent event): sent once, before the feed's next events."""

    __tablename__ = "webhook_sends"

    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
