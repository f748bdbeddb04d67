"""Compiles parsed OData expressions into SQLAlchemy Core against the model, scoped to one workspace.

Semantics are two-valued and the same on SQLite and PostgreSQL: a comparison with a null operand is false
(``eq``/``ne`` treat null as a value), ``not`` is plain negation, and ``contains``/``startswith``/
``endswith`` are case-sensitive with ``%`` and ``_`` taken literally (they compile to ``instr``/``strpos``
and ``substr``, never ``LIKE``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
    and_,
    cast,
    exists,
    extract,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from payroster.db import text as sqltext
from payroster.domain import normalize
from payroster.odata import parser as P
from payroster.odata import temporal
from payroster.odata.errors import ODataBadQuery, ODataUnsupported
from payroster.odata.model import SETS, SNAPSHOT, EntitySet, Navigation, Property

INT, DEC, STR, BOOL, GUID, DTO, DATE = (
    "Edm.Int64",
    "Edm.Decimal",
    "Edm.String",
    "Edm.Boolean",
    "Edm.Guid",
    "Edm.DateTimeOffset",
    "Edm.Date",
)
NUMERIC = {INT, DEC}
NULL = "null"
MAX_INT64 = P.MAX_INT64
MAX_INT32 = 2**31 - 1
MAX_EXPONENT = 308  # an Edm.Double's range, which SQLite's REAL holds
MAX_DIGITS = 100


@dataclass
class Typed:
    """A compiled scalar with its EDM type; ``lit`` keeps a literal's text for retyping against the other side."""

    expr: ColumnElement[Any]
    edm: str
    lit: P.Lit | None = None
    # For a tag, an alias, an e-mail or a team name: its stored comparison key (``key_of`` the value: an
    # e-mail's identity, a name's key), which the table's key index holds; see Compiler.compare.
    key: ColumnElement[Any] | None = None
    key_of: Callable[[str], str] = normalize.key


@dataclass
class Scope:
    """Where names resolve: an entity alias (or a string-collection item column) plus the joins it needs."""

    es: EntitySet | None
    alias: FromClause | None
    parent: Scope | None = None
    var: str | None = None
    value: ColumnElement[Any] | None = None
    value_key: ColumnElement[Any] | None = None
    joins: list[tuple[FromClause, ColumnElement[bool]]] = field(default_factory=list)
    # A join the scope's rows come from (link table to target), instead of the bare alias.
    prefix: Any = None
    join_cache: dict[tuple[str, ...], tuple[EntitySet, FromClause]] = field(default_factory=dict)

    def root(self) -> Scope:
        """The entity the whole expression is about (``$it``)."""
        return self if self.parent is None else self.parent.root()

    def from_clause(self) -> FromClause:
        """This scope's alias with its outer joins."""
        assert self.alias is not None
        result: Any = self.alias if self.prefix is None else self.prefix
        for alias, on in self.joins:
            result = result.outerjoin(alias, on)
        return result  # type: ignore[no-any-return]


@dataclass
class _CollectionRef:
    """A collection reached by a path: a navigation (with its owner alias) or a string collection."""

    owner: FromClause
    owner_scope: Scope
    nav: Navigation | None = None
    prop: Property | None = None


@functools.lru_cache(maxsize=512)
def named_alias(table: Table, name: str) -> FromClause:
    """The alias ``name`` of ``table``, made once: aliases are immutable, and building one's column
    collection on every request was a tenth of a small feed request's time (bench/JOURNAL.md)."""
    alias = table.alias(name)
    alias.c  # noqa: B018 - populate the column collection now, before threads share the alias
    return alias


