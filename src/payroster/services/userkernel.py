"""The user kernel (docs/rules.md, "Users", "Batches"): a user's state, how one input changes it and the
problems that finds, and the checks over a whole batch as it would leave the workspace (the last full
administrator, management cycles on every date, alias ownership, the role a new user needs, the item limit).

A batch is folded row by row, in order, as sequential upserts would be. A single write is a batch of one
(services/users.py), an import a batch of many (services/bulk.py); the callers only read and write around
:func:`plan`. Each rule and its message is written here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db.models import User, UserAlias, Workspace
from payroster.domain import normalize, periods, wire
from payroster.domain.errors import Conflict, Detail, DomainError, Invalid
from payroster.domain.periods import Period
from payroster.ids import new_id
from payroster.services import hierarchy, timelines
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, UserInput

CHUNK = 5000  # ids or keys per read: well under the bound-parameter limits of SQLite and PostgreSQL
# The codes of problems a single write answers with 409 (the others are 422).
CONFLICTS = frozenset({"lastFullAdmin", "aliasTaken", "cycle"})
ROLE_REQUIRED = "role is required to create a user"
UNKNOWN_MANAGER = "directManagerId is not a user of this workspace"

_NOTHING: Mapping[str, Any] = MappingProxyType({})

# Where a row's problems point: ``/17/`` in a batch, nothing for a single write (its fields are the body's).
Where = Callable[[int], str]


def in_batch(n: int) -> str:
    """Problems of row ``n`` of a batch: ``/n/field``."""
    return f"/{n}/"


def alone(n: int) -> str:
    """Problems of a single write: ``field``."""
    return ""


@dataclass(slots=True)
class UserState:
    """A user's state as a batch folds it: one per user, so no dictionary of its own (slots; a new user's
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
    created_at: Any = None  # an existing user's (a new one's is the write's time)
    initial: Mapping[str, Any] = field(default_factory=lambda: _NOTHING)  # an existing user's snapshot as read
    initial_manager: uuid.UUID | None = None
    next_tags: int = 0  # the position the next tag takes
    next_aliases: int = 0
    dated: list[tuple[Any, uuid.UUID | None]] | None = None  # the batch's manager changes: (from, manager)
    timeline: tuple[list[Period], list[Period]] | None = None  # the manager timeline before and after the batch

    def snapshot(self) -> dict[str, Any]:
        """The audited fields, in wire names."""
        return wire.user_audited(
            self.email, self.role, self.active, self.first_name, self.last_name, self.manager, self.tags, self.aliases
        )

    def loaded(self) -> UserState:
        """This state as read from the database: what the batch changes is measured against it."""
        self.initial, self.initial_manager = self.snapshot(), self.manager
        return self


