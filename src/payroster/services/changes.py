"""The change feed: a workspace's audit events numbered in the order they became visible, read after a cursor.

Writes record their audit events as before, without a number. A sequencer numbers the committed events that
have none, under the lock of the workspace's counter row, before a reader goes past the last numbered one
(docs/architecture.md "The change feed"): an event committed after a reader saw number N is numbered after
N, so no reader ever sees a new event below a number it has seen, and numbers have no gaps.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import CursorResult, Row, String, Text, delete, func, select, type_coerce, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, ChangeSequence, Workspace, table, utcnow
from payroster.domain import wire
from payroster.domain.errors import BadRequest, Gone, NotFound, Unavailable
from payroster.services.scoping import insert_ignoring_conflicts

EVENTS = table(AuditEvent)
COUNTERS = table(ChangeSequence)
MAX_CURSOR_CHARS = 256  # a cursor is ~80 characters; anything longer is refused before it is decoded
NUMBER_WAIT = 2.0  # seconds a reader waits for SQLite's write turn to number events; after it, it reads what is
PRUNE_BATCH = 10_000  # events deleted per transaction: a long prune never holds the write turn for long

Event = Row[tuple[Any, ...]]  # a row of ``_FIELDS``

_FIELDS = (
    EVENTS.c.sequence, EVENTS.c.occurred_at, EVENTS.c.action, EVENTS.c.target_type, EVENTS.c.target_id,
    EVENTS.c.actor_kind, EVENTS.c.actor_user_id, EVENTS.c.channel, EVENTS.c.changes,
)  # fmt: skip


@dataclass(frozen=True)
class Page:
    """Events after a position, in sequence order, and the position the next read continues from."""

    events: list[Any]  # rows of ``_FIELDS``; with ``as_json``, each event's JSON text
    last: int


class Cursors:
    """Opaque positions in a workspace's feed: ``[workspace, sequence]`` signed with the server's secret."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="payroster.changes")

    def dump(self, workspace_id: uuid.UUID, sequence: int) -> str:
        """The cursor of a position."""
        return str(self._serializer.dumps([workspace_id.hex, sequence]))

    def load(self, workspace_id: uuid.UUID, cursor: str) -> int:
        """The sequence a cursor of this workspace holds: 400 when malformed or altered, 404 when it is
        another workspace's (answered as an unknown cursor, as any other workspace's id is)."""
        if len(cursor) > MAX_CURSOR_CHARS:
            raise BadRequest("the cursor is malformed", target="after")
        try:
            state = self._serializer.loads(cursor)
        except BadData:
            raise BadRequest("the cursor is malformed or was altered", target="after") from None
        match state:
            case [str(ws), int(sequence)] if sequence >= 0:
                pass
            case _:
                raise BadRequest("the cursor is malformed", target="after")
        if ws != workspace_id.hex:
            raise NotFound("unknown cursor", target="after")
        return sequence


def read(db: Database, workspace_id: uuid.UUID, after: int | None, limit: int, as_json: bool = False) -> Page:
    """Up to ``limit`` events after position ``after`` (None: from the oldest kept), numbering the committed
    events that have no number yet when the page would otherwise stop short of them. With ``as_json`` each event
    is the JSON text :func:`document` would write (:func:`_written_events`).

    404 for a position past the workspace's last number (a cursor from a restored older database), 410 for one
    older than the pruned events (the reader would miss them).
    """
    with db.read() as s:
        last, pruned = counter(s, workspace_id)
        start = pruned if after is None else after
        if start > last:
            raise NotFound("unknown cursor", target="after")
        if start < pruned:
            raise Gone(
                "the cursor is older than the kept changes: full resync needed (read everything, then the feed from "
                "a new cursor)",
                target="after",
            )
        fields = _text_fields(db.is_sqlite) if as_json else _FIELDS
        events: list[Any] = _after(s, workspace_id, start, limit, fields)
        short = len(events) < limit and _has_unnumbered(s, workspace_id, db.is_sqlite)
    if short and number(db, workspace_id, limit - len(events)):
        with db.read() as s:
            more = _after(s, workspace_id, events[-1].sequence if events else start, limit - len(events), fields)
        events += more
    last = events[-1].sequence if events else start
    return Page(_written_events(events, db.is_sqlite) if as_json else events, last)


