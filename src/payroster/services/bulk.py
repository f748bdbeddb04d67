"""Bulk upsert: up to 100,000 user rows applied as sequential upserts would be, in one transaction.

Set-based: existing users, tags and aliases are read in a few chunked queries, the rows are folded in
memory in order, and the result is written a few thousand rows per statement (no per-row round trips).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db import rows
from payroster.db.engine import Database
from payroster.db.feed import feed_text
from payroster.db.models import AuditEvent, User, UserAlias, UserTag, table, utcnow
from payroster.domain import normalize, periods
from payroster.domain.errors import Detail, Invalid
from payroster.domain.periods import Period
from payroster.ids import new_id
from payroster.observability import metrics
from payroster.services import audit, hierarchy, sessions, timelines, users
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, UserInput, field_pointer, parse_user

ANALYZE_AFTER = 500  # rows
CHUNK = 5000  # well under the bound-parameter limits of SQLite (32,766) and PostgreSQL (65,535)
FLUSH = 10_000  # users whose rows are built before they are inserted


_NOTHING: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class _State:
    """A user's folded state across the batch: one per user, so no dictionary of its own (slots; a new user's
    ``initial`` is one shared empty mapping; the next list positions are two integers): some 330 MiB less at
    the peak of a 1,000,000-row import (bench/JOURNAL.md)."""

    id: uuid.UUID
    email: str
    role: str
    active: bool
    first_name: str | None
    last_name: str | None
    manager: uuid.UUID | None
    tags: list[str]
    aliases: list[str]
    exists: bool
    key: str = ""  # the normalised e-mail
    created_at: Any = None  # an existing user's (a new one's is the batch's time)
    initial: Mapping[str, Any] = field(default_factory=lambda: _NOTHING)  # an existing user's snapshot as read
    initial_manager: uuid.UUID | None = None
    next_tags: int = 0  # the position the next tag takes
    next_aliases: int = 0
    dated: list[tuple[Any, uuid.UUID | None]] | None = None  # the batch's manager changes: (from, manager)
    timeline: tuple[list[Period], list[Period]] | None = None  # the manager timeline before and after the batch

    def snapshot(self) -> dict[str, Any]:
        return {
            "emailAddress": self.email,
            "role": self.role,
            "active": self.active,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "directManagerId": str(self.manager) if self.manager else None,
            "tags": list(self.tags),
            "aliases": list(self.aliases),
        }


@dataclass
class BulkResult:
    """Counts per row (as sequential upserts would report) and each row's user."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: list[tuple[uuid.UUID, str, bool]] = field(default_factory=list)


def parse_rows(raw_rows: Iterable[Any], progress: Callable[[int], None] | None = None) -> list[UserInput]:
    """Parse every row; all problems are reported with JSON pointers like ``/17/emailAddress``."""
    inputs: list[UserInput] = []
    problems: list[Detail] = []
    for i, raw in enumerate(raw_rows):
        inp, found = parse_user(raw, field_pointer(f"/{i}"))
        inputs.append(inp)
        problems += found
        if progress is not None and (i + 1) % 10_000 == 0:
            progress(10_000)
    if progress is not None:
        progress(len(inputs) % 10_000)
    if problems:
        raise Invalid(f"{len({p.target.split('/')[1] for p in problems if p.target})} invalid rows", details=problems)
    return inputs


