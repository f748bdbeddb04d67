"""SCIM filters and sortBy compiled to SQL (README.md, "SCIM provisioning"): never evaluated over a loaded set.

scim2-models parses the filter (its AST is the field's reference grammar); this module maps each attribute
path to a column or an EXISTS over tags, aliases or memberships, per workspace. String comparisons follow
each attribute's ``caseExact``: userName and e-mails through their normalised key columns, the others
through ``lower()``. ``co``/``sw``/``ew`` are the literal substring tests the OData feed uses too
(``payroster.db.text``), so ``%`` and ``_`` are literal on SQLite and PostgreSQL alike.

The stored e-mail is the user's one ``emails`` value for filtering, typed ``work`` and ``primary``: Entra's
``emails[type eq "work"].value eq "..."`` therefore finds the user by its e-mail.

A lookup by key (``userName eq``, ``emails eq``, ``externalId eq``: most of an identity provider's traffic) is
written as ``id IN (SELECT id ... WHERE workspace_id = :ws AND key = :value)``, one branch per index it may
use. Written as a plain condition beside the listing's ``ORDER BY id LIMIT``, SQLite's planner preferred to walk
the workspace in id order and test every user (the primary key gives that order for free; it cannot tell an
equality on a key from a broad condition, with or without ``ANALYZE``): 5 ms per lookup at 10,000 users,
growing with the workspace. Each branch of the subquery is an equality on an index's every column, which the
planner always takes, and the page is then read by primary key (0.1 ms; bench/JOURNAL.md). A filter that is only
such a lookup runs a statement of its own (:data:`KEY_LOOKUPS`) that selects each branch's users directly, joined
by ``UNION ALL``: on a PostgreSQL table not yet analysed, ``id IN (...)`` could be planned as a walk of the whole
workspace for every user in it (:func:`_key_lookup`).

A filter is refused (400 ``invalidFilter``) before it is parsed when it is longer than
:data:`MAX_FILTER_LENGTH` characters, and before any SQL when it holds more than :data:`MAX_FILTER_TERMS`
comparisons, nests more than :data:`MAX_FILTER_DEPTH` expressions, or holds a string that no database column can
hold (README.md, SCIM provisioning). Every term is an
``id IN (...)`` or a condition in one ``OR``/``AND`` chain, which SQLite parses into a tree one level deeper per
term; past 1,000 levels (its ``SQLITE_MAX_EXPR_DEPTH``) the statement failed as "Expression tree is too large",
and a 20,000-term filter spent seconds of CPU and hundreds of megabytes building SQL that could not run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import InvalidFilterException, ScimFilter
from scim2_models.path.expressions import (
    AttrPath,
    Comparison,
    FilterNode,
    LogicalExpr,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ColumnElement,
    String,
    Uuid,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)

from payroster.db import text as sqltext
from payroster.db.models import Team, TeamMember, User, UserAlias, UserTag
from payroster.db.prepared import Prepared
from payroster.domain import normalize
from payroster.scim.models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, PAYROSTER_SCHEMA, USER_SCHEMA
from payroster.services import users
from payroster.services.scoping import in_workspace

Cond = ColumnElement[bool]

# Identity providers send one or two terms (a lookup by userName, e-mail or externalId; a group member); 100 leaves
# room for a caller batching its lookups, and, nested to MAX_FILTER_DEPTH, stays far below SQLite's expression
# depth of 1,000 (tests/scim/test_limits.py runs such a filter on both databases).
MAX_FILTER_TERMS = 100
# 100 terms as long as Entra's ``emails[type eq "work"].value eq "..."`` of a long address fit; the length is
# checked before parsing, so a filter of megabytes costs nothing.
MAX_FILTER_LENGTH = 10_000
# Expressions nested in one another (not, and/or, emails[...]), as scim2-models counts them (it allows 32). SQLite
# parses a statement on a stack of fixed size: 30 nested ``not`` (27 around a tag's EXISTS) overflowed it, "parser
# stack overflow" answered as an outage. Identity providers nest one or two.
MAX_FILTER_DEPTH = 16
# An attribute path (sortBy, attributes, excludedAttributes): the longest one PayRoster publishes, with its
# schema URN, is under a hundred characters.
MAX_PATH_LENGTH = 300


@dataclass(frozen=True)
class Attr:
    """How one attribute compares: a column expression and its type."""

    kind: str  # string | ci (case-insensitive string) | key (normalised key column) | bool | date | id
    column: Any
    key_column: Any = None  # for ``key``: the normalised column equality uses
    multi: Callable[[Callable[[Any], Cond]], Cond] | None = None  # EXISTS over a multi-valued attribute
    sortable: bool = True
    indexed: bool = False  # an index on (workspace_id, column) answers an equality (see the module's note)


def _exists_items(model: type[UserTag] | type[UserAlias]) -> Callable[[Callable[[Any], Cond]], Cond]:
    def build(test: Callable[[Any], Cond]) -> Cond:
        return exists(
            select(literal(1)).where(
                model.workspace_id == User.workspace_id, model.user_id == User.id, test(model.value)
            )
        )

    return build


def _exists_groups(test: Callable[[Any], Cond]) -> Cond:
    return exists(
        select(literal(1)).where(
            TeamMember.workspace_id == User.workspace_id, TeamMember.user_id == User.id, test(TeamMember.team_id)
        )
    )


def _exists_members(test: Callable[[Any], Cond]) -> Cond:
    member = User.__table__.alias("m")
    return exists(
        select(literal(1))
        .select_from(
            TeamMember.__table__.join(
                member, (member.c.workspace_id == TeamMember.workspace_id) & (member.c.id == TeamMember.user_id)
            )
        )
        .where(
            TeamMember.workspace_id == Team.workspace_id,
            TeamMember.team_id == Team.id,
            member.c.scim_hidden.is_(False),
            test(TeamMember.user_id),
        )
    )


_USER_NAME = func.coalesce(User.user_name, User.email)
_USER_NAME_KEY = func.coalesce(User.user_name_key, User.email_key)

USER_ATTRS: dict[str, Attr] = {
    "id": Attr("id", User.id),
    "externalid": Attr("string", User.external_id, indexed=True),
    "username": Attr("key", _USER_NAME, _USER_NAME_KEY, indexed=True),
    "displayname": Attr("ci", User.display_name),
    "name.givenname": Attr("ci", User.first_name),
    "name.familyname": Attr("ci", User.last_name),
    "active": Attr("bool", User.active),
    "emails": Attr("key", User.email, User.email_key, indexed=True),
    "emails.value": Attr("key", User.email, User.email_key, indexed=True),
    "emails.type": Attr("ci", literal("work")),
    "emails.primary": Attr("bool", true()),
    "meta.created": Attr("date", User.created_at),
    "meta.lastmodified": Attr("date", User.updated_at),
    "role": Attr("string", User.role),
    "tags": Attr("ci", None, multi=_exists_items(UserTag), sortable=False),
    "aliases": Attr("ci", None, multi=_exists_items(UserAlias), sortable=False),
    "manager": Attr("id", User.direct_manager_id),
    "manager.value": Attr("id", User.direct_manager_id),
    "groups": Attr("id", None, multi=_exists_groups, sortable=False),
    "groups.value": Attr("id", None, multi=_exists_groups, sortable=False),
}
USER_SCHEMAS = {USER_SCHEMA.lower(): None, PAYROSTER_SCHEMA.lower(): None, ENTERPRISE_SCHEMA.lower(): None}

GROUP_ATTRS: dict[str, Attr] = {
    "id": Attr("id", Team.id),
    "externalid": Attr("string", Team.external_id),
    "displayname": Attr("ci", Team.name),
    "members": Attr("id", None, multi=_exists_members, sortable=False),
    "members.value": Attr("id", None, multi=_exists_members, sortable=False),
    "meta.created": Attr("date", Team.created_at),
    "meta.lastmodified": Attr("date", Team.updated_at),
}
GROUP_SCHEMAS = {GROUP_SCHEMA.lower(): None}


def _by_index(ws: Any, *branches: list[Cond]) -> Cond:
    found = [select(User.id).where(in_workspace(User, ws), *conds) for conds in branches]
    return User.id.in_(found[0] if len(found) == 1 else union_all(*found))


# The branches that find users by a unique key, one per index (the module's note): a userName is the stored one,
# else the e-mail (never ``coalesce(...) = :key``); an e-mail is its own key. Compiler.compare writes them into a
# filter, KEY_LOOKUPS into the statement of a lookup alone.
_KEY_BRANCHES: dict[str, tuple[Callable[[Any], list[Cond]], ...]] = {
    "userName": (lambda k: [User.user_name_key == k], lambda k: [User.user_name_key.is_(None), User.email_key == k]),
    "emails": (lambda k: [User.email_key == k],),
}


def _key_name(attr: Attr) -> str:
    """The :data:`_KEY_BRANCHES` of a ``key`` attribute of a User."""
    return "userName" if attr.key_column is _USER_NAME_KEY else "emails"


def _key_lookup(branches: tuple[Callable[[Any], list[Cond]], ...]) -> Prepared:
    """The visible users one equality on a unique key finds, in id order, as a statement built once.

    Each branch reads its users straight from its key's unique index, the branches joined by ``UNION ALL`` (they
    are disjoint: a stored userName, or none and the e-mail). Not ``id IN (the branches)``: on a PostgreSQL table
    not yet analysed (a workspace an identity provider has just filled, autovacuum not yet round) the planner
    expected one user in the workspace and walked all of them for each, 726 users 197 ms a lookup; this shape
    leaves it no plan but the unique indexes."""
    ws, key = bindparam("ws", type_=Uuid), bindparam("key", type_=String)
    parts = [
        select(*users.READ_COLUMNS).where(in_workspace(User, ws), *branch(key), User.scim_hidden.is_(False))
        for branch in branches
    ]
    if len(parts) == 1:
        return Prepared(parts[0].order_by(User.id))
    either = union_all(*parts)
    return Prepared(either.order_by(either.selected_columns.id))


# The lookups Compiler.unique_key recognises, run on the driver (db.prepared): building the listing's statement
# and its cache key, and loading the page through the ORM, were most of a lookup's own time. At most two users
# match (userName: the stored name's key, else the e-mail's), so the page and the total are taken from all of them.
KEY_LOOKUPS: dict[str, Prepared] = {name: _key_lookup(branches) for name, branches in _KEY_BRANCHES.items()}


class Compiler:
    """Filters of one resource type to SQL conditions."""

    def __init__(self, resource: str, dialect: str, workspace_id: uuid.UUID) -> None:
        self.attrs = USER_ATTRS if resource == "User" else GROUP_ATTRS
        self.schemas = USER_SCHEMAS if resource == "User" else GROUP_SCHEMAS
        self.dialect = dialect
        self.ws = workspace_id

    def where(self, text: str) -> Cond:
        return self.node(self.parse(text), None)

    @staticmethod
    def parse(text: str) -> FilterNode:
        """The filter's syntax tree, within the limits of the module's note (else ``invalidFilter``)."""
        return parse_bounded(text)

    def unique_key(self, node: FilterNode) -> tuple[str, str] | None:
        """``(index, key)`` when the filter is one equality on a User's unique key (``userName eq``, ``emails eq``:
        most of an identity provider's traffic), for :data:`KEY_LOOKUPS`; otherwise None."""
        if self.attrs is not USER_ATTRS or not isinstance(node, Comparison) or node.op.value.lower() != "eq":
            return None
        if not isinstance(node.value, str):
            return None
        attr = self.attr(node.attr_path)  # an unknown schema or attribute is refused as by where()
        if attr.kind != "key":
            return None
        return _key_name(attr), normalize.email_key(node.value)

    def attr(self, path: AttrPath, parent: str | None = None) -> Attr:
        if path.uri is not None and path.uri.lower() not in self.schemas:
            raise InvalidFilterException(detail=f"unknown schema {path.uri}")
        name = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
        if parent is not None:
            name = f"{parent}.{name}"
        found = self.attrs.get(name)
        if found is None:
            raise InvalidFilterException(detail=f"cannot filter on {path}")
        return found

    def sort_column(self, text: str) -> Any:
        if len(text) > MAX_PATH_LENGTH:
            raise InvalidFilterException(detail=f"sortBy is longer than {MAX_PATH_LENGTH} characters")
        try:
            node = ScimFilter(f"{text} pr").ast
        except Exception:
            raise InvalidFilterException(detail=f"cannot sort by {text}") from None
        assert isinstance(node, Present)
        attr = self.attr(node.attr_path)
        if not attr.sortable or attr.column is None:
            raise InvalidFilterException(detail=f"cannot sort by {text}")
        return func.lower(attr.column) if attr.kind in ("ci", "key") else attr.column

    def node(self, node: FilterNode, parent: str | None) -> Cond:
        if isinstance(node, LogicalExpr):
            parts = [self.node(t, parent) for t in node.terms]
            return and_(*parts) if node.op.value == "and" else or_(*parts)
        if isinstance(node, Not):
            return not_(func.coalesce(self.node(node.expr, parent), false()))
        if isinstance(node, ValuePath):
            # Our multi-valued attributes hold one value per row, so emails[type eq "work"] narrows nothing
            # beyond what its sub-filter says about that value.
            base = node.attr_path.attr.lower()
            return self.node(node.val_filter, base)
        if isinstance(node, Present):
            attr = self.attr(node.attr_path, parent)
            if attr.multi is not None:
                return attr.multi(lambda col: col.is_not(None))
            col = attr.column
            cond = col.is_not(None)
            return and_(cond, col != "") if attr.kind in ("string", "ci", "key") else cond
        if isinstance(node, Comparison):
            attr = self.attr(node.attr_path, parent)
            op = node.op.value.lower()
            if attr.multi is not None:
                return attr.multi(lambda col: self.compare(attr, col, op, node.value))
            return self.compare(attr, attr.column, op, node.value)
        raise InvalidFilterException(detail=f"unsupported filter {node}")

    def compare(self, attr: Attr, col: Any, op: str, value: Any) -> Cond:
        if attr.kind == "bool":
            if not isinstance(value, bool) or op not in ("eq", "ne"):
                raise InvalidFilterException(detail="a boolean attribute takes eq or ne with true or false")
            equal: Cond = col == value if op == "eq" else col != value
            return equal
        if attr.kind == "id":
            if op not in ("eq", "ne") or not isinstance(value, str):
                raise InvalidFilterException(detail="ids take eq or ne with a string")
            try:
                parsed = uuid.UUID(value)
            except ValueError:
                return false() if op == "eq" else col.is_not(None)
            same: Cond = col == parsed if op == "eq" else or_(col != parsed, col.is_(None))
            return same
        if attr.kind == "date":
            if not isinstance(value, str):
                raise InvalidFilterException(detail="dates are compared with an ISO 8601 string")
            try:
                when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidFilterException(detail=f"{value} is not an ISO 8601 date-time") from None
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC).replace(tzinfo=None)
            return self.ordered(col, op, when)
        if not isinstance(value, str):
            if value is None and op in ("eq", "ne"):
                null: Cond = col.is_(None) if op == "eq" else col.is_not(None)
                return null
            raise InvalidFilterException(detail="this attribute is compared with a string")
        if attr.kind == "key" and op in ("eq", "ne"):
            target, name = normalize.email_key(value), _key_name(attr)
            found = self.by_index(*(branch(target) for branch in _KEY_BRANCHES[name]))
            if op == "eq":
                return found
            if name == "userName":
                return not_(found)
            return or_(attr.key_column != target, attr.key_column.is_(None))
        if attr.indexed and op == "eq":
            return self.by_index([col == value])
        if attr.kind in ("ci", "key"):
            col, value = func.lower(col), value.lower()
        return self.ordered(col, op, value)

    def by_index(self, *branches: list[Cond]) -> Cond:
        """The users of this workspace one of ``branches`` finds by index, as ``id IN (...)`` (the module's note)."""
        return _by_index(self.ws, *branches)

    def ordered(self, col: Any, op: str, value: Any) -> Cond:
        if op == "eq":
            eq: Cond = col == value
            return eq
        if op == "ne":
            return or_(col != value, col.is_(None))
        if op in ("gt", "ge", "lt", "le"):
            compared: Cond = {"gt": col > value, "ge": col >= value, "lt": col < value, "le": col <= value}[op]
            return compared
        if not isinstance(value, str):
            raise InvalidFilterException(detail=f"{op} applies to strings")
        if op == "co":
            return sqltext.contains(col, value, self.dialect)
        if op == "sw":
            return sqltext.startswith(col, value)
        if op == "ew":
            return sqltext.endswith(col, value)
        raise InvalidFilterException(detail=f"unknown operator {op}")