def at(s: Session, workspace_id: uuid.UUID, sequence: int) -> Event | None:
    """The kept event numbered ``sequence``, or None."""
    query = select(*_FIELDS).where(EVENTS.c.workspace_id == workspace_id, EVENTS.c.sequence == sequence)
    return cast(Event | None, s.execute(query).first())


def number_pending(db: Database, workspace_id: uuid.UUID, rounds: int = 1000) -> None:
    """Number the committed events that have none (up to ``rounds`` batches of ``PRUNE_BATCH``), so that a
    position read next covers them.

    Not needed for correctness (an event numbered later gets a number past any position read now), only to
    make a position read now as recent as the committed data: fewer changes handed out twice (a delta link
    taken before a large import was numbered would hand the whole import out again)."""
    with db.read() as s:
        pending = _has_unnumbered(s, workspace_id, db.is_sqlite)
    while pending and rounds > 0 and number(db, workspace_id, PRUNE_BATCH) == PRUNE_BATCH:
        rounds -= 1


def targets(s: Session, workspace_id: uuid.UUID, after: int, upto: int) -> list[Event]:
    """The events numbered in ``(after, upto]``, in sequence order: what changed between two positions (each
    event's action, target type, target id and changes)."""
    c = EVENTS.c
    query = (
        select(c.action, c.target_type, c.target_id, c.changes)
        .where(EVENTS.c.workspace_id == workspace_id, EVENTS.c.sequence > after, EVENTS.c.sequence <= upto)
        .order_by(EVENTS.c.sequence)
    )
    return cast(list[Event], list(s.execute(query).all()))


def counter(s: Session, workspace_id: uuid.UUID) -> tuple[int, int]:
    """The workspace's last number and the last one pruned away, as this session sees them."""
    row = s.execute(
        select(COUNTERS.c.last_sequence, COUNTERS.c.pruned_through).where(COUNTERS.c.workspace_id == workspace_id)
    ).first()
    return (0, 0) if row is None else (row.last_sequence, row.pruned_through)


def pruned_through(db: Database, workspace_id: uuid.UUID) -> int:
    """The workspace's last number pruned away: a position before it answers 410 (:func:`read`)."""
    with db.read() as s:
        return counter(s, workspace_id)[1]


def _after(s: Session, workspace_id: uuid.UUID, after: int, limit: int, fields: Any = _FIELDS) -> list[Event]:
    query = (
        select(*fields)
        .where(EVENTS.c.workspace_id == workspace_id, EVENTS.c.sequence > after)
        .order_by(EVENTS.c.sequence)
        .limit(limit)
    )
    return cast(list[Event], list(s.execute(query).all()))


def _has_unnumbered(s: Session, workspace_id: uuid.UUID, sqlite: bool) -> bool:
    """Whether the workspace has a committed event without a number: the first entry of the index of those
    (``ix_audit_events_unnumbered``), as :func:`number` walks it.

    Asked without the order, PostgreSQL scanned the whole table when its statistics still said most events had
    no number (taken before a large import was numbered, as after a bench's seeding): 400 ms at 200,000 events,
    paid by every short page, every long poll's read and every caught-up webhook poll (bench/JOURNAL.md, "the
    change feed's read rate at size")."""
    query = (
        select(EVENTS.c.id)
        .where(EVENTS.c.workspace_id == workspace_id, _unnumbered(sqlite))
        .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
        .limit(1)
    )
    return s.execute(query).first() is not None


