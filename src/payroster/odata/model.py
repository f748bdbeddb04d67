"""The entity model the feed publishes (README.md, "OData feed"): entity sets, properties, navigation, and how each maps
onto the tables. ``$metadata``, the compiler and the serializer all read this one description."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, case, literal

from payroster.db.models import (
    AuditEvent,
    CustomVariable,
    ManagerPeriod,
    MembershipPeriod,
    Team,
    TeamMember,
    TeamPeriod,
    User,
    UserAlias,
    UserTag,
    table,
)
from payroster.domain import normalize, wire
from payroster.domain.normalize import DEACTIVATED

NAMESPACE = "PayRoster"
CONTAINER = "Directory"

USERS = table(User)
TEAMS = table(Team)
MEMBERS = table(TeamMember)
VARIABLES = table(CustomVariable)
AUDIT = table(AuditEvent)
TAGS = table(UserTag)
ALIASES = table(UserAlias)
MEMBERSHIP_PERIODS = table(MembershipPeriod)
MANAGER_PERIODS = table(ManagerPeriod)
TEAM_PERIODS = table(TeamPeriod)


@dataclass(frozen=True)
class Property:
    """A structural property: its EDM type and the SQL expression that yields it from a table alias."""

    name: str
    edm: str
    sql: Callable[[FromClause], ColumnElement[Any]]
    nullable: bool = True
    # For Collection(Edm.String): the side table holding the items, keyed by (workspace_id, user_id).
    items: Table | None = None
    # The column holding ``key_of`` this one, unique per workspace (an equality uses its index).
    key: str | None = None
    key_of: Callable[[str], str] = normalize.key

    @property
    def is_collection(self) -> bool:
        """Whether this is a collection of strings kept in a side table."""
        return self.items is not None


@dataclass(frozen=True)
class Navigation:
    """A navigation property and how the target rows join the source row."""

    name: str
    target: str
    many: bool
    fk: str | None = None  # single-valued: the source column holding the target id
    back: str | None = None  # collection: the target column holding the source id
    via: tuple[str, str] | None = None  # many-to-many through team_members: (source column, target column)
    extra: tuple[tuple[str, str], ...] = ()  # fixed target column values, e.g. target_type = 'User'


@dataclass(frozen=True)
class EntitySet:
    """An entity set with its entity type."""

    name: str
    type_name: str
    table: Table
    keys: tuple[str, ...]
    properties: dict[str, Property]
    navigations: dict[str, Navigation] = field(default_factory=dict)
    # Application time (README, "OData feed", "Dates"): SNAPSHOT sets answer as of one day ($at, today by
    # default); TIMELINE sets hold one entity per period, ``period`` naming its start and end properties and
    # ``object_key`` the properties that say whose timeline a period belongs to.
    time: str | None = None
    period: tuple[str, str] | None = None
    object_key: tuple[str, ...] = ()

    @property
    def qualified_type(self) -> str:
        """The namespace-qualified entity type name."""
        return f"{NAMESPACE}.{self.type_name}"


def _col(name: str) -> Callable[[FromClause], ColumnElement[Any]]:
    return lambda t: t.c[name]


def _role(t: FromClause) -> ColumnElement[Any]:
    # wire.shown_role in SQL: an inactive user's role reads Deactivated, as on the JSON API.
    return case((t.c.active, t.c.role), else_=literal(DEACTIVATED))


def _props(*props: Property) -> dict[str, Property]:
    return {p.name: p for p in props}


GUID, STRING, BOOL, DTO, DECIMAL = "Edm.Guid", "Edm.String", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Decimal"
DATE = "Edm.Date"
SNAPSHOT, TIMELINE = "snapshot", "timeline"


def _user_properties() -> dict[str, Property]:
    """The Users properties: the names, order and columns of ``wire.USER_FIELDS`` (the shape the feed's writer
    stores), each with its EDM type here."""
    lists = {"tags": TAGS, "aliases": ALIASES}
    typed: dict[str, dict[str, Any]] = {
        "id": {"edm": GUID, "nullable": False},
        "emailAddress": {"edm": STRING, "nullable": False, "key": "email_key", "key_of": normalize.email_key},
        "role": {"edm": STRING, "nullable": False, "sql": _role},
        "active": {"edm": BOOL, "nullable": False},
        "firstName": {"edm": STRING},
        "lastName": {"edm": STRING},
        "directManagerId": {"edm": GUID},
        "tags": {"edm": STRING, "nullable": False},
        "aliases": {"edm": STRING, "nullable": False},
        "createdAt": {"edm": DTO, "nullable": False},
        "updatedAt": {"edm": DTO, "nullable": False},
    }
    if set(typed) != set(wire.USER_NAMES):
        raise RuntimeError("the Users properties must be the fields of wire.USER_FIELDS")
    out = []
    for name, column in wire.USER_FIELDS:
        spec = dict(typed[name])
        if column in lists:  # a list: its items in a side table keyed by the user's id
            spec.update(sql=_col("id"), items=lists[column])
        spec.setdefault("sql", _col(column))
        out.append(Property(name, **spec))
    return _props(*out)


def _period_set(name: str, type_name: str, t: Table, owner: tuple[Property, ...], *values: Property) -> EntitySet:
    """A timeline set over one of the period tables (services/timelines.py): one entity per stored period."""
    return EntitySet(
        name,
        type_name,
        t,
        ("id",),
        _props(
            Property("id", GUID, _col("id"), nullable=False),
            *owner,
            *values,
            Property("validFrom", DATE, _col("valid_from"), nullable=False),
            Property("validTo", DATE, _col("valid_to")),
        ),
        time=TIMELINE,
        period=("validFrom", "validTo"),
        object_key=tuple(p.name for p in owner),
    )


SETS: dict[str, EntitySet] = {
    "Users": EntitySet(
        "Users",
        "User",
        USERS,
        ("id",),
        _user_properties(),
        {
            "teams": Navigation("teams", "Teams", True, via=("user_id", "team_id")),
            "memberships": Navigation("memberships", "TeamMembers", True, back="user_id"),
            "directManager": Navigation("directManager", "Users", False, fk="direct_manager_id"),
            "customVariables": Navigation(
                "customVariables", "CustomVariables", True, back="target_id", extra=(("target_type", "User"),)
            ),
        },
        time=SNAPSHOT,
    ),
    "Teams": EntitySet(
        "Teams",
        "Team",
        TEAMS,
        ("id",),
        _props(
            Property("id", GUID, _col("id"), nullable=False),
            Property("name", STRING, _col("name"), nullable=False, key="name_key"),
            Property("description", STRING, _col("description")),
            Property("managerId", GUID, _col("manager_id")),
            Property("parentTeamId", GUID, _col("parent_team_id")),
            Property("managerCanViewResults", BOOL, _col("manager_can_view_results"), nullable=False),
            Property("managerCanViewCredits", BOOL, _col("manager_can_view_credits"), nullable=False),
            Property("membersCanViewCredits", BOOL, _col("members_can_view_credits"), nullable=False),
            Property("createdAt", DTO, _col("created_at"), nullable=False),
            Property("updatedAt", DTO, _col("updated_at"), nullable=False),
        ),
        {
            "members": Navigation("members", "Users", True, via=("team_id", "user_id")),
            "memberships": Navigation("memberships", "TeamMembers", True, back="team_id"),
            "manager": Navigation("manager", "Users", False, fk="manager_id"),
            "parent": Navigation("parent", "Teams", False, fk="parent_team_id"),
            "children": Navigation("children", "Teams", True, back="parent_team_id"),
            "customVariables": Navigation(
                "customVariables", "CustomVariables", True, back="target_id", extra=(("target_type", "Team"),)
            ),
        },
        time=SNAPSHOT,
    ),
    "TeamMembers": EntitySet(
        "TeamMembers",
        "TeamMember",
        MEMBERS,
        ("teamId", "systemUserId"),
        _props(
            Property("teamId", GUID, _col("team_id"), nullable=False),
            Property("systemUserId", GUID, _col("user_id"), nullable=False),
            Property("createdAt", DTO, _col("created_at"), nullable=False),
        ),
        {
            "team": Navigation("team", "Teams", False, fk="team_id"),
            "user": Navigation("user", "Users", False, fk="user_id"),
        },
        time=SNAPSHOT,
    ),
    "CustomVariables": EntitySet(
        "CustomVariables",
        "CustomVariable",
        VARIABLES,
        ("id",),
        _props(
            Property("id", GUID, _col("id"), nullable=False),
            Property("targetType", STRING, _col("target_type"), nullable=False),
            Property("targetId", GUID, _col("target_id"), nullable=False),
            Property("name", STRING, _col("name"), nullable=False),
            Property("value", STRING, _col("value_json"), nullable=False),
            Property("numberValue", DECIMAL, _col("number_value")),
            Property("startDate", DTO, _col("start_at")),
            Property("endDate", DTO, _col("end_at")),
        ),
    ),
    "AuditEvents": EntitySet(
        "AuditEvents",
        "AuditEvent",
        AUDIT,
        ("id",),
        _props(
            Property("id", GUID, _col("id"), nullable=False),
            Property("occurredAt", DTO, _col("occurred_at"), nullable=False),
            Property("actorUserId", GUID, _col("actor_user_id")),
            Property("actorKind", STRING, _col("actor_kind"), nullable=False),
            Property("channel", STRING, _col("channel"), nullable=False),
            Property("action", STRING, _col("action"), nullable=False),
            Property("targetType", STRING, _col("target_type"), nullable=False),
            Property("targetId", GUID, _col("target_id"), nullable=False),
            Property("changes", STRING, _col("changes"), nullable=False),
            # The event's number in the change feed (services/changes.py); null until it is numbered.
            Property("sequence", "Edm.Int64", _col("sequence")),
        ),
    ),
    "MembershipPeriods": _period_set(
        "MembershipPeriods",
        "MembershipPeriod",
        MEMBERSHIP_PERIODS,
        (
            Property("teamId", GUID, _col("team_id"), nullable=False),
            Property("systemUserId", GUID, _col("user_id"), nullable=False),
        ),
    ),
    "ManagerPeriods": _period_set(
        "ManagerPeriods",
        "ManagerPeriod",
        MANAGER_PERIODS,
        (Property("systemUserId", GUID, _col("user_id"), nullable=False),),
        Property("directManagerId", GUID, _col("manager_id"), nullable=False),
    ),
    "TeamPeriods": _period_set(
        "TeamPeriods",
        "TeamPeriod",
        TEAM_PERIODS,
        (Property("teamId", GUID, _col("team_id"), nullable=False),),
        Property("managerId", GUID, _col("manager_id")),
        Property("parentTeamId", GUID, _col("parent_team_id")),
    ),
}

# Case-insensitive lookup of entity set names, as 4.01 clients may send any case.
SETS_BY_KEY = {name.lower(): es for name, es in SETS.items()}


def key_column(es: EntitySet, t: FromClause) -> ColumnElement[Any]:
    """The single-key column (all sets but TeamMembers)."""
    return es.properties[es.keys[0]].sql(t)