@dataclass
class Outcome:
    """Counts per row (as sequential upserts would report), each row's user: ``(id, email, created)``, and
    whether each row changed its user (created it or changed a field)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: list[tuple[uuid.UUID, str, bool]] = field(default_factory=list)
    changed: list[bool] = field(default_factory=list)


@dataclass
class Known:
    """What a batch's rules read of the workspace beyond its users' own rows, set-based, before folding."""

    owners: dict[str, tuple[uuid.UUID, str]]  # an alias's key -> its holder's id and e-mail
    ids: set[uuid.UUID]  # users that exist (or that the batch creates): possible managers


class Keys(dict[str, str]):
    """Normalised keys of one batch's tags and aliases, each computed once (the same tags recur on many rows)."""

    def __missing__(self, value: str) -> str:
        self[value] = found = normalize.key(value)
        return found


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``items`` a read's worth at a time."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def plan(
    session: Session,
    ws: uuid.UUID,
    inputs: Sequence[UserInput],
    keys: Sequence[str],
    states: dict[str, UserState],
    where: Where,
    replace: bool = False,
    whole: bool = False,
    reserved: Mapping[str, uuid.UUID] | None = None,
) -> tuple[Outcome, list[Detail]]:
    """Fold ``inputs`` (their users' normalised e-mails ``keys``) in order into ``states`` (the users that exist,
    by key; the new ones are added), then check the batch as a whole. Returns the counts and every problem;
    nothing is written. ``replace``: the lists replace (a PATCH) rather than add. ``whole``: read every
    manager timeline of the workspace at once (a large batch) rather than those a walk reaches. ``reserved``:
    the ids the users the batch creates will have, by key, so that a row may name as manager someone a later
    row creates (``bulk.managers_by_email``)."""
    reserved = reserved or {}
    known = _read_known(session, ws, inputs, states)
    known.ids.update(reserved.values())
    memo = Keys()
    outcome, problems = Outcome(), []
    for n, inp in enumerate(inputs):
        k = keys[n]
        state = states.get(k)
        created = state is None
        if state is None:
            if inp.role is UNSET:
                problems.append(Detail("required", ROLE_REQUIRED, f"{where(n)}role"))
                continue
            state = states[k] = UserState(
                reserved.get(k) or new_id(), inp.email, "Participant", True, None, None, None, [], [], False, k
            )
            known.ids.add(state.id)
        before = None if created else state.snapshot()
        problems += fold(state, inp, where(n), known, memo, replace)
        changed = created or state.snapshot() != before
        outcome.created += created
        outcome.updated += changed and not created
        outcome.unchanged += not changed and not created
        outcome.rows.append((state.id, state.email, created))
        outcome.changed.append(changed)
    batch = _Batch(session, ws, inputs, keys, states, where)
    problems += _admin_problems(batch)
    problems += _cycle_problems(batch, whole)
    return outcome, problems


def refusal(problems: list[Detail]) -> DomainError:
    """A single write's answer to its problems: the first, as a 409 (a rule of the set) or a 422."""
    first = problems[0]
    if first.code in CONFLICTS:
        return Conflict(first.message, target=first.target, code=first.code)
    return Invalid(first.message, target=first.target, details=problems)


def role_and_active(role: str, active: bool, inp: UserInput) -> tuple[str, bool]:
    """Role and flag after ``inp``: Deactivated turns the flag off and keeps the role; a role activates; the
    SCIM ``active`` flag, when given, has the last word."""
    if inp.role is not UNSET:
        active = inp.role != normalize.DEACTIVATED
        role = inp.role if active else role
    if inp.active is not UNSET:
        active = inp.active
    return role, active


def fold(state: UserState, inp: UserInput, at: str, known: Known, key: Keys, replace: bool = False) -> list[Detail]:
    """Apply one input to a user's state; returns the problems of the row (pointers under ``at``)."""
    problems: list[Detail] = []
    if inp.role is not UNSET or inp.active is not UNSET:
        state.role, state.active = role_and_active(state.role, state.active, inp)
    if inp.first_name is not UNSET:
        state.first_name = inp.first_name
    if inp.last_name is not UNSET:
        state.last_name = inp.last_name
    if inp.direct_manager_id is not UNSET:
        if inp.direct_manager_id is not None and inp.direct_manager_id not in known.ids:
            problems.append(Detail("unknownId", UNKNOWN_MANAGER, f"{at}directManagerId"))
        if state.dated is None:
            state.dated = []
        state.dated.append((inp.effective_date, inp.direct_manager_id))
        if inp.effective_date is None:  # from today; a dated change sets today's manager after the batch
            state.manager = inp.direct_manager_id
    if inp.tags is not UNSET:
        state.tags = _merged(state.tags, inp.tags, "tags", at, key, replace, problems)
    if inp.aliases is not UNSET:
        free = []
        for alias in inp.aliases:
            holder = known.owners.setdefault(key[alias], (state.id, state.email))
            if holder[0] != state.id:
                problems.append(alias_taken(alias, holder[1], at))
            else:
                free.append(alias)
        kept = state.aliases
        state.aliases = _merged(kept, free, "aliases", at, key, replace, problems)
        if replace:  # an alias the user gives up is free for the rows after
            for gone in {key[a] for a in kept} - {key[a] for a in free}:
                if known.owners.get(gone, (None,))[0] == state.id:
                    del known.owners[gone]
    return problems