def parse_bounded(text: str, what: str = "filter") -> FilterNode:
    """Parse a filter (or a PATCH path's ``[...]``, ``what``) of at most :data:`MAX_FILTER_LENGTH` characters and
    :data:`MAX_FILTER_TERMS` terms whose strings a database can store; anything else is ``invalidFilter``."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterException(detail=f"the {what} is longer than {MAX_FILTER_LENGTH} characters")
    try:
        node = ScimFilter(text).ast
    except Exception as exc:  # the parser raises several kinds for malformed input
        raise InvalidFilterException(detail=f"malformed {what}: {exc}") from None
    check_terms(node, what)
    return node


def check_terms(root: FilterNode, what: str = "filter") -> None:
    """Refuse (``invalidFilter``) a tree of more than :data:`MAX_FILTER_TERMS` terms or :data:`MAX_FILTER_DEPTH`
    levels, or holding a string with U+0000 (PostgreSQL's text cannot hold it) or a lone surrogate (not a
    character: no driver can encode it)."""
    terms, stack = 0, [(root, 0)]
    while stack:  # a loop, not recursion: the tree is whatever the client sent
        node, depth = stack.pop()
        if isinstance(node, LogicalExpr | Not | ValuePath) and depth >= MAX_FILTER_DEPTH:
            raise InvalidFilterException(detail=f"the {what} nests more than {MAX_FILTER_DEPTH} expressions")
        if isinstance(node, LogicalExpr):
            stack.extend((term, depth + 1) for term in node.terms)
        elif isinstance(node, Not):
            stack.append((node.expr, depth + 1))
        elif isinstance(node, ValuePath):
            stack.append((node.val_filter, depth + 1))
        else:
            terms += 1
            value = getattr(node, "value", None)
            if isinstance(value, str) and (problem := text_problem(value)) is not None:
                raise InvalidFilterException(detail=f"a value of the {what} {problem}")
    if terms > MAX_FILTER_TERMS:
        raise InvalidFilterException(detail=f"the {what} has {terms} terms; at most {MAX_FILTER_TERMS} are allowed")


def text_problem(value: str) -> str | None:
    """Why a database cannot store this string (U+0000, a lone surrogate), or None."""
    if "\x00" in value:
        return "holds U+0000, which is not allowed"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate, which is not a character"
    return None