class Compiler:
    """Compiles expressions for one workspace and one database dialect."""

    def __init__(self, workspace_id: uuid.UUID, dialect: str, day: dt.date | None = None) -> None:
        self.ws = workspace_id
        self.sqlite = dialect == "sqlite"
        self.counter = 0
        self.day = day  # the snapshot sets' day ($at), None for today's rows (odata/temporal.py)

    def alias(self, es: EntitySet, today: bool = False) -> FromClause:
        """A fresh alias of an entity set's table, or of its rows on the request's day (a snapshot set, unless
        ``today``)."""
        self.counter += 1
        name = f"{es.name.lower()}_{self.counter}"
        if self.day is not None and es.time == SNAPSHOT and not today:
            return temporal.as_of(es, self.day, name, self.sqlite)
        return named_alias(es.table, name)

    def link(self) -> FromClause:
        """A fresh alias of the (team, user) pairs that many-to-many navigations go through, on the day."""
        name = f"link_{self._next()}"
        if self.day is not None:
            return temporal.members_on(self.day, name, self.sqlite)
        return named_alias(SETS["TeamMembers"].table, name)

    def in_workspace(self, t: FromClause) -> ColumnElement[bool]:
        """The tenant condition every table reference carries."""
        return t.c.workspace_id == literal(self.ws, Uuid())

    # --- booleans ------------------------------------------------------------------------------------

    def where(self, node: P.Node, scope: Scope) -> ColumnElement[bool]:
        """A ``$filter`` condition."""
        return self.boolean(node, scope, False)

    def boolean(self, node: P.Node, scope: Scope, negate: bool) -> ColumnElement[bool]:
        if isinstance(node, P.BinOp) and node.op in ("and", "or"):
            # A chain of one connective (`a or b or c ...`, as clients write a list) is one flat list: nested
            # two by two, a few hundred links ran SQL compilation out of Python's stack.
            parts = [self.boolean(part, scope, negate) for part in P.chain(node)]
            conj = (node.op == "and") != negate
            return and_(*parts) if conj else or_(*parts)
        if isinstance(node, P.Not):
            return self.boolean(node.operand, scope, not negate)
        if isinstance(node, P.Lambda):
            return self.lambda_(node, scope, negate)
        leaf = self.leaf(node, scope)
        return func.coalesce(not_(leaf), true()) if negate else leaf

    def leaf(self, node: P.Node, scope: Scope) -> ColumnElement[bool]:
        if isinstance(node, P.BinOp) and node.op in ("eq", "ne", "gt", "ge", "lt", "le"):
            return self.compare(node.op, self.value(node.left, scope), self.value(node.right, scope))
        if isinstance(node, P.In):
            return self.member(self.value(node.left, scope), [self.value(i, scope) for i in node.items])
        typed = self.value(node, scope)
        if typed.edm != BOOL:
            raise ODataBadQuery("the expression is not a Boolean")
        if typed.lit is not None:
            return true() if typed.lit.text == "true" else false()
        return typed.expr == true()

    def compare(self, op: str, left: Typed, right: Typed) -> ColumnElement[bool]:
        if left.edm == NULL or right.edm == NULL:
            other = right if left.edm == NULL else left
            if other.edm == NULL:
                return true() if op in ("eq", "ge", "le") else false()
            if op == "eq":
                return other.expr.is_(None)
            if op == "ne":
                return other.expr.is_not(None)
            return false()
        left, right = self.unify(left, right)
        a, b = left.expr, right.expr
        if op == "eq":
            item, lit = (left, right.lit) if right.lit is not None else (right, left.lit)
            if lit is not None and item.key is not None and lit.kind == "string":
                # The same condition plus what it implies of the stored key (value_key = key(value)): the
                # database then finds the item through the table's key index instead of reading every item row
                # of every candidate (`tags/any(t: t eq 'X')`, first page of 100,000 users on SQLite:
                # 8.5 -> 5.4 ms; of 1,000,000 on PostgreSQL: 7.9 -> 5.3 ms of execution). PostgreSQL's planner
                # would take the two conditions for independent, expect 30 times too few matches and sort them
                # all instead of walking the ordered index (12 -> 35 ms); the statistics of revision 0007 tell it
                # that the key follows from the value. An e-mail's or a team name's key is unique: both
                # databases then read the one row by that index instead of every row of the workspace
                # (`emailAddress eq`; bench/JOURNAL.md).
                return and_(a == b, item.key == item.key_of(lit.text))
            if left.lit is not None or right.lit is not None:
                return a == b
            return a.is_not_distinct_from(b)
        if op == "ne":
            if right.lit is not None:
                return or_(a != b, a.is_(None))
            if left.lit is not None:
                return or_(a != b, b.is_(None))
            return a.is_distinct_from(b)
        if left.edm == BOOL:
            raise ODataBadQuery(f"{op} does not apply to Boolean values")
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]

    def member(self, left: Typed, items: list[Typed]) -> ColumnElement[bool]:
        """``left in (items)`` as the database's own ``IN``: the same rows as ``left eq`` each item joined by
        ``or``, which for a list of 1,000 ids SQLite refused as an expression more than 1,000 levels deep."""
        values = [i for i in items if i.edm != NULL]
        if left.edm == NULL or len(values) < 2:
            return or_(false(), *(self.compare("eq", left, i) for i in items))
        typed = [self.unify(left, i)[1] for i in values]
        if left.edm == BOOL and left.lit is None:
            found = or_(*(self.compare("eq", left, t) for t in typed))  # at most two values
        else:
            found = left.expr.in_([t.expr for t in typed])
        if left.key is not None and all(t.lit is not None and t.lit.kind == "string" for t in typed):
            # What the values imply of the stored key, as Compiler.compare states it for one value.
            found = and_(found, left.key.in_([normalize.key(t.lit.text) for t in typed if t.lit is not None]))
        if len(values) < len(items):
            return or_(found, self.compare("eq", left, next(i for i in items if i.edm == NULL)))
        return found

    def unify(self, left: Typed, right: Typed) -> tuple[Typed, Typed]:
        """Give literals the type of the other operand and check that the two sides compare."""
        if left.lit is not None and right.lit is None:
            left = self.literal(left.lit, right.edm)
        elif right.lit is not None and left.lit is None:
            right = self.literal(right.lit, left.edm)
        if left.edm in NUMERIC and right.edm in NUMERIC:
            return left, right
        if left.edm != right.edm:
            raise ODataBadQuery(f"cannot compare {left.edm} with {right.edm}")
        return left, right

    # --- lambdas and counts --------------------------------------------------------------------------

    def lambda_(self, node: P.Lambda, scope: Scope, negate: bool) -> ColumnElement[bool]:
        ref = self.collection(node.path, scope)
        inner, correlation = self.collection_scope(ref, scope, node.var)
        conditions = [*correlation]
        if node.body is not None:
            body_negate = node.op == "all"
            conditions.append(self.boolean(node.body, inner, body_negate))
        # Everything but the items themselves comes from the enclosing queries, however far out: left to
        # SQLAlchemy's automatic correlation (the next query out only), a variable of a lambda two levels out
        # became a second FROM, a cross product of every item with every other.
        items = inner.from_clause()
        found = exists(select(literal(1)).select_from(items).where(*conditions).correlate_except(items))
        holds = found if node.op == "any" else ~found
        return ~holds if negate else holds

    def collection_scope(
        self, ref: _CollectionRef, scope: Scope, var: str | None
    ) -> tuple[Scope, list[ColumnElement[bool]]]:
        """A scope over the collection's items and the conditions that tie them to their owner."""
        if ref.prop is not None:
            assert ref.prop.items is not None
            items = named_alias(ref.prop.items, f"items_{self._next()}")
            conds = [self.in_workspace(items), items.c.user_id == ref.owner.c.id]
            return Scope(None, items, scope, var, value=items.c.value, value_key=items.c.value_key), conds
        nav = ref.nav
        assert nav is not None
        target = SETS[nav.target]
        t = self.alias(target)
        inner = Scope(target, t, scope, var)
        conds = [self.in_workspace(t), *(t.c[col] == value for col, value in nav.extra)]
        if nav.back is not None:
            conds.append(t.c[nav.back] == ref.owner.c.id)
        else:
            # Join the link table inside this subquery so the owner correlates with the enclosing query.
            assert nav.via is not None
            src, dst = nav.via
            link = self.link()
            inner.prefix = link.join(t, and_(self.in_workspace(t), t.c.id == link.c[dst]))
            conds.extend([self.in_workspace(link), link.c[src] == ref.owner.c.id])
        return inner, conds

    def correlate(self, nav: Navigation, owner_id: ColumnElement[Any], t: FromClause) -> list[ColumnElement[bool]]:
        """Conditions relating target alias ``t`` to a fixed owner id (navigation from one entity)."""
        conds: list[ColumnElement[bool]] = [t.c[col] == value for col, value in nav.extra]
        if nav.back is not None:
            conds.append(t.c[nav.back] == owner_id)
        elif nav.via is not None:
            src, dst = nav.via
            link = self.link()
            # The owner's pairs first, by their index, and the targets looked up by key: as a correlated EXISTS,
            # the first page of a team's members walked the users in key order, testing each, until it had a
            # page (a team of 1,000 among 1,000,000 users: a tenth of the table; bench/JOURNAL.md).
            owned = select(link.c[dst]).where(self.in_workspace(link), link.c[src] == owner_id)
            conds.append(t.c.id.in_(owned))
        return conds

    def count(self, path: tuple[str, ...], scope: Scope) -> Typed:
        ref = self.collection(path, scope)
        inner, conds = self.collection_scope(ref, scope, None)
        items = inner.from_clause()
        sub = select(func.count()).select_from(items).where(*conds).correlate_except(items).scalar_subquery()
        return Typed(sub, INT)

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    # --- paths ---------------------------------------------------------------------------------------

    def start(self, path: tuple[str, ...], scope: Scope) -> tuple[Scope, tuple[str, ...]]:
        """Which scope a path starts in: a lambda variable, ``$it``, ``$this``, or the root entity."""
        head = path[0] if path else ""
        if head == "$it":
            return scope.root(), path[1:]
        if head == "$this":
            if scope.var is None:
                raise ODataBadQuery("$this is only meaningful inside a lambda expression")
            return scope, path[1:]
        s: Scope | None = scope
        while s is not None:
            if s.var is not None and s.var == head:
                return s, path[1:]
            s = s.parent
        return scope.root(), path

    def walk(self, path: tuple[str, ...], scope: Scope) -> tuple[Scope, EntitySet | None, FromClause | None, str]:
        """Follow single-valued navigation (outer joins) to the last segment; returns where it lands."""
        owner, rest = self.start(path, scope)
        if owner.es is None:
            if rest:
                raise ODataBadQuery(f"{path[0]} is a string and has no property {rest[0]}")
            return owner, None, None, ""
        es, alias = owner.es, owner.alias
        assert alias is not None
        for i, name in enumerate(rest[:-1]):
            nav = es.navigations.get(name)
            if nav is None or nav.many:
                raise ODataBadQuery(f"{name} is not a single-valued navigation property of {es.type_name}")
            es, alias = self.join(owner, rest[: i + 1], nav, alias)
        return owner, es, alias, rest[-1] if rest else ""

    def join(self, owner: Scope, key: tuple[str, ...], nav: Navigation, alias: FromClause) -> tuple[EntitySet, Any]:
        if key in owner.join_cache:
            return owner.join_cache[key]
        target = SETS[nav.target]
        t = self.alias(target)
        assert nav.fk is not None
        owner.joins.append((t, and_(self.in_workspace(t), t.c.id == alias.c[nav.fk])))
        owner.join_cache[key] = (target, t)
        return target, t

    def collection(self, path: tuple[str, ...], scope: Scope) -> _CollectionRef:
        owner, es, alias, last = self.walk(path, scope)
        if es is None or alias is None:
            raise ODataBadQuery("a lambda variable over strings is not a collection")
        if last in es.navigations and es.navigations[last].many:
            return _CollectionRef(alias, owner, nav=es.navigations[last])
        prop = es.properties.get(last)
        if prop is not None and prop.is_collection:
            return _CollectionRef(alias, owner, prop=prop)
        raise ODataBadQuery(f"{last} is not a collection of {es.type_name}")

    def prop(self, path: tuple[str, ...], scope: Scope) -> Typed:
        owner, es, alias, last = self.walk(path, scope)
        if es is None:
            assert owner.value is not None
            return Typed(owner.value, STR, key=owner.value_key)
        assert alias is not None
        if not last:
            return Typed(es.properties[es.keys[0]].sql(alias), GUID)
        prop = es.properties.get(last)
        if prop is not None:
            if prop.is_collection:
                raise ODataBadQuery(f"{last} is a collection: use any(), all() or $count")
            edm = prop.edm if prop.edm != "Edm.Decimal" else DEC
            if prop.key is None:
                return Typed(prop.sql(alias), edm)
            return Typed(prop.sql(alias), edm, key=alias.c[prop.key], key_of=prop.key_of)
        nav = es.navigations.get(last)
        if nav is not None and not nav.many:
            target, t = self.join(owner, path, nav, alias)
            return Typed(t.c.id, "nav")
        if nav is not None:
            raise ODataBadQuery(f"{last} is a collection: use any(), all() or $count")
        raise ODataBadQuery(f"{es.type_name} has no property {last}")

    # --- values --------------------------------------------------------------------------------------

    def value(self, node: P.Node, scope: Scope) -> Typed:
        """A scalar expression."""
        if isinstance(node, P.Lit):
            return self.literal(node, None)
        if isinstance(node, P.Prop):
            return self.prop(node.path, scope)
        if isinstance(node, P.Count):
            return self.count(node.path, scope)
        if isinstance(node, P.Call):
            return self.call(node, scope)
        if isinstance(node, P.Neg):
            inner = self.value(node.operand, scope)
            if inner.edm not in NUMERIC:
                raise ODataBadQuery("negation applies to numbers")
            if inner.lit is not None:
                return self.literal(P.Lit("decimal", "-" + inner.lit.text.lstrip("+")), None)
            return Typed(-inner.expr, inner.edm)
        if isinstance(node, P.BinOp) and node.op in ("add", "sub", "mul", "div", "mod", "divby"):
            return self.arithmetic(node, scope)
        if isinstance(node, P.BinOp | P.Not | P.In | P.Lambda):
            return Typed(self.boolean(node, scope, False), BOOL)
        raise ODataBadQuery("unsupported expression")

    def arithmetic(self, node: P.BinOp, scope: Scope) -> Typed:
        if node.op == "divby":
            raise ODataUnsupported("divby is not supported")
        left, right = self.value(node.left, scope), self.value(node.right, scope)
        if left.lit is not None and right.lit is None:
            left = self.literal(left.lit, right.edm if right.edm in NUMERIC else None)
        if right.lit is not None:
            right = self.literal(right.lit, left.edm if left.edm in NUMERIC and left.lit is None else None)
        if left.edm not in NUMERIC or right.edm not in NUMERIC:
            raise ODataBadQuery(f"{node.op} applies to numbers")
        edm = INT if left.edm == INT and right.edm == INT else DEC
        a, b = left.expr, right.expr
        if node.op == "add":
            return Typed(a + b, edm)
        if node.op == "sub":
            return Typed(a - b, edm)
        if node.op == "mul":
            return Typed(a * b, edm)
        if node.op == "mod":
            if edm != INT:
                raise ODataBadQuery("mod applies to integers")
            return Typed(a % func.nullif(b, 0), INT)
        return Typed(a / func.nullif(b, 0), edm)

    def literal(self, lit: P.Lit, target: str | None) -> Typed:
        """A bound literal, typed for comparison with ``target`` when given."""
        kind, text = lit.kind, lit.text
        try:
            if kind == "null":
                return Typed(literal(None), NULL, lit)
            if kind == "bool":
                return Typed(literal(text == "true", Boolean()), BOOL, lit)
            if kind == "string":
                if target == GUID:
                    return Typed(literal(uuid.UUID(text), Uuid()), GUID, lit)
                if not _storable(text):
                    # Neither database stores U+0000 (PostgreSQL's driver refused it with an error) nor an unpaired
                    # surrogate (not UTF-8 at all): no value of the workspace could equal such a text.
                    raise ODataBadQuery("a string literal may not hold U+0000 or an unpaired surrogate")
                return Typed(literal(text, String()), STR, lit)
            if kind == "guid":
                return Typed(literal(uuid.UUID(text), Uuid()), GUID, lit)
            if kind == "decimal":
                number = _number(text)
                if target == INT or (target is None and number == number.to_integral_value() and "." not in text):
                    if number != number.to_integral_value():
                        return Typed(literal(number, Numeric()), DEC, lit)
                    if not -MAX_INT64 - 1 <= number <= MAX_INT64:
                        raise ODataBadQuery(f"an integer of this model is an Edm.Int64; {text} is out of its range")
                    # Bound as a 64-bit integer: typed as INTEGER, PostgreSQL refused any value past 2^31 - 1.
                    return Typed(literal(int(number), BigInteger()), INT, lit)
                return Typed(literal(number, Numeric()), DEC, lit)
            if kind == "datetime":
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if moment.tzinfo is not None:
                    moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
                return Typed(literal(moment, DateTime()), DTO, lit)
            if kind == "date":
                day = dt.date.fromisoformat(text)
                if target == DTO:
                    return Typed(literal(dt.datetime(day.year, day.month, day.day), DateTime()), DTO, lit)
                return Typed(self._date(day), DATE, lit)
        except (ValueError, InvalidOperation, OverflowError) as exc:
            raise ODataBadQuery(f"invalid literal {text!r}: {exc}") from None
        raise ODataBadQuery(f"{kind} literals do not apply to any property of this model")

    def _date(self, day: dt.date) -> ColumnElement[Any]:
        return literal(day.isoformat(), String()) if self.sqlite else literal(day, Date())

    # --- functions -----------------------------------------------------------------------------------

    def call(self, node: P.Call, scope: Scope) -> Typed:
        name = node.name
        if name == "now":
            return Typed(literal(dt.datetime.now(dt.UTC).replace(tzinfo=None), DateTime()), DTO)
        args = [self.value(a, scope) for a in node.args]
        if name in ("contains", "startswith", "endswith", "indexof", "concat"):
            a, b = (self.text(x) for x in args)
            return self.string_pair(name, a, b)
        if name in ("length", "tolower", "toupper", "trim"):
            a = self.text(args[0])
            fn = {"length": func.length, "tolower": func.lower, "toupper": func.upper, "trim": func.trim}[name]
            return Typed(fn(a), INT if name == "length" else STR)
        if name == "substring":
            return self.substring(args)
        if name in ("year", "month", "day", "hour", "minute", "second"):
            moment = self.moment(args[0])
            if self.sqlite:
                return Typed(extract(name, moment), INT)
            part = extract(name, moment)
            return Typed(cast(func.floor(part) if name == "second" else part, Integer), INT)
        if name == "date":
            moment = self.moment(args[0])
            return Typed(func.date(moment) if self.sqlite else cast(moment, Date), DATE)
        if name in ("round", "floor", "ceiling"):
            number = args[0]
            if number.edm not in NUMERIC or number.lit is not None:
                raise ODataBadQuery(f"{name} applies to a numeric property")
            return Typed(getattr(func, name)(number.expr), number.edm)
        raise ODataUnsupported(f"function {name} is not supported")

    def text(self, typed: Typed) -> ColumnElement[Any]:
        if typed.lit is not None:
            typed = self.literal(typed.lit, STR)
        if typed.edm != STR:
            raise ODataBadQuery(f"expected a string, not {typed.edm}")
        return typed.expr

    def moment(self, typed: Typed) -> ColumnElement[Any]:
        if typed.edm != DTO or typed.lit is not None:
            raise ODataBadQuery("expected a date-time property")
        return typed.expr

    def string_pair(self, name: str, a: ColumnElement[Any], b: ColumnElement[Any]) -> Typed:
        dialect = "sqlite" if self.sqlite else "postgresql"
        if name == "contains":
            return Typed(sqltext.contains(a, b, dialect), BOOL)
        if name == "indexof":
            return Typed(sqltext.position(a, b, dialect) - 1, INT)
        if name == "concat":
            return Typed(a.concat(b), STR)
        if name == "startswith":
            return Typed(sqltext.startswith(a, b), BOOL)
        return Typed(sqltext.endswith(a, b), BOOL)

    def substring(self, args: list[Typed]) -> Typed:
        s = self.text(args[0])
        numbers = []
        for arg in args[1:]:
            if arg.lit is None or arg.lit.kind != "decimal" or not arg.lit.text.isdigit():
                raise ODataBadQuery("substring takes non-negative integer literals")
            number = _number(arg.lit.text)
            if number > MAX_INT64:
                raise ODataBadQuery(f"substring takes integers up to {MAX_INT64}")
            # PostgreSQL's substr takes 32-bit integers; no stored text is as long, so a larger start or length
            # reads the same as the largest (an empty text, or the rest of it).
            numbers.append(min(int(number), MAX_INT32 - 1))
        if len(numbers) == 1:
            return Typed(func.substr(s, numbers[0] + 1), STR)
        return Typed(func.substr(s, numbers[0] + 1, numbers[1]), STR)


def _number(text: str) -> Decimal:
    """A numeric literal; refused past what both databases and Python compute with (1e400 made SQLite's driver
    overflow, and 1e999999 as an integer would be a million digits)."""
    number = Decimal(text)
    if number.is_finite() and number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        raise ODataBadQuery(f"numbers in a query lie within 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}; {text} does not")
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise ODataBadQuery(f"numbers in a query have at most {MAX_DIGITS} digits")
    return number


def _storable(text: str) -> bool:
    """Whether a database can hold the text: no U+0000, no unpaired surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