def _merged(
    have: list[str], incoming: list[str], kind: str, at: str, key: Keys, replace: bool, problems: list[Detail]
) -> list[str]:
    """A user's tags or aliases after ``incoming`` is added (or, when ``replace``, set); a list longer than
    ``normalize.MAX_ITEMS`` is a problem."""
    if replace:
        wanted = {key[v] for v in incoming}
        have = [v for v in have if key[v] in wanted]
    seen = {key[v] for v in have}
    added = []
    for v in incoming:
        if (k := key[v]) not in seen:
            seen.add(k)
            added.append(v)
    if len(have) + len(added) > normalize.MAX_ITEMS:
        problems.append(Detail("tooMany", f"a user holds at most {normalize.MAX_ITEMS} {kind}", f"{at}{kind}"))
    return have + added if added or replace else have


def _read_known(session: Session, ws: uuid.UUID, inputs: Sequence[UserInput], states: dict[str, UserState]) -> Known:
    """The holders of the batch's aliases and which of its managers exist, in chunked reads."""
    aliases = list({normalize.key(a) for i in inputs if i.aliases is not UNSET for a in i.aliases})
    managers = list({i.direct_manager_id for i in inputs if i.direct_manager_id not in (UNSET, None)})
    ids = existing_ids(session, ws, managers) | {s.id for s in states.values()}
    return Known(alias_owners(session, ws, aliases), ids)


def alias_owners(session: Session, ws: uuid.UUID, keys: list[str]) -> dict[str, tuple[uuid.UUID, str]]:
    """Who holds each of these alias keys (those no one holds are absent)."""
    owners: dict[str, tuple[uuid.UUID, str]] = {}
    for chunk in chunks(keys):
        stmt = (
            select(UserAlias.value_key, UserAlias.user_id, User.email)
            .join(User, (User.workspace_id == UserAlias.workspace_id) & (User.id == UserAlias.user_id))
            .where(UserAlias.workspace_id == ws, UserAlias.value_key.in_(chunk))
        )
        owners.update({k: (uid, email) for k, uid, email in session.execute(stmt)})
    return owners


def alias_taken(alias: str, holder: str, at: str) -> Detail:
    """An alias belongs to one user of the workspace: giving it to another is refused, never a move."""
    return Detail("aliasTaken", f"alias '{alias}' belongs to {holder}", f"{at}aliases")


def aliases_still_free(session: Session, ws: uuid.UUID, user_id: uuid.UUID, aliases: list[str]) -> None:
    """After a single write: Conflict when a concurrent request took one of these aliases after the check."""
    owners = alias_owners(session, ws, [normalize.key(a) for a in aliases])
    for alias in aliases:
        holder = owners.get(normalize.key(alias))
        if holder is not None and holder[0] != user_id:
            raise refusal([alias_taken(alias, holder[1], "")])