_paused = 0
_paused_lock = threading.Lock()
_resume = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch is parsed, planned and written.

    A 100,000-row batch allocates some million containers that live until it ends (parsed rows, inputs,
    folded states, tuples), none of them in reference cycles; every few hundred allocations set off a
    collection that walked what the batch had built so far, a quarter of the import's time
    (bench/JOURNAL.md). Reference counting still frees everything as usual. The collector is one switch
    per process, so concurrent and nested batches count: it comes back on when the last one ends (and
    only if it was on), then collects whatever cycles other requests made meanwhile.
    """
    global _paused, _resume
    with _paused_lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _load_states(session: Session, ws: uuid.UUID, keys: list[str]) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for chunk in _chunks(keys):
        cols = (
            User.id,
            User.email,
            User.email_key,
            User.role,
            User.active,
            User.first_name,
            User.last_name,
            User.direct_manager_id,
            User.created_at,
        )
        for u in session.execute(select(*cols).where(User.workspace_id == ws, User.email_key.in_(chunk))):
            states[u.email_key] = _State(
                u.id, u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, [], [], True,
                u.email_key, u.created_at,
            )  # fmt: skip
    by_id = {s.id: s for s in states.values()}
    for chunk in _chunks(list(by_id)):
        for kind, uid, value, position in users.items_of(session, ws, list(chunk)):
            getattr(by_id[uid], kind).append(value)
            setattr(by_id[uid], f"next_{kind}", position + 1)
    for s in states.values():
        s.initial, s.initial_manager = s.snapshot(), s.manager
    return states


def _alias_owners(session: Session, ws: uuid.UUID, keys: list[str]) -> dict[str, uuid.UUID]:
    owners: dict[str, uuid.UUID] = {}
    for chunk in _chunks(keys):
        stmt = select(UserAlias.value_key, UserAlias.user_id).where(
            UserAlias.workspace_id == ws, UserAlias.value_key.in_(chunk)
        )
        owners.update({k: uid for k, uid in session.execute(stmt)})
    return owners


def _existing_ids(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(User.id).where(User.workspace_id == ws, User.id.in_(chunk))))
    return found


def apply(session: Session, actor: Actor, inputs: list[UserInput]) -> BulkResult:
    """Fold the rows in order, check every rule, then write set-based; any problem writes nothing."""
    states, result = _plan(session, actor, inputs)
    _write(session, actor, states.values())
    return result


def run(db: Database, actor: Actor, inputs: list[UserInput]) -> BulkResult:
    """``apply`` in one transaction that has the workspace to itself; after a large import the planner's
    statistics are refreshed, so the next queries are planned for the new table sizes rather than for
    the old ones (PostgreSQL's autovacuum would only get to it a while later)."""
    with db.write(actor.workspace_id, exclusive=True) as session:
        result = apply(session, actor, inputs)
    metrics.imported(actor.channel, result.created, result.updated, result.unchanged)
    if len(inputs) >= ANALYZE_AFTER:
        db.refresh_statistics(("users", "user_tags", "user_aliases", "audit_events"))
    return result


def check(session: Session, actor: Actor, inputs: list[UserInput]) -> BulkResult:
    """What ``apply`` would do, without writing: the counts, or ``Invalid`` with every row's problems."""
    return _plan(session, actor, inputs)[1]


def _plan(session: Session, actor: Actor, inputs: list[UserInput]) -> tuple[dict[str, _State], BulkResult]:
    ws = actor.workspace_id
    email_keys = [normalize.email_key(i.email) for i in inputs]
    states = _load_states(session, ws, list(dict.fromkeys(email_keys)))
    memo = _Keys()
    alias_keys = list({normalize.key(a) for i in inputs if i.aliases is not UNSET for a in i.aliases})
    owners = _alias_owners(session, ws, alias_keys)
    managers = [i.direct_manager_id for i in inputs if i.direct_manager_id not in (UNSET, None)]
    known_ids = _existing_ids(session, ws, list(set(managers))) | {s.id for s in states.values()}
    result, problems = BulkResult(), []
    for n, inp in enumerate(inputs):
        k = email_keys[n]
        state = states.get(k)
        created = state is None
        if state is None:
            if inp.role is UNSET:
                problems.append(Detail("required", "role is required to create a user", f"/{n}/role"))
                continue
            state = states[k] = _State(new_id(), inp.email, "Participant", True, None, None, None, [], [], False, k)
            known_ids.add(state.id)
        before = None if created else state.snapshot()
        problems += _fold(state, inp, n, owners, known_ids, memo)
        changed = created or state.snapshot() != before
        result.created += created
        result.updated += changed and not created
        result.unchanged += not changed and not created
        result.rows.append((state.id, state.email, created))
    problems += _admin_problems(session, ws, inputs, states)
    problems += _cycle_problems(session, ws, inputs, states)
    if problems:
        raise Invalid("invalid rows; nothing was written", details=problems)
    return states, result


class _Keys(dict[str, str]):
    """Normalised keys of one batch's tags and aliases, each computed once (the same tags recur on many rows)."""

    def __missing__(self, value: str) -> str:
        self[value] = found = normalize.key(value)
        return found


def _fold(
    state: _State, inp: UserInput, n: int, owners: dict[str, uuid.UUID], known: set[uuid.UUID], key: _Keys
) -> list[Detail]:
    problems: list[Detail] = []
    if inp.role is not UNSET:
        if inp.role == normalize.DEACTIVATED:
            state.active = False
        else:
            state.role, state.active = inp.role, True
    if inp.first_name is not UNSET:
        state.first_name = inp.first_name
    if inp.last_name is not UNSET:
        state.last_name = inp.last_name
    if inp.direct_manager_id is not UNSET:
        if inp.direct_manager_id is not None and inp.direct_manager_id not in known:
            problems.append(
                Detail("unknownId", "directManagerId is not a user of this workspace", f"/{n}/directManagerId")
            )
        if state.dated is None:
            state.dated = []
        state.dated.append((inp.effective_date, inp.direct_manager_id))
        if inp.effective_date is None:  # from today; a dated change sets today's manager after the batch
            state.manager = inp.direct_manager_id
    if inp.tags is not UNSET:
        have = {key[t] for t in state.tags}
        state.tags += [t for t in inp.tags if key[t] not in have]
    if inp.aliases is not UNSET:
        have = {key[a] for a in state.aliases}
        for alias in inp.aliases:
            k = key[alias]
            holder = owners.setdefault(k, state.id)
            if holder != state.id:
                problems.append(Detail("aliasTaken", f"alias '{alias}' belongs to another user", f"/{n}/aliases"))
            elif k not in have:
                have.add(k)
                state.aliases.append(alias)
    if len(state.tags) > normalize.MAX_ITEMS or len(state.aliases) > normalize.MAX_ITEMS:
        problems.append(Detail("tooMany", f"a user holds at most {normalize.MAX_ITEMS} items", f"/{n}"))
    return problems


def _admin_problems(
    session: Session, ws: uuid.UUID, inputs: list[UserInput], states: dict[str, _State]
) -> list[Detail]:
    was = [s for s in states.values() if s.exists and s.initial["active"] and s.initial["role"] == "FullAdmin"]
    lost = [s for s in was if not (s.active and s.role == "FullAdmin")]
    if not lost:
        return []
    gained = sum(1 for s in states.values() if s.active and s.role == "FullAdmin" and s not in was)
    total = int(
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.workspace_id == ws, User.role == "FullAdmin", User.active.is_(True))
        )
        or 0
    )
    if total - len(lost) + gained > 0:
        return []
    lost_keys = {s.key for s in lost}
    rows = [n for n, i in enumerate(inputs) if normalize.email_key(i.email) in lost_keys and i.role is not UNSET]
    return [Detail("lastFullAdmin", "cannot demote or deactivate the last active FullAdmin", f"/{rows[-1]}/role")]