def number(db: Database, workspace_id: uuid.UUID, most: int, wait: float = NUMBER_WAIT) -> int:
    """Number up to ``most`` committed events of the workspace that have none, oldest first; how many.

    The counter row's lock makes sequencers of one workspace take turns (on SQLite the write turn does), and each
    one's statements see every event committed before it got the lock. Writes do not take it: they run as before.
    When SQLite's write turn stays busy for ``wait`` seconds (another process's import), nothing is numbered now.
    """
    try:
        with db.write(wait=wait) as s:
            last = _locked_counter(s, workspace_id)
            pending = (
                select(EVENTS.c.id, EVENTS.c.occurred_at)
                .where(EVENTS.c.workspace_id == workspace_id, _unnumbered(db.is_sqlite))
                .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
                .limit(most)
                .subquery()
            )
            rank = func.row_number().over(order_by=(pending.c.occurred_at, pending.c.id))
            ranked = select(pending.c.id, rank.label("n")).subquery()
            done = _written(
                s,
                update(EVENTS)
                .where(EVENTS.c.workspace_id == workspace_id, EVENTS.c.id == ranked.c.id)
                .values(sequence=last + ranked.c.n),
            )
            if done:
                s.execute(
                    update(COUNTERS).where(COUNTERS.c.workspace_id == workspace_id).values(last_sequence=last + done)
                )
            return done
    except Unavailable:
        if not db.is_sqlite:
            raise
        return 0


def _unnumbered(sqlite: bool) -> Any:
    """``sequence IS NULL``, so that the oldest events without a number are found in order by their own index.

    SQLite took the unique ``(workspace_id, sequence)`` index for ``sequence IS NULL`` (as if it matched a row or
    two) and sorted every event still without a number to take the oldest ``most``: numbering a page cost time
    in proportion to the whole backlog, ~1 s a batch of 1,000 with 300,000 waiting (bench/JOURNAL.md, "the change
    feed's read rate at size"). Marked ``likely`` it walks ``ix_audit_events_unnumbered`` in its order and stops
    after ``most``. PostgreSQL's statistics find that index without help."""
    condition = EVENTS.c.sequence.is_(None)
    return func.likely(condition) if sqlite else condition


def _locked_counter(s: Session, workspace_id: uuid.UUID) -> int:
    """The workspace's last number, its counter row locked until the transaction ends (made at first use)."""
    query = select(COUNTERS.c.last_sequence).where(COUNTERS.c.workspace_id == workspace_id).with_for_update()
    last = s.execute(query).scalar()
    if last is None:
        values = {"workspace_id": workspace_id, "last_sequence": 0, "pruned_through": 0}
        s.execute(insert_ignoring_conflicts(s, COUNTERS).values(values))
        last = s.execute(query).scalar_one()
    return int(last)


def prune(db: Database, older_than: dt.timedelta) -> int:
    """Delete every workspace's oldest events, those before its first event younger than ``older_than``; the
    number deleted. Each workspace's events are numbered first, so that no event goes unseen by the feed:
    a cursor older than what is left answers 410."""
    cutoff = utcnow() - older_than
    with db.read() as s:
        workspace_ids = list(s.execute(select(Workspace.id)).scalars())
    return sum(_prune_workspace(db, ws, cutoff) for ws in workspace_ids)


def _prune_workspace(db: Database, workspace_id: uuid.UUID, cutoff: dt.datetime) -> int:
    while number(db, workspace_id, PRUNE_BATCH, wait=db.write_wait) == PRUNE_BATCH:
        pass
    with db.read() as s:
        last, pruned = counter(s, workspace_id)
        young = s.execute(
            select(func.min(EVENTS.c.sequence)).where(
                EVENTS.c.workspace_id == workspace_id, EVENTS.c.occurred_at >= cutoff, EVENTS.c.sequence.is_not(None)
            )
        ).scalar()
    through = last if young is None else young - 1
    deleted = 0
    while pruned < through:
        upto = min(through, pruned + PRUNE_BATCH)
        with db.write() as s:
            _locked_counter(s, workspace_id)
            deleted += _written(
                s,
                delete(EVENTS).where(
                    EVENTS.c.workspace_id == workspace_id, EVENTS.c.sequence > pruned, EVENTS.c.sequence <= upto
                ),
            )
            s.execute(update(COUNTERS).where(COUNTERS.c.workspace_id == workspace_id).values(pruned_through=upto))
        pruned = upto
    return deleted


