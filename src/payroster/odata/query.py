"""Runs a parsed OData request against the database: one page of a collection (keyset-paged), its count,
and the per-page batch queries for string collections and ``$expand`` (never one query per row)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from payroster.db import feed
from payroster.domain import wire
from payroster.odata import parser as P
from payroster.odata.compiler import Compiler, Scope, Typed
from payroster.odata.errors import ODataBadQuery, ODataUnsupported
from payroster.odata.model import SETS, EntitySet, Navigation
from payroster.services.scoping import in_workspace

Condition = Callable[[FromClause, Compiler], ColumnElement[bool]]


@dataclass(frozen=True)
class Via:
    """The base of a collection navigation over the (team, user) pairs from one owner (``Teams(<id>)/members``,
    ``Users(<id>)/teams``). A page joins the owner's pairs to the targets instead of testing every target against
    them, and is ordered and resumed by the pair's column where it orders by the target's key (the join makes
    them one): both databases then walk the owner's pairs in key order and stop at the page's end. An ``IN`` test
    walked every user in key order on PostgreSQL until a page was found (a team of 1,000 among 1,000,000 users,
    as of a day: 22 ms), and on SQLite listed and sorted every pair of the team before the first row; a join
    ordered by the target's key made SQLite sort every member (bench/JOURNAL.md). A pair occurs once (today's
    rows, or the one period in force on a day), so the join repeats no target."""

    nav: Navigation
    owner: Any  # the owner's id as a bound literal
    # The owner's table when the page itself tests that the owner exists (today's row, whatever the day): a page
    # with rows then says so, and only an empty page needs the owner looked up (odata/routes.py).
    owner_table: Any = None

    def __call__(self, t: FromClause, compiler: Compiler) -> ColumnElement[bool]:
        """The same targets as a condition (``/$count``)."""
        return and_(true(), *compiler.correlate(self.nav, self.owner, t))

    def join(self, t: FromClause, compiler: Compiler) -> tuple[Any, ColumnElement[bool], ColumnElement[Any]]:
        """The owner's pairs joined to the targets ``t``, the condition selecting the owner's pairs, and the
        pair's column equal to the target's key."""
        assert self.nav.via is not None
        src, dst = self.nav.via
        link = compiler.link()
        joined = link.join(t, and_(compiler.in_workspace(t), t.c.id == link.c[dst]))
        owned = and_(compiler.in_workspace(link), link.c[src] == self.owner)
        if self.owner_table is not None:
            o = self.owner_table
            found = select(o.c.id).where(compiler.in_workspace(o), o.c.id == self.owner).correlate(None)
            owned = and_(owned, exists(found))
        return joined, owned, link.c[dst]


@dataclass
class Options:
    """The query options that shape a collection read."""

    filter: P.Node | None = None
    orderby: list[P.OrderItem] = field(default_factory=list)
    select: list[tuple[str, ...]] | None = None
    expand: list[P.ExpandItem] = field(default_factory=list)
    top: int | None = None
    skip: int | None = None
    count: bool = False


@dataclass
class Entity:
    """One fetched entity: key values, selected property values (Python), expansions."""

    keys: dict[str, Any]
    values: dict[str, Any]
    expanded: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Page:
    """One page of a collection and where the next one starts."""

    entities: list[Entity]
    after: list[Any] | None  # order values of the last row when another page follows
    total: int | None = None
    documents: list[str] | None = None  # instead of entities: their JSON, written by the database
    keys: list[tuple[Any, ...]] | None = None  # with documents: each one's key values (``with_keys``)

    def __len__(self) -> int:
        return len(self.documents) if self.documents is not None else len(self.entities)


def selected(es: EntitySet, select_: list[tuple[str, ...]] | None) -> list[str]:
    """The structural properties to return, in model order."""
    if select_ is None or any(item == ("*",) for item in select_):
        return list(es.properties)
    names: set[str] = set()
    for item in select_:
        if len(item) != 1:
            raise ODataUnsupported("$select paths are not supported")
        name = item[0]
        if name in es.navigations:
            continue
        if name not in es.properties:
            raise ODataBadQuery(f"{es.type_name} has no property {name}")
        names.add(name)
    return [n for n in es.properties if n in names]


class Reader:
    """Reads entities of one workspace through one session."""

    def __init__(self, session: Session, workspace_id: uuid.UUID, day: dt.date | None = None) -> None:
        self.session = session
        self.ws = workspace_id
        self.compiler = Compiler(workspace_id, session.get_bind().dialect.name, day)

    # --- collections ---------------------------------------------------------------------------------

    def page(
        self,
        es: EntitySet,
        options: Options,
        size: int,
        after: list[Any] | None = None,
        sent: int = 0,
        base: Condition | None = None,
        as_json: bool = False,
        with_keys: bool = False,
    ) -> Page:
        """Up to ``size`` entities after the keyset position ``after`` (the first page when ``None``); with
        ``as_json``, each entity's JSON is written by the database (see :func:`json_document`), and with
        ``with_keys`` the page also says whose each document is."""
        t = self.compiler.alias(es)
        scope = Scope(es, t)
        conds = [self.compiler.in_workspace(t)]
        paired = None
        if isinstance(base, Via):
            scope.prefix, owned, paired = base.join(t, self.compiler)
            conds.append(owned)
        elif base is not None:
            conds.append(base(t, self.compiler))
        if options.filter is not None:
            conds.append(self.compiler.where(options.filter, scope))
        order = self.order(es, options.orderby, scope, t)
        # What the rows are sorted and resumed by: the order, with the pair's column for the target's key when the
        # page goes through the owner's pairs (Via). SQLite does not carry the join's equality into ORDER BY.
        sort = order
        if paired is not None:
            key = es.properties[es.keys[0]].sql(t)
            sort = [(paired if expr.compare(key) else expr, desc) for expr, desc in order]
        names = selected(es, options.select)
        total = None
        if options.count:
            total = self.session.execute(
                select(func.count()).select_from(scope.from_clause()).where(*conds)
            ).scalar_one()
        limit = size
        if options.top is not None:
            limit = min(limit, options.top - sent)
        if limit <= 0:
            return Page([], None, total)
        # On another day ($at) a snapshot's stored document is today's with the day's dated values (odata/temporal.py).
        stored = stored_document(es, names, t) if as_json else None
        if as_json:
            # Only the document and the order values, read as the driver returns them: the order values
            # of the last row alone are converted (below), not two typed columns for every exported row.
            doc = stored if stored is not None else _document(es.name, tuple(names), t, self.compiler.sqlite)
            cols: list[Any] = [doc.label("doc")]
            cols.extend(type_coerce(expr, NullType()).label(f"o{i}") for i, (expr, _) in enumerate(order))
            stmt = select(*cols).select_from(scope.from_clause()).where(*conds)
        else:
            stmt = self.columns(es, names, t, options.expand, order).select_from(scope.from_clause()).where(*conds)
        if after is not None:
            if len(after) != len(order):
                raise ODataBadQuery("the $skiptoken is not valid for this request", target="$skiptoken")
            stmt = stmt.where(keyset(sort, after))
        elif options.skip:
            stmt = stmt.offset(options.skip)
        stmt = stmt.order_by(*(ordered(o, desc) for o, desc in sort)).limit(limit + 1)
        if as_json:
            rows = list(self.session.execute(stmt).all())
            entities: list[Entity] = []
            at = {f"o{i}": i + 1 for i in range(len(order))}
        else:
            entities, rows, at = self.entities(es, names, self.session.execute(stmt))
        more = len(rows) > limit
        rows, entities = rows[:limit], entities[:limit]
        if options.top is not None and sent + len(rows) >= options.top:
            more = False
        if not as_json:
            self.complete(es, entities, names, options.expand)
        last = [rows[-1][at[f"o{i}"]] for i in range(len(order))] if more and rows else None
        if as_json and last is not None:
            dialect = self.session.get_bind().dialect
            for i, (expr, _) in enumerate(order):
                process = expr.type.result_processor(dialect, None)
                last[i] = process(last[i]) if process is not None and last[i] is not None else last[i]
        documents = keys = None
        if as_json:
            documents = [row[0] for row in rows]
            if stored is not None and None in documents:
                self.fill_documents(es, names, t, order, rows, documents)
            if with_keys:
                keys = self.row_keys(es, t, order, rows)
        return Page(entities, last, total, documents, keys)

    def row_keys(
        self, es: EntitySet, t: FromClause, order: list[tuple[ColumnElement[Any], bool]], rows: list[Any]
    ) -> list[tuple[Any, ...]]:
        """The key values of documents read with their order values (the keys are among them, Reader.order)."""
        dialect = self.session.get_bind().dialect
        places = []
        for k in es.keys:
            column = es.properties[k].sql(t)
            at = 1 + next(i for i, (expr, _) in enumerate(order) if expr.compare(column))
            places.append((at, column.type.result_processor(dialect, None)))
        return [tuple(p(row[at]) if p is not None else row[at] for at, p in places) for row in rows]

    def fill_documents(
        self,
        es: EntitySet,
        names: list[str],
        t: FromClause,
        order: list[tuple[ColumnElement[Any], bool]],
        rows: list[Any],
        docs: list[Any],
    ) -> None:
        """Compute the documents a page read as NULL from the stored column (``docs`` in place)."""
        key = es.properties[es.keys[0]].sql(t)
        # Each row holds its document, then its order values as the driver returns them; the key is one of
        # them (Reader.order adds it unless the client ordered by it, wherever in the order).
        at = 1 + next(i for i, (expr, _) in enumerate(order) if expr.compare(key))
        missing = [i for i, doc in enumerate(docs) if doc is None]
        wanted = [rows[i][at] for i in missing]
        process = key.type.result_processor(self.session.get_bind().dialect, None)
        if process is not None:
            wanted = [process(value) for value in wanted]
        computed: dict[Any, str] = dict(
            self.session.execute(
                select(key, _document(es.name, tuple(names), t, self.compiler.sqlite)).where(
                    self.compiler.in_workspace(t), key.in_(wanted)
                )
            ).all()
        )
        for i, ident in zip(missing, wanted, strict=True):
            docs[i] = computed[ident]

    def count(self, es: EntitySet, options: Options, base: Condition | None = None, today: bool = False) -> int:
        """``/$count``: the number of entities matching the filter (``today``: in today's rows, whatever the day)."""
        t = self.compiler.alias(es, today)
        scope = Scope(es, t)
        conds = [self.compiler.in_workspace(t)]
        if base is not None:
            conds.append(base(t, self.compiler))
        if options.filter is not None:
            conds.append(self.compiler.where(options.filter, scope))
        stmt = select(func.count()).select_from(scope.from_clause()).where(*conds)
        return int(self.session.execute(stmt).scalar_one())

    def order(
        self, es: EntitySet, items: list[P.OrderItem], scope: Scope, t: FromClause
    ) -> list[tuple[ColumnElement[Any], bool]]:
        order: list[tuple[ColumnElement[Any], bool]] = []
        for item in items:
            typed: Typed = self.compiler.value(item.expr, scope)
            if typed.lit is not None or typed.edm in ("nav", "null"):
                raise ODataBadQuery("$orderby needs a property or an expression over properties")
            order.append((typed.expr, item.descending))
        # The key breaks ties, so pages never overlap or skip rows. A key the client already orders by is not
        # added again: a column repeated in ORDER BY made SQLite sort each page in a temporary B-tree instead
        # of reading the index in order (the first page of a filtered, ordered export: bench/JOURNAL.md).
        for k in es.keys:
            column = es.properties[k].sql(t)
            if not any(expr.compare(column) for expr, _ in order):
                order.append((column, False))
        return order

    def columns(
        self,
        es: EntitySet,
        names: list[str],
        t: FromClause,
        expand: list[P.ExpandItem],
        order: list[tuple[ColumnElement[Any], bool]],
    ) -> Select[Any]:
        cols: list[Any] = [es.properties[k].sql(t).label(f"k_{k}") for k in es.keys]
        for name in names:
            prop = es.properties[name]
            if not prop.is_collection:
                cols.append(output(es, name, t).label(f"p_{name}"))
        for item in expand:
            nav = navigation(es, item)
            if nav.fk is not None:
                cols.append(t.c[nav.fk].label(f"f_{nav.name}"))
        cols.extend(expr.label(f"o{i}") for i, (expr, _) in enumerate(order))
        return select(*cols)

    def entities(self, es: EntitySet, names: list[str], result: Any) -> tuple[list[Entity], list[Any], dict[str, int]]:
        """Entities from a result's rows, reading columns by position (the labels are resolved once per
        result, not once per row: on an export this loop runs for every row of the table)."""
        at = {key: i for i, key in enumerate(result.keys())}
        keys = [(k, at[f"k_{k}"]) for k in es.keys]
        values = [(n, at[f"p_{n}"]) for n in names if not es.properties[n].is_collection]
        fks = [(f"__fk_{key[2:]}", i) for key, i in at.items() if key.startswith("f_")]
        rows = result.all()
        out = []
        for row in rows:
            entity = Entity({k: row[i] for k, i in keys}, {n: row[i] for n, i in values})
            for name, i in fks:
                entity.expanded[name] = row[i]
            out.append(entity)
        return out, rows, at

    # --- per-page completion -------------------------------------------------------------------------

    def complete(self, es: EntitySet, entities: list[Entity], names: list[str], expand: list[P.ExpandItem]) -> None:
        """String collections and expansions for a page, one query per collection or navigation."""
        if not entities:
            return
        ids = [e.keys[es.keys[0]] for e in entities]
        for name in names:
            prop = es.properties[name]
            if prop.is_collection:
                assert prop.items is not None
                items = prop.items
                rows = self.session.execute(
                    select(items.c.user_id, items.c.value)
                    .where(in_workspace(items.c, self.ws), items.c.user_id.in_(ids))
                    .order_by(items.c.user_id, items.c.position)
                ).all()
                grouped: dict[Any, list[str]] = defaultdict(list)
                for owner, value in rows:
                    grouped[owner].append(value)
                for e in entities:
                    e.values[name] = grouped.get(e.keys[es.keys[0]], [])
        for item in expand:
            self.expand(es, entities, item)

    def expand(self, es: EntitySet, entities: list[Entity], item: P.ExpandItem) -> None:
        nav = navigation(es, item)
        target = SETS[nav.target]
        options = Options(
            filter=P.finish(item.filter) if item.filter is not None else None,
            orderby=item.orderby,
            select=item.select,
            expand=item.expand,
            top=item.top,
            skip=item.skip,
        )
        if not nav.many:
            wanted = {e.expanded.get(f"__fk_{nav.name}") for e in entities} - {None}
            found = self.by_ids(target, options, list(wanted))
            for e in entities:
                fk = e.expanded.pop(f"__fk_{nav.name}", None)
                e.expanded[nav.name] = found.get(fk)
            return
        owner_ids = [e.keys[es.keys[0]] for e in entities]
        related = self.related(target, nav, options, owner_ids)
        for e in entities:
            e.expanded[nav.name] = related.get(e.keys[es.keys[0]], [])
        if item.count:
            counts = self.related_counts(target, nav, options, owner_ids)
            for e in entities:
                e.counts[nav.name] = counts.get(e.keys[es.keys[0]], 0)

    def by_ids(self, es: EntitySet, options: Options, ids: list[Any]) -> dict[Any, Entity]:
        if not ids:
            return {}
        t = self.compiler.alias(es)
        scope = Scope(es, t)
        conds = [self.compiler.in_workspace(t), t.c.id.in_(ids)]
        if options.filter is not None:
            conds.append(self.compiler.where(options.filter, scope))
        names = selected(es, options.select)
        order = self.order(es, [], scope, t)
        stmt = self.columns(es, names, t, options.expand, order).select_from(scope.from_clause()).where(*conds)
        entities, _, _ = self.entities(es, names, self.session.execute(stmt))
        self.complete(es, entities, names, options.expand)
        return {e.keys["id"]: e for e in entities}

    def related(
        self, es: EntitySet, nav: Navigation, options: Options, owner_ids: list[Any]
    ) -> dict[Any, list[Entity]]:
        t = self.compiler.alias(es)
        scope = Scope(es, t)
        owner, conds = self.owner_link(nav, t)
        conds.append(owner.in_(owner_ids))
        if options.filter is not None:
            conds.append(self.compiler.where(options.filter, scope))
        names = selected(es, options.select)
        order = self.order(es, options.orderby, scope, t)
        cols = self.columns(es, names, t, options.expand, order).add_columns(owner.label("owner"))
        from_ = scope.from_clause()
        if options.top is not None or options.skip:
            rank = func.row_number().over(partition_by=owner, order_by=[ordered(o, d) for o, d in order])
            inner = cols.add_columns(rank.label("rn")).select_from(from_).where(*conds).subquery()
            # Bound as 64-bit integers: typed as the row number's INTEGER, PostgreSQL refused values past 2^31 - 1.
            low = options.skip or 0
            bounds = [inner.c.rn > literal(low, BigInteger())]
            if options.top is not None:
                bounds.append(inner.c.rn <= literal(min(low + options.top, P.MAX_INT64), BigInteger()))
            stmt: Select[Any] = select(inner).where(*bounds).order_by(inner.c.owner, inner.c.rn)
        else:
            stmt = cols.select_from(from_).where(*conds).order_by(owner, *(ordered(o, d) for o, d in order))
        grouped: dict[Any, list[Entity]] = defaultdict(list)
        flat, rows, at = self.entities(es, names, self.session.execute(stmt))
        for row, entity in zip(rows, flat, strict=True):
            grouped[row[at["owner"]]].append(entity)
        self.complete(es, flat, names, options.expand)
        return grouped

    def related_counts(self, es: EntitySet, nav: Navigation, options: Options, owner_ids: list[Any]) -> dict[Any, int]:
        t = self.compiler.alias(es)
        scope = Scope(es, t)
        owner, conds = self.owner_link(nav, t)
        conds.append(owner.in_(owner_ids))
        if options.filter is not None:
            conds.append(self.compiler.where(options.filter, scope))
        stmt = select(owner, func.count()).select_from(scope.from_clause()).where(*conds).group_by(owner)
        return {o: int(n) for o, n in self.session.execute(stmt).all()}

    def owner_link(self, nav: Navigation, t: FromClause) -> tuple[ColumnElement[Any], list[ColumnElement[bool]]]:
        """The owner-id expression for target alias ``t`` of a collection navigation, and its conditions."""
        conds: list[ColumnElement[bool]] = [self.compiler.in_workspace(t)]
        conds.extend(t.c[col] == value for col, value in nav.extra)
        if nav.back is not None:
            return t.c[nav.back], conds
        assert nav.via is not None
        src, dst = nav.via
        link = self.compiler.link()
        conds.extend([self.compiler.in_workspace(link), link.c[dst] == t.c.id])
        return link.c[src], conds


def navigation(es: EntitySet, item: P.ExpandItem) -> Navigation:
    """The navigation an expand item names (single segment)."""
    if len(item.path) != 1:
        raise ODataUnsupported("multi-segment $expand paths are not supported")
    nav = es.navigations.get(item.path[0])
    if nav is None:
        raise ODataBadQuery(f"{es.type_name} has no navigation property {item.path[0]}")
    return nav


def json_ready(es: EntitySet, names: list[str]) -> bool:
    """Whether the database can write these properties' JSON exactly as the Python writer would (every
    type but Edm.Decimal, whose exact digits and IEEE754Compatible form stay with the writer)."""
    return all(es.properties[n].edm != "Edm.Decimal" for n in names)


@functools.lru_cache(maxsize=256)
def _document(set_name: str, names: tuple[str, ...], t: FromClause, sqlite: bool) -> ColumnElement[str]:
    """:func:`json_document`, built once per alias object (aliases are reused, compiler.named_alias): the
    expression was a tenth of a small feed request's time."""
    return json_document(SETS[set_name], names, t, sqlite)


def stored_document(es: EntitySet, names: Sequence[str], t: FromClause) -> ColumnElement[str] | None:
    """The column holding the entity as written (:data:`STORED`) when these are all its properties.

    A page reads that column alone and computes only the documents of rows where it holds NULL (rows
    written before the column existed), in a second statement. ``coalesce(column, <the document's
    expression>)`` in the page's own statement gave the same rows, but SQLAlchemy walked the whole expression
    (54 constants) to make the statement's cache key on every page: 0.5 ms of each export page's 7 ms of
    server CPU (bench/JOURNAL.md)."""
    column = STORED.get(es.name)
    return t.c[column] if column is not None and list(names) == list(es.properties) else None


# Entity sets whose rows keep their whole entity as the feed writes it, in this column. A full export then
# reads one column per row, as a plain SELECT does, instead of formatting every property and ordering each
# user's tags and aliases in correlated subqueries (four fifths of the page's SQL time, bench/JOURNAL.md).
# Every write of a user, its tags or its aliases writes it with the row (``db.feed.feed_text``).
STORED = {"Users": "feed_json"}


def feed_document(t: FromClause, sqlite: bool) -> ColumnElement[str]:
    """The Users entity with every property computed by the database from the row, its tags and aliases, as
    :func:`json_document` writes it: what a row whose ``feed_json`` is NULL reads, and the reference the
    written text (``db.feed.feed_text``) is checked against."""
    es = SETS["Users"]
    return json_document(es, list(es.properties), t, sqlite)


def json_document(es: EntitySet, names: Sequence[str], t: FromClause, sqlite: bool) -> ColumnElement[str]:
    """The entity as a JSON object built in SQL (``json_object`` / ``json_build_object``), with the same
    members, order and value forms as the writer: the export of a large set is then the database's work,
    and Python only joins the texts instead of building and encoding a dict per row."""
    pairs: list[Any] = []
    for name in names:
        pairs += [literal(name), _json_value(es.properties[name], t, sqlite)]
    if sqlite:
        return func.json_object(*pairs)
    return cast(func.json_build_object(*pairs), Text)  # as text: the driver would parse json into dicts


def _json_value(prop: Any, t: FromClause, sqlite: bool) -> Any:
    if prop.items is not None:
        items = prop.items
        owned = and_(items.c.workspace_id == t.c.workspace_id, items.c.user_id == t.c.id)
        if sqlite:  # SQLite 3.40 has no ORDER BY inside aggregates: order in a subquery first
            ordered_items = select(items.c.value).where(owned).order_by(items.c.position).correlate(t).subquery()
            return func.json(select(func.json_group_array(ordered_items.c.value)).scalar_subquery())
        agg = select(func.json_agg(aggregate_order_by(items.c.value, items.c.position))).where(owned).correlate(t)
        return func.coalesce(agg.scalar_subquery(), literal_column("'[]'::json"))
    col = prop.sql(t)
    if prop.edm == "Edm.Guid" and sqlite:  # stored as 32 hex digits; on the wire 8-4-4-4-12
        return feed.guid_text(col)
    if prop.edm == "Edm.DateTimeOffset":  # naive UTC; on the wire YYYY-MM-DDTHH:MM:SS.ffffffZ
        if sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
            return func.substr(col, 1, 10) + "T" + func.substr(col, 12) + wire.TIME_SUFFIX
        return func.to_char(col, wire.TIME_POSTGRESQL)
    if prop.edm == "Edm.Boolean" and sqlite:
        return func.json(case((col.is_(None), None), (col, "true"), else_="false"))
    return col


def output(es: EntitySet, name: str, t: FromClause) -> ColumnElement[Any]:
    """The column a property is read from for output (numberValue comes from the exact JSON text)."""
    if es.name == "CustomVariables" and name == "numberValue":
        return t.c.value_json
    return es.properties[name].sql(t)


def ordered(expr: ColumnElement[Any], descending: bool) -> Any:
    """Explicit null placement, identical on both databases: nulls first ascending, last descending. A column
    that cannot be null is ordered plainly, so PostgreSQL can walk its index (ASC NULLS LAST by default)
    instead of sorting the whole set for every page (keys are never null)."""
    if getattr(expr, "nullable", True) is False:
        return expr.desc() if descending else expr.asc()
    return expr.desc().nulls_last() if descending else expr.asc().nulls_first()


def keyset(order: list[tuple[ColumnElement[Any], bool]], after: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``after`` in ``order`` (with the null placement of :func:`ordered`)."""
    alternatives = []
    for i, (expr, descending) in enumerate(order):
        equal = [_equal(order[j][0], after[j]) for j in range(i)]
        alternatives.append(and_(*equal, _beyond(expr, after[i], descending)))
    return or_(*alternatives)


def _equal(expr: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return expr.is_(None) if value is None else expr == _bind(expr, value)


def _beyond(expr: ColumnElement[Any], value: Any, descending: bool) -> ColumnElement[bool]:
    if descending:
        return false() if value is None else or_(expr < _bind(expr, value), expr.is_(None))
    return expr.is_not(None) if value is None else expr > _bind(expr, value)


def _bind(expr: ColumnElement[Any], value: Any) -> Any:
    from sqlalchemy import literal

    return literal(value, expr.type)


def encode_value(value: Any) -> list[Any]:
    """A keyset value as tagged JSON for the skip token."""
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, dt.date):
        return ["d", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", value.hex]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if isinstance(value, bool):
        return ["b", value]
    return ["v", value]


def decode_value(tagged: list[Any]) -> Any:
    """The inverse of :func:`encode_value`."""
    tag, value = tagged
    if tag == "dt":
        return dt.datetime.fromisoformat(value)
    if tag == "d":
        return dt.date.fromisoformat(value)
    if tag == "u":
        return uuid.UUID(value)
    if tag == "n":
        return Decimal(value)
    return value


__all__ = ["Entity", "Options", "Page", "Reader", "decode_value", "encode_value", "selected", "true"]