def _cycle_problems(
    session: Session, ws: uuid.UUID, inputs: list[UserInput], states: dict[str, _State]
) -> list[Detail]:
    """The batch's manager timelines (each row's change from its ``effectiveDate``, today by default, until the
    next recorded change), today's manager from them, and a problem for each user whose new timeline closes a
    cycle on some date: the rule of ``hierarchy.set_manager``, checked here on the whole workspace's timelines
    in memory, as a batch's rows may point at each other."""
    changed = [s for s in states.values() if s.dated]
    if not changed:
        return []
    today = clock.today()
    stored = timelines.load(session, timelines.MANAGER, ws)
    for state in changed:
        old = stored.get((state.id,), [])
        new = old
        for day, manager in state.dated or []:
            new, _ = periods.set_from(new, day or today, manager)
        state.timeline = (old, timelines.named(periods.with_ids(old, new)))
        state.manager = periods.at(new, today)  # type: ignore[assignment]
    after = {key: tl for key, tl in stored.items()}
    after.update({(s.id,): s.timeline[1] for s in changed if s.timeline is not None})
    problems = []
    for state in changed:
        assert state.timeline is not None
        start = min(day or today for day, _ in state.dated or [])
        for p in state.timeline[1]:
            if not p.overlaps(start, None):
                continue
            found = periods.first_cycle(
                lambda uid: after.get((uid,), []), state.id, p.value, max(start, p.start), p.end
            )
            if found is not None:
                n = max(i for i, inp in enumerate(inputs) if normalize.email_key(inp.email) == state.key)
                why = f"directManagerId would create a management cycle on {found.isoformat()}"
                problems.append(Detail("cycle", why, f"/{n}/directManagerId"))
                break
    return problems


