"""Delta links (README.md, "OData feed", "Changes since a read"): what changed in a tracked query since a
position of the workspace's change feed (services/changes.py).

A delta link holds a position of the feed, signed and bound to the workspace and the query. Reading it takes
the events numbered after that position, collects every id they name (their targets and the ids in their
changes), widens them along the navigations the query's ``$filter`` and ``$expand`` follow (a team renamed
changes every user whose expanded ``teams`` shows it), and evaluates the query again restricted to those keys:
a key it answers is an added or changed entity, shown whole; any other key that is an entity of the set, or
was deleted from it, is a removed one. Naming too many keys costs time, never correctness; naming too few
would lose a change, so the rules below over-approximate (docs/architecture.md, "Delta links").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select, tuple_
from sqlalchemy.orm import Session

from payroster.odata import parser as P
from payroster.odata import tokens
from payroster.odata.errors import ODataBadQuery, ODataNotFound, ODataUnsupported
from payroster.odata.model import MEMBERS, SETS, EntitySet
from payroster.odata.query import Entity, Options, Reader
from payroster.services import changes
from payroster.services.scoping import in_workspace

TRACKED = ("Users", "Teams", "TeamMembers", "CustomVariables")
KIND = "delta"
CHUNK = 5000  # ids per IN list: well under SQLite's and psycopg's bound-parameter limits
MAX_TOKEN_CHARS = 1024  # a token is ~150 characters; longer ones are refused before they are decoded
_GUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Key = Any  # an entity's key: its id, or (teamId, systemUserId) for TeamMembers
Tree = dict[str, "Tree"]  # the navigations a query follows, each with those it follows from there


@dataclass(frozen=True)
class Position:
    """A delta token's state: changes after ``since``; while paging, up to ``upto`` and past key ``after``."""

    since: int
    upto: int | None = None
    after: Key | None = None


def check(es: EntitySet, options: Options, window_given: bool) -> None:
    """Refuse a tracked read whose answer a delta could not follow (501)."""
    if es.name not in TRACKED:
        raise ODataUnsupported(f"{es.name} does not track changes; read /api/v1/changes for every change")
    if options.top is not None or options.skip:
        raise ODataUnsupported("delta queries do not combine with $top or $skip")
    if window_given:
        raise ODataUnsupported("delta queries follow today's data: $at, $from and $to do not apply")


def dump(secret: str, bound: str, workspace_id: uuid.UUID, at: Position) -> str:
    """The token of a position: signed, bound to the workspace and the query."""
    state: dict[str, Any] = {"k": KIND, "w": workspace_id.hex, "q": bound, "s": at.since}
    if at.upto is not None:
        state["m"] = at.upto
        state["a"] = _key_text(at.after)
    return tokens.sign(secret, state)


def load(secret: str, token: str, workspace_id: uuid.UUID, bound: str) -> Position:
    """The position a genuine token of this workspace and query holds: 400 when altered, malformed or of
    another query, 404 when of another workspace (answered as an unknown token, as other workspaces' ids are)."""
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError("too long")
        state = tokens.unseal(secret, token)
    except ValueError:
        raise ODataBadQuery("the delta token is malformed or was altered", target="$deltatoken") from None
    if state.get("k") != KIND:
        raise ODataBadQuery("the delta token is malformed or was altered", target="$deltatoken")
    if state.get("w") != workspace_id.hex:
        raise ODataNotFound("unknown delta token", target="$deltatoken")
    if state.get("q") != bound:
        raise ODataBadQuery("the delta token belongs to another query", target="$deltatoken")
    match state:
        case {"s": int(since), "m": int(upto), "a": after}:
            return Position(since, upto, _key_of(after))
        case {"s": int(since)}:
            return Position(since)
    raise ODataBadQuery("the delta token is malformed", target="$deltatoken")


def _key_text(key: Key | None) -> Any:
    if isinstance(key, tuple):
        return [k.hex for k in key]
    return None if key is None else key.hex


def _key_of(text: Any) -> Key | None:
    try:
        if isinstance(text, list):
            return tuple(uuid.UUID(k) for k in text)
        return None if text is None else uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        raise ODataBadQuery("the delta token is malformed", target="$deltatoken") from None


def start(session: Session, workspace_id: uuid.UUID) -> int:
    """The position a tracked read starts from, read before its data: every change numbered up to it is in
    what the read sees, a later one is numbered past it (docs/architecture.md, "Delta links")."""
    return changes.counter(session, workspace_id)[0]


# --- what changed ----------------------------------------------------------------------------------


@dataclass
class Changed:
    """What the events of a window name."""

    ids: set[uuid.UUID] = field(default_factory=set)  # every id: targets and ids in the changes
    pairs: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)  # (team, user) of membership events
    deleted: dict[str, set[uuid.UUID]] = field(default_factory=dict)  # per set, the ids removed for good