def existing_ids(session: Session, ws: uuid.UUID, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` that are users of the workspace."""
    found: set[uuid.UUID] = set()
    for chunk in chunks(ids):
        found.update(session.scalars(select(User.id).where(User.workspace_id == ws, User.id.in_(chunk))))
    return found


def count_active_admins(session: Session, workspace_id: uuid.UUID, lock: bool = False) -> int:
    """Active FullAdmins of the workspace; ``lock`` serialises concurrent demotions on the workspace row."""
    if lock:
        session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    stmt = (
        select(func.count())
        .select_from(User)
        .where(User.workspace_id == workspace_id, User.role == "FullAdmin", User.active.is_(True))
    )
    return int(session.scalar(stmt) or 0)


def _admin(role: Any, active: Any) -> bool:
    return bool(active) and role == "FullAdmin"


@dataclass
class _Batch:
    """A folded batch, as the checks of the whole set read it."""

    session: Session
    ws: uuid.UUID
    inputs: Sequence[UserInput]
    keys: Sequence[str]  # each row's user's normalised e-mail
    states: dict[str, UserState]
    where: Where

    def last_row(self, keys: Any, *fields: str) -> int:
        """The last row for one of these users (that gives one of ``fields``, when named)."""
        given = (n for n, k in enumerate(self.keys) if k in keys)
        return max(n for n in given if not fields or any(getattr(self.inputs[n], f) is not UNSET for f in fields))


def _admin_problems(batch: _Batch) -> list[Detail]:
    """The last full administrator: the batch may not leave the workspace without an active FullAdmin. The
    problem points at the last row that demotes or deactivates one."""
    states, where = batch.states, batch.where
    was = {s.id for s in states.values() if s.exists and _admin(s.initial["role"], s.initial["active"])}
    if not was:
        return []
    lost = {s.key for s in states.values() if s.id in was and not _admin(s.role, s.active)}
    if not lost:
        return []
    gained = sum(1 for s in states.values() if _admin(s.role, s.active) and s.id not in was)
    if count_active_admins(batch.session, batch.ws, lock=True) - len(lost) + gained > 0:
        return []
    n = batch.last_row(lost, "role", "active")
    verb = "deactivate" if not states[batch.keys[n]].active else "demote"
    why = f"cannot {verb} the last active FullAdmin of the workspace"
    return [Detail("lastFullAdmin", why, f"{where(n)}role")]


def _cycle_problems(batch: _Batch, whole: bool) -> list[Detail]:
    """The batch's manager timelines (each row's change from its ``effectiveDate``, today by default, until the
    next recorded change), today's manager from them, and a problem for each user whose new timeline closes a
    cycle on some date, walking the timelines as the batch leaves them (its rows may point at each other)."""
    session, ws = batch.session, batch.ws
    changed = [s for s in batch.states.values() if s.dated]
    if not changed:
        return []
    today = clock.today()
    if whole:
        stored = timelines.load(session, timelines.MANAGER, ws)
    else:
        mine = [s.id for s in changed if s.exists]
        stored = timelines.load(session, timelines.MANAGER, ws, user_id=mine) if mine else {}
    after: dict[tuple[Any, ...], list[Period]] = dict(stored)
    for state in changed:
        old = stored.get((state.id,), [])
        new = old
        for day, manager in state.dated or []:
            new, _ = periods.set_from(new, day or today, manager)
        state.timeline = (old, timelines.named(periods.with_ids(old, new)))
        state.manager = periods.at(new, today)  # type: ignore[assignment]
        after[(state.id,)] = state.timeline[1]
    created = {s.id for s in changed if not s.exists}

    def periods_of(uid: Any) -> list[Period]:
        if (uid,) not in after:  # a user the walk reaches that the batch does not change: read on demand
            after[(uid,)] = [] if whole or uid in created else hierarchy.manager_timeline(session, ws, uid)
        return after[(uid,)]

    # Only someone's manager can close a cycle: a user the batch creates and no row names closes none.
    named = {m for s in changed for _, m in s.dated or [] if m is not None}
    problems = []
    for state in changed:
        assert state.timeline is not None
        if not state.exists and state.id not in named:
            continue
        start = min(day or today for day, _ in state.dated or [])
        for p in state.timeline[1]:
            if not p.overlaps(start, None):
                continue
            found = periods.first_cycle(periods_of, state.id, p.value, max(start, p.start), p.end)
            if found is not None:
                n = batch.last_row({state.key})
                why = f"directManagerId would create a management cycle on {found.isoformat()}"
                problems.append(Detail("cycle", why, f"{batch.where(n)}directManagerId"))
                break
    return problems


def write_timelines(session: Session, actor: Actor, states: Sequence[UserState]) -> list[dict[str, Any]]:
    """Store the manager timelines the batch changed (after the users they name); returns an audit event per
    changed period, for the caller to record."""
    changes = [((s.id,), *s.timeline) for s in states if s.timeline is not None]
    events: list[dict[str, Any]] = []
    for (uid,), old, new in timelines.write(session, timelines.MANAGER, actor.workspace_id, changes):
        events += hierarchy.timeline_events(actor, "user", uid, hierarchy.manager_change(old, new))
    return events