def _written(s: Session, statement: Any) -> int:
    """Run an ``UPDATE`` or ``DELETE``; the number of rows it changed."""
    return int(cast(CursorResult[Any], s.execute(statement)).rowcount)


def document(event: Event) -> dict[str, Any]:
    """An event as the feed shows it (one definition for every door that hands changes out), for ``orjson``."""
    return {
        "sequence": event.sequence,
        "occurredAt": wire.time(event.occurred_at),
        "action": event.action,
        "targetType": event.target_type,
        "targetId": str(event.target_id),
        "actor": {"kind": event.actor_kind, "userId": _text(event.actor_user_id)},
        "channel": event.channel,
        # The stored text as it is: parsing it to write it again was most of a page's time.
        "changes": orjson.Fragment(event.changes),
    }


@functools.cache
def _text_fields(sqlite: bool) -> tuple[Any, ...]:
    """The columns of :func:`document` as the text the wire shows or the database keeps, without the driver's and
    SQLAlchemy's conversions to ``uuid.UUID`` and ``datetime`` (built once per database kind)."""
    c = EVENTS.c
    text: list[Any]
    if sqlite:  # kept as text already: GUIDs as 32 hex digits, instants as "YYYY-MM-DD HH:MM:SS.ffffff"
        text = [type_coerce(column, String) for column in (c.occurred_at, c.target_id, c.actor_user_id)]
    else:
        when = func.to_char(c.occurred_at, wire.TIME_POSTGRESQL)
        text = [when, sql_cast(c.target_id, Text), sql_cast(c.actor_user_id, Text)]
    when, target, user = text
    return (c.sequence, when, c.action, c.target_type, target, c.actor_kind, user, c.channel, c.changes)


def _written_events(rows: list[Any], sqlite: bool) -> list[str]:
    """Each row of :func:`_text_fields` as :func:`document`'s JSON, written by string formatting.

    Converting every row's ids and instant to Python objects and back to text was most of a page's time; so was,
    later, the database writing the document (``json_object`` over SQLite, three times the plain ``SELECT``:
    bench/JOURNAL.md, "change flow"). The stored ``changes`` text is JSON already and goes in as it is (as
    :func:`document`'s ``orjson.Fragment``); the short names (action, kinds, channel) are quoted by ``orjson``,
    once per distinct value. SQLite's GUID and instant are rewritten in the loop, not by a call per value
    (:func:`_dashed`, ``wire.time_from_sqlite``): a third of the loop's time (bench/JOURNAL.md, "the change
    feed's HTTP path")."""
    actors: dict[str | None, str] = {None: "null"}  # a page's events come from few users: each written once
    suffix = wire.TIME_SUFFIX
    out = []
    for sequence, occurred, action, target_type, target, kind, user, channel, changed in rows:
        actor = actors.get(user)
        if actor is None:
            actor = actors[user] = f'"{_dashed(user) if sqlite else user}"'
        if sqlite:  # 32 hex digits as 8-4-4-4-12; "YYYY-MM-DD HH:MM:SS.ffffff" as the wire's instant
            h = target.lower()
            target = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            occurred = f"{occurred[:10]}T{occurred[11:]}{suffix}"
        out.append(
            f'{{"sequence":{sequence},"occurredAt":"{occurred}","action":{_quoted(action)},'
            f'"targetType":{_quoted(target_type)},"targetId":"{target}",'
            f'"actor":{{"kind":{_quoted(kind)},"userId":{actor}}},"channel":{_quoted(channel)},'
            f'"changes":{changed}}}'
        )
    return out


@functools.lru_cache(maxsize=1024)
def _quoted(name: str) -> str:
    return orjson.dumps(name).decode()


def _dashed(hex32: str) -> str:
    """A GUID stored as 32 hex digits (SQLite), as the wire writes it: 8-4-4-4-12, lower case."""
    h = hex32.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