def changed(events: Iterable[changes.Event]) -> Changed:
    """The ids, pairs and deletions the events name."""
    out = Changed()
    teams, variables = out.deleted.setdefault("Teams", set()), out.deleted.setdefault("CustomVariables", set())
    for event in events:
        out.ids.add(event.target_id)
        text = event.changes.encode() if isinstance(event.changes, str) else bytes(event.changes)
        out.ids.update(uuid.UUID(m.decode()) for m in _GUID.findall(text))
        if event.action == "team.deleted":
            teams.add(event.target_id)
        if event.target_type == "membership" or b"customVariableIds" in text:
            for item in orjson.loads(text):
                name, values = item.get("field"), (item.get("before"), item.get("after"))
                if name == "systemUserId" and event.target_type == "membership":
                    out.pairs.update((event.target_id, uuid.UUID(v)) for v in values if isinstance(v, str))
                elif name == "customVariableIds":
                    variables.update(uuid.UUID(v) for v in values[0] or [])
    return out


def dependencies(es: EntitySet, options: Options) -> Tree:
    """The navigations the query's ``$filter`` and ``$expand`` follow, nested."""
    tree: Tree = {}
    if options.filter is not None:
        _walk(options.filter, es, tree, {})
    for item in options.expand:
        nav = es.navigations.get(item.path[0])
        if nav is None:
            continue
        inner = dependencies(SETS[nav.target], Options(filter=item.filter, expand=item.expand))
        _merge(tree.setdefault(nav.name, {}), inner)
    return tree


def _merge(into: Tree, other: Tree) -> None:
    for name, sub in other.items():
        _merge(into.setdefault(name, {}), sub)


def _walk(node: P.Node, es: EntitySet, tree: Tree, names: dict[str, tuple[EntitySet, Tree]]) -> None:
    match node:
        case P.Prop(path) | P.Count(path):
            _follow(path, es, tree, names)
        case P.Lambda(path, _, var, body):
            target, sub = _follow(path, es, tree, names)
            if body is not None and var is not None:
                _walk(body, es, tree, {**names, var: (target, sub)})
        case P.Call(_, args):
            for arg in args:
                _walk(arg, es, tree, names)
        case P.BinOp(_, left, right):
            _walk(left, es, tree, names)
            _walk(right, es, tree, names)
        case P.Not(operand) | P.Neg(operand):
            _walk(operand, es, tree, names)
        case P.In(left, items):
            _walk(left, es, tree, names)
            for item in items:
                _walk(item, es, tree, names)


def _follow(
    path: tuple[str, ...], es: EntitySet, tree: Tree, names: dict[str, tuple[EntitySet, Tree]]
) -> tuple[EntitySet, Tree]:
    """The set and the branch a member path ends in, the navigations on its way added to ``tree``."""
    here, branch = es, tree
    if path and path[0] in names:
        here, branch = names[path[0]]
        path = path[1:]
    elif path and path[0] == "$it":
        path = path[1:]
    for name in path:
        nav = here.navigations.get(name)
        if nav is None:
            break
        branch = branch.setdefault(name, {})
        here = SETS[nav.target]
    return here, branch