def _write(session: Session, actor: Actor, states: Iterable[_State]) -> None:
    """Insert new users, their tags and aliases and every audit event in flushes of ``FLUSH`` users, then set
    new users' managers and update existing users (those two are still built whole). Flushing holds the rows
    of new users to one flush's worth: built whole, a 1,000,000-row import held some 1.2 GB of them at once
    (bench/JOURNAL.md)."""
    ws, now = actor.workspace_id, utcnow()
    d = rows.Driver(session)
    ws_, now_ = d.uid(ws), d.when(now)
    event = audit.event_values(d, actor, now)
    new_users: list[tuple[Any, ...]] = []
    managed: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    tags: list[tuple[Any, ...]] = []
    aliases: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    ended: list[uuid.UUID] = []  # users this batch deactivates: their browser sessions end
    keys = _Keys()  # tags repeat across users: normalise each once

    def items(s: _State, kind: str, uid: Any) -> Iterator[tuple[Any, ...]]:
        """The tags or aliases the batch appended (lists only grow in an upsert)."""
        old, base = len(s.initial.get(kind, [])), getattr(s, f"next_{kind}")
        for p, v in enumerate(getattr(s, kind)[old:]):
            yield ws_, uid, keys[v], v, base + p

    def flush() -> None:
        """Users before their tags and aliases (which reference them); lists emptied in place."""
        for target, columns, batch in (
            (table(User), USER_COLUMNS, new_users),
            (table(UserTag), ITEM_COLUMNS, tags),
            (table(UserAlias), ITEM_COLUMNS, aliases),
            (table(AuditEvent), audit.COLUMNS, events),
        ):
            rows.insert_many(session, target, columns, batch)
            batch.clear()

    dated: list[_State] = []
    for s in states:
        if s.timeline is not None:
            dated.append(s)
        snap = s.snapshot()
        if s.exists and snap == s.initial:
            continue
        uid = d.uid(s.id)
        # The feed's entity as this batch leaves the user, written with the row (no statement recomputes it).
        document = feed_text(
            d.sqlite, id=s.id, email=s.email, role=s.role, active=s.active, first_name=s.first_name,
            last_name=s.last_name, direct_manager_id=s.manager, tags=s.tags, aliases=s.aliases,
            created_at=s.created_at if s.exists else now, updated_at=now,
        )  # fmt: skip
        if s.exists:
            updates.append(
                {
                    "b_ws": ws,
                    "b_id": s.id,
                    "role": s.role,
                    "active": s.active,
                    "first_name": s.first_name,
                    "last_name": s.last_name,
                    "direct_manager_id": s.manager,
                    "updated_at": now,
                    "feed_json": document,
                }
            )
            changes = audit.diff(s.initial, snap)
            if s.initial["active"] and not s.active:
                ended.append(s.id)
        else:
            # Managers may point at users created in this same batch: insert users first without them.
            new_users.append(
                (ws_, uid, s.email, s.key, s.role, d.flag(s.active), s.first_name, s.last_name,
                 now_, now_, d.flag(False), document)
            )  # fmt: skip
            if s.manager is not None:
                managed.append({"b_ws": ws, "b_id": s.id, "m": s.manager})
            changes = audit.created(snap)
        tags.extend(items(s, "tags", uid))
        aliases.extend(items(s, "aliases", uid))
        action = "user.updated" if s.exists else "user.created"
        events.append(event(action, "user", s.id, changes))
        if len(events) >= FLUSH:
            flush()
    flush()
    if managed:
        session.connection().execute(_by_key(table(User)).values(direct_manager_id=bindparam("m")), managed)
    if updates:
        columns: dict[str, Any] = {c: bindparam(c) for c in updates[0] if not c.startswith("b_")}
        session.connection().execute(_by_key(table(User)).values(columns), updates)
    _write_timelines(session, actor, dated)
    # After the updates, which hold the users' rows: a log-in checking the user under a share lock
    # (accounts.start) either committed its session before, and it is deleted here, or sees the deactivation.
    sessions.end_all(session, ws, ended)


def _write_timelines(session: Session, actor: Actor, dated: list[_State]) -> None:
    """The batch's manager timelines (after the users they name) with an event per changed period."""
    changes = [((s.id,), *s.timeline) for s in dated if s.timeline is not None]
    events: list[dict[str, Any]] = []
    for (uid,), old, new in timelines.write(session, timelines.MANAGER, actor.workspace_id, changes):
        events += hierarchy.timeline_events(actor, "user", uid, hierarchy.manager_change(old, new))
    audit.record_many(session, events)


USER_COLUMNS = (
    "workspace_id", "id", "email", "email_key", "role", "active", "first_name", "last_name", "created_at",
    "updated_at", "scim_hidden", "feed_json",
)  # fmt: skip
ITEM_COLUMNS = ("workspace_id", "user_id", "value_key", "value", "position")


def _by_key(table: Any) -> Any:
    """``UPDATE users WHERE (workspace_id, id) = (:b_ws, :b_id)`` for Core executemany."""
    return update(table).where(table.c.workspace_id == bindparam("b_ws"), table.c.id == bindparam("b_id"))
