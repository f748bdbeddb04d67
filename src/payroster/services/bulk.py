"""Bulk upsert: up to 100,000 user rows applied as sequential upserts would be, in one transaction.

Set-based: existing users, tags and aliases are read in a few chunked queries, the rows are folded in
memory in order, and the result is written a few thousand rows per statement (no per-row round trips).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from payroster.db import rows
from payroster.db.engine import Database
from payroster.db.feed import feed_text
from payroster.db.models import AuditEvent, User, UserAlias, UserTag, table, utcnow
from payroster.domain import normalize
from payroster.domain.errors import Detail, Invalid
from payroster.ids import new_id
from payroster.observability import metrics
from payroster.services import audit, reads, sessions, userkernel, users
from payroster.services.context import Actor
from payroster.services.inputs import UserInput, field_pointer, parse_user
from payroster.services.userkernel import UserState

ANALYZE_AFTER = 500  # rows
CHUNK = 5000  # well under the bound-parameter limits of SQLite (32,766) and PostgreSQL (65,535)
FLUSH = 10_000  # users whose rows are built before they are inserted


# A batch's counts and rows: the kernel's outcome, under the name the doors use.
BulkResult = userkernel.Outcome


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


def _load_states(session: Session, ws: uuid.UUID, keys: list[str]) -> dict[str, UserState]:
    """The batch's existing users with their tags and aliases, by normalised e-mail, in chunked reads."""
    states: dict[str, UserState] = {}
    cols = (
        User.id, User.email, User.email_key, User.role, User.active, User.first_name, User.last_name,
        User.direct_manager_id, User.created_at,
    )  # fmt: skip
    for chunk in userkernel.chunks(keys):
        for u in session.execute(select(*cols).where(User.workspace_id == ws, User.email_key.in_(chunk))):
            states[u.email_key] = UserState(
                u.id, u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, [], [], True,
                u.email_key, u.created_at,
            )  # fmt: skip
    by_id = {s.id: s for s in states.values()}
    for chunk in userkernel.chunks(list(by_id)):
        for kind, uid, value, position in users.items_of(session, ws, list(chunk)):
            getattr(by_id[uid], kind).append(value)
            setattr(by_id[uid], f"next_{kind}", position + 1)
    for s in states.values():
        s.loaded()
    return states


def managers_by_email(
    session: Session, ws: uuid.UUID, inputs: list[UserInput], managers: list[str | None]
) -> tuple[dict[str, uuid.UUID], list[Detail]]:
    """Each row's manager named by e-mail (``managers[n]``, None where row ``n`` names none) set as its
    ``direct_manager_id``: a user of the workspace, or one a row of the batch creates, whose id is then reserved
    (by key, for ``userkernel.plan``) so that a row may come before its manager's. Returns the reserved ids and
    a problem for each row whose e-mail is neither (``/n/directManagerEmail``)."""
    wanted = {normalize.email_key(m) for m in managers if m}
    existing = reads.ids_by_key(session, ws, User, wanted)
    created = {normalize.email_key(i.email) for i in inputs if isinstance(i.email, str)} - existing.keys()
    reserved = {k: new_id() for k in wanted & created}
    problems: list[Detail] = []
    for n, (inp, manager) in enumerate(zip(inputs, managers, strict=True)):
        if not manager:
            continue
        key = normalize.email_key(manager)
        uid = existing.get(key) or reserved.get(key)
        if uid is None:
            message = "no user of this workspace or of these rows has this e-mail"
            problems.append(Detail("unknownUser", message, f"/{n}/directManagerEmail"))
        else:
            inp.direct_manager_id = uid
    return reserved, problems


def apply(
    session: Session, actor: Actor, inputs: list[UserInput], managers: list[str | None] | None = None
) -> BulkResult:
    """Fold the rows in order, check every rule, then write set-based; any problem writes nothing. ``managers``:
    the rows' managers by e-mail (:func:`managers_by_email`)."""
    states, result = _plan(session, actor, inputs, managers)
    _write(session, actor, states.values())
    return result


def run(db: Database, actor: Actor, inputs: list[UserInput], managers: list[str | None] | None = None) -> BulkResult:
    """``apply`` in one transaction that has the workspace to itself; after a large import the planner's
    statistics are refreshed, so the next queries are planned for the new table sizes rather than for
    the old ones (PostgreSQL's autovacuum would only get to it a while later)."""
    with db.write(actor.workspace_id, exclusive=True) as session:
        result = apply(session, actor, inputs, managers)
    metrics.imported(actor.channel, result.created, result.updated, result.unchanged)
    if len(inputs) >= ANALYZE_AFTER:
        db.refresh_statistics(("users", "user_tags", "user_aliases", "audit_events"))
    return result


def check(
    session: Session, actor: Actor, inputs: list[UserInput], managers: list[str | None] | None = None
) -> BulkResult:
    """What ``apply`` would do, without writing: the counts, or ``Invalid`` with every row's problems."""
    return _plan(session, actor, inputs, managers)[1]


def _plan(
    session: Session, actor: Actor, inputs: list[UserInput], managers: list[str | None] | None
) -> tuple[dict[str, UserState], BulkResult]:
    """The kernel's fold and checks over the batch, around the set-based read of its existing users."""
    ws = actor.workspace_id
    reserved, problems = managers_by_email(session, ws, inputs, managers) if managers else ({}, [])
    keys = [normalize.email_key(i.email) for i in inputs]
    states = _load_states(session, ws, list(dict.fromkeys(keys)))
    result, found = userkernel.plan(
        session, ws, inputs, keys, states, userkernel.in_batch, whole=True, reserved=reserved
    )
    problems += found
    if problems:
        raise Invalid("invalid rows; nothing was written", details=problems)
    return states, result


def _write(session: Session, actor: Actor, states: Iterable[UserState]) -> None:
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
    keys = userkernel.Keys()  # tags repeat across users: normalise each once

    def items(s: UserState, kind: str, uid: Any) -> Iterator[tuple[Any, ...]]:
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

    dated: list[UserState] = []
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


def _write_timelines(session: Session, actor: Actor, dated: list[UserState]) -> None:
    """The batch's manager timelines (after the users they name) with an event per changed period."""
    audit.record_many(session, userkernel.write_timelines(session, actor, dated))


USER_COLUMNS = (
    "workspace_id", "id", "email", "email_key", "role", "active", "first_name", "last_name", "created_at",
    "updated_at", "scim_hidden", "feed_json",
)  # fmt: skip
ITEM_COLUMNS = ("workspace_id", "user_id", "value_key", "value", "position")


def _by_key(table: Any) -> Any:
    """``UPDATE users WHERE (workspace_id, id) = (:b_ws, :b_id)`` for Core executemany."""
    return update(table).where(table.c.workspace_id == bindparam("b_ws"), table.c.id == bindparam("b_id"))