class Keys:
    """The keys of each set that the changes of a window may concern, read through one session."""

    def __init__(self, reader: Reader, what: Changed) -> None:
        self.session = reader.session
        self.ws = reader.ws
        self.what = what
        self.existing: dict[str, set[Key]] = {}

    def affected(self, es: EntitySet, tree: Tree) -> set[Key]:
        """The keys of ``es`` whose entity, as the query shows it, may have changed: its own, and those of the
        entities that reach a changed one through a followed navigation (today's links; a link that changed
        is an event naming both ends)."""
        keys = self._own(es)
        for name, sub in tree.items():
            nav = es.navigations[name]
            targets = self.affected(SETS[nav.target], sub)
            keys |= self._reaching(es, nav.name, targets)
        return keys

    def exists(self, es: EntitySet, keys: Sequence[Key]) -> set[Key]:
        """Which of the keys are entities of the set today."""
        found: set[Key] = set()
        for chunk in _chunks(list(keys)):
            if es.name == "TeamMembers":
                stmt = select(MEMBERS.c.team_id, MEMBERS.c.user_id).where(
                    in_workspace(MEMBERS.c, self.ws), tuple_(MEMBERS.c.team_id, MEMBERS.c.user_id).in_(chunk)
                )
                found.update((t, u) for t, u in self.session.execute(stmt))
            else:
                t = es.table
                stmt2 = select(t.c.id).where(in_workspace(t.c, self.ws), t.c.id.in_(chunk))
                found.update(self.session.scalars(stmt2))
        return found

    def _own(self, es: EntitySet) -> set[Key]:
        if es.name == "TeamMembers":
            return set(self.what.pairs)
        if es.name not in self.existing:
            self.existing[es.name] = self.exists(es, list(self.what.ids))
        return self.existing[es.name] | self.what.deleted.get(es.name, set())

    def _reaching(self, es: EntitySet, name: str, targets: set[Key]) -> set[Key]:
        """The keys of ``es`` whose navigation ``name`` leads today to one of ``targets``."""
        nav = es.navigations[name]
        if not targets:
            return set()
        target = SETS[nav.target]
        if target.name == "TeamMembers" and nav.back is not None:  # a pair names its team and its user
            return {pair[0] if nav.back == "team_id" else pair[1] for pair in targets}
        source = es.table
        found: set[Key] = set()
        for chunk in _chunks(list(targets)):
            if nav.fk is not None and es.name == "TeamMembers":
                stmt: Any = select(MEMBERS.c.team_id, MEMBERS.c.user_id).where(
                    in_workspace(MEMBERS.c, self.ws), MEMBERS.c[nav.fk].in_(chunk)
                )
                found.update((t, u) for t, u in self.session.execute(stmt))
                continue
            if nav.fk is not None:
                stmt = select(source.c.id).where(in_workspace(source.c, self.ws), source.c[nav.fk].in_(chunk))
            elif nav.via is not None:
                src, dst = nav.via
                stmt = select(MEMBERS.c[src]).where(in_workspace(MEMBERS.c, self.ws), MEMBERS.c[dst].in_(chunk))
            else:
                assert nav.back is not None
                t = target.table
                conds = [in_workspace(t.c, self.ws), t.c.id.in_(chunk)]
                conds += [t.c[col] == value for col, value in nav.extra]
                stmt = select(t.c[nav.back]).where(and_(*conds))
            found.update(self.session.scalars(stmt))
        return found


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


# --- a page of a delta -------------------------------------------------------------------------------


@dataclass
class DeltaPage:
    """The entities of a page that the query answers, the keys it no longer answers (with the reason), and
    the last key of the page when another follows."""

    entities: list[Entity]
    removed: list[tuple[Key, str]]
    after: Key | None
    documents: list[str] | None = None  # instead of entities: their JSON, written by the database


def page(
    reader: Reader, es: EntitySet, options: Options, at: Position, upto: int, size: int, as_json: bool = False
) -> DeltaPage:
    """One page of the changes after ``at.since`` up to ``upto``, in key order after ``at.after``; with
    ``as_json``, the entities come as the database writes them (``Reader.page``), as a read's page would."""
    what = changed(changes.targets(reader.session, reader.ws, at.since, upto))
    keys = Keys(reader, what)
    candidates = sorted(keys.affected(es, dependencies(es, options)), key=_order)
    if at.after is not None:
        past = _order(at.after)
        candidates = [k for k in candidates if _order(k) > past]
    chunk, more = candidates[:size], len(candidates) > size
    if not chunk:
        return DeltaPage([], [], None)
    shaping = Options(filter=options.filter, select=options.select, expand=options.expand)
    found = reader.page(es, shaping, len(chunk), base=_among(es, chunk), as_json=as_json, with_keys=as_json)
    if found.keys is not None:
        answered = {k if len(k) > 1 else k[0] for k in found.keys}
    else:
        answered = {key(es, e) for e in found.entities}
    absent = [k for k in chunk if k not in answered]
    still = keys.exists(es, absent)
    removed = [(k, "changed" if k in still else "deleted") for k in absent]
    return DeltaPage(found.entities, removed, chunk[-1] if more else None, found.documents)


def _order(key: Key) -> Any:
    """A key's place in a delta's pages: its ids as integers (comparing ``uuid.UUID`` objects is slow)."""
    return tuple(k.int for k in key) if isinstance(key, tuple) else key.int


def key(es: EntitySet, entity: Entity) -> Key:
    """An entity's key as the delta compares it."""
    if len(es.keys) > 1:
        return tuple(entity.keys[k] for k in es.keys)
    return entity.keys[es.keys[0]]


def _among(es: EntitySet, keys: list[Key]) -> Any:
    """A base condition selecting the entities with these keys."""
    if len(es.keys) > 1:
        cols = [es.properties[k].sql for k in es.keys]
        return lambda t, _c: tuple_(*(c(t) for c in cols)).in_(keys)
    column = es.properties[es.keys[0]].sql
    return lambda t, _c: column(t).in_(keys)


def location(es: EntitySet, key: Key) -> str:
    """The entity's canonical path: ``Users(<id>)``, ``TeamMembers(teamId=<id>,systemUserId=<id>)``."""
    if isinstance(key, tuple):
        return f"{es.name}({','.join(f'{n}={v}' for n, v in zip(es.keys, key, strict=True))})"
    return f"{es.name}({key})"
