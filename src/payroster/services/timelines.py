"""Stored timelines (membership, manager and team periods) and today's values kept beside them.

The period tables are the record. The current values every door and the feed read as before (``team_members``,
``users.direct_manager_id``, ``teams.manager_id`` and ``parent_team_id``) are kept as what the periods say
*today*, by the write that changes a timeline and, when today moves past a recorded change, by the first request
of the workspace that day (:func:`refresh`): ``workspaces.timeline_due`` is the first date ahead on which a
period starts or ends, so a day without one costs a comparison of two columns the key check reads anyway
(docs/architecture.md, "Timelines").
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db.models import (
    ManagerPeriod,
    MembershipPeriod,
    Team,
    TeamMember,
    TeamPeriod,
    User,
    Workspace,
    table,
    utcnow,
)
from payroster.domain.periods import Period
from payroster.ids import new_id
from payroster.services import audit
from payroster.services.context import Actor
from payroster.services.scoping import insert_ignoring_conflicts

# Who changed today's values when a recorded change took effect on its date: nobody acting now, the schedule. Its
# events are ordinary change-feed events (membership.added / .removed, user.updated, team.updated), so delta links
# and webhooks see a scheduled change on the day it takes effect, not only when it was recorded.
SCHEDULE_KIND, SCHEDULE_CHANNEL = "system", "schedule"


@dataclass(frozen=True)
class Kind:
    """One kind of timeline: its table, the columns naming whose timeline a row belongs to, its value columns."""

    model: Any
    keys: tuple[str, ...]
    values: tuple[str, ...]

    def value(self, row: Any) -> Hashable:
        """A row's period value: True (membership), an id (manager) or a tuple of ids (team)."""
        if not self.values:
            return True
        got = tuple(getattr(row, c) for c in self.values)
        return got[0] if len(got) == 1 else got

    def value_columns(self, value: Hashable) -> dict[str, Any]:
        """A period value as its columns."""
        if not self.values:
            return {}
        parts: Any = value if len(self.values) > 1 else (value,)
        return dict(zip(self.values, parts, strict=True))


MEMBERSHIP = Kind(MembershipPeriod, ("team_id", "user_id"), ())
MANAGER = Kind(ManagerPeriod, ("user_id",), ("manager_id",))
TEAM = Kind(TeamPeriod, ("team_id",), ("manager_id", "parent_team_id"))
KINDS = (MEMBERSHIP, MANAGER, TEAM)


def load(session: Session, kind: Kind, ws: uuid.UUID, **keys: Any) -> dict[tuple[Any, ...], list[Period]]:
    """The stored timelines of the rows matching ``keys`` (a column name to one id, or to a list of ids), by
    their key, in date order."""
    m = kind.model
    stmt = select(m).where(m.workspace_id == ws)
    for column, wanted in keys.items():
        col = getattr(m, column)
        stmt = stmt.where(col.in_(wanted) if isinstance(wanted, list) else col == wanted)
    found: dict[tuple[Any, ...], list[Period]] = {}
    for row in session.scalars(stmt.order_by(m.valid_from)):
        key = tuple(getattr(row, c) for c in kind.keys)
        found.setdefault(key, []).append(Period(row.valid_from, row.valid_to, kind.value(row), row.id))
    return found


def write(
    session: Session, kind: Kind, ws: uuid.UUID, changes: Sequence[tuple[tuple[Any, ...], list[Period], list[Period]]]
) -> list[tuple[tuple[Any, ...], list[Period], list[Period]]]:
    """Store each ``(key, old, new)`` timeline change (``new`` as :func:`periods.with_ids` left it): removed
    periods are deleted, changed ones updated, new ones inserted. Returns the changes with every new period's
    id, leaving out those that change nothing."""
    m = table(kind.model)
    gone: list[uuid.UUID] = []
    changed: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    out = []
    now = utcnow()
    for key, old, new in changes:
        stored = {p.id: p for p in old}
        if len(old) == len(new) and all(p.id in stored and stored[p.id].same(p) for p in new):
            continue
        kept = {p.id for p in new if p.id is not None}
        gone += [p.id for p in old if p.id not in kept and p.id is not None]
        named = []
        for p in new:
            if p.id is None or p.id not in stored:
                p = Period(p.start, p.end, p.value, p.id or new_id())
                row = {"workspace_id": ws, "id": p.id, **dict(zip(kind.keys, key, strict=True))}
                row.update(valid_from=p.start, valid_to=p.end, **kind.value_columns(p.value))
                if kind is MEMBERSHIP:
                    row["created_at"] = now
                made.append(row)
            elif not stored[p.id].same(p):
                changed.append({"p_id": p.id, "valid_from": p.start, "valid_to": p.end})
            named.append(p)
        out.append((key, old, named))
    if gone:
        session.execute(delete(m).where(m.c.workspace_id == ws, m.c.id.in_(gone)))
    if changed:
        where = (m.c.workspace_id == ws, m.c.id == bindparam("p_id"))
        stmt = update(m).where(*where).values(valid_from=bindparam("valid_from"), valid_to=bindparam("valid_to"))
        session.connection().execute(stmt, changed)
    if made:
        session.connection().execute(insert(m), made)
    due_by(session, ws, (d for _, _, new in out for p in new for d in (p.start, p.end)))
    return out


def named(new: Sequence[Period]) -> list[Period]:
    """The periods with an id each (a new one for those not stored yet), so an audit event can name them before
    :func:`write` stores them."""
    return [p if p.id is not None else Period(p.start, p.end, p.value, new_id()) for p in new]


def due_by(session: Session, ws: uuid.UUID, dates: Iterable[dt.date | None]) -> None:
    """Bring the workspace's next refresh forward to the first of ``dates`` after today, if any."""
    today = clock.today()
    ahead = min((d for d in dates if d is not None and d > today), default=None)
    if ahead is None:
        return
    w = table(Workspace)
    session.execute(
        update(w)
        .where(w.c.id == ws, or_(w.c.timeline_due.is_(None), w.c.timeline_due > ahead))
        .values(timeline_due=ahead)
    )


def stale(day: dt.date | None, due: dt.date | None, today: dt.date | None = None) -> bool:
    """True when the current values, last made for ``day`` and good until ``due``, are not today's."""
    today = today or clock.today()
    return (due is not None and today >= due) or (day is not None and today < day)


def wire(kind: Kind, p: Period) -> dict[str, Any]:
    """A period as the API and the audit show it."""
    out: dict[str, Any] = {"periodId": str(p.id) if p.id else None, **p.wire()}
    names = {"manager_id": "managerId", "parent_team_id": "parentTeamId"}
    if kind is MANAGER:
        out["directManagerId"] = str(p.value)
    elif kind is TEAM:
        for column, value in kind.value_columns(p.value).items():
            out[names[column]] = str(value) if value else None
    return out


def in_force(model: Any, day: Any) -> Any:
    """The SQL condition of a period row in force on ``day``."""
    return and_(model.valid_from <= day, or_(model.valid_to.is_(None), model.valid_to > day))


def set_members(
    session: Session, ws: uuid.UUID, team_id: uuid.UUID, joined: Sequence[uuid.UUID], left: Sequence[uuid.UUID]
) -> None:
    """``team_members`` after a write: rows for the users whose membership is in force today and was not,
    none for those whose membership was and is not; ``created_at`` is when a row was made."""
    tm = table(TeamMember)
    if left:
        session.execute(delete(tm).where(tm.c.workspace_id == ws, tm.c.team_id == team_id, tm.c.user_id.in_(left)))
    if joined:
        now = utcnow()
        rows = [{"workspace_id": ws, "team_id": team_id, "user_id": u, "created_at": now} for u in joined]
        session.execute(insert_ignoring_conflicts(session, tm), rows)


def _schedule(ws: uuid.UUID) -> Actor:
    return Actor(ws, None, SCHEDULE_KIND, SCHEDULE_CHANNEL)


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _refresh_memberships(session: Session, ws: uuid.UUID, today: dt.date, moved: Any) -> None:
    """``team_members`` of the pairs whose periods start or end in the days moved over, from the periods; an
    event for each pair that joined or left today's members."""
    p, tm = table(MembershipPeriod), table(TeamMember)
    pairs = session.execute(moved(p, p.c.team_id, p.c.user_id)).all()
    by_team: dict[uuid.UUID, list[uuid.UUID]] = {}
    for team_id, user_id in pairs:
        by_team.setdefault(team_id, []).append(user_id)
    for team_id, members in by_team.items():
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            mine = (tm.c.workspace_id == ws, tm.c.team_id == team_id, tm.c.user_id.in_(chunk))
            held = set(session.scalars(select(tm.c.user_id).where(*mine)))
            theirs = (p.c.workspace_id == ws, p.c.team_id == team_id, p.c.user_id.in_(chunk), in_force(p.c, today))
            now = set(session.scalars(select(p.c.user_id).where(*theirs)))
            joined, left = sorted(now - held), sorted(held - now)
            set_members(session, ws, team_id, joined, left)
            events = [
                audit.event_row(_schedule(ws), action, "membership", team_id, [
                    {"field": "teamId", "before": before, "after": after},
                    {"field": "systemUserId", "before": before and str(u), "after": after and str(u)},
                ])
                for users, action, before, after in (
                    (joined, "membership.added", None, str(team_id)), (left, "membership.removed", str(team_id), None)
                )
                for u in users
            ]  # fmt: skip
            if events:
                audit.record_many(session, events)


def refresh(session: Session, ws: uuid.UUID) -> None:
    """Make the current values today's: recompute those of every timeline with a change between the day they
    were made for and today, and find the next change ahead. Idempotent (concurrent requests may both run it)."""
    today = clock.today()
    row = session.execute(
        select(Workspace.timeline_day, Workspace.timeline_due).where(Workspace.id == ws).with_for_update()
    ).first()
    if row is None or not stale(row.timeline_day, row.timeline_due, today):
        return
    day, due = row
    # Forward: the changes from ``due`` (none lies between the day they were made for and it) to today; back
    # (a clock set back, in tests): those after today up to that day.
    if day is not None and today < day:
        lo, hi = today, day
    else:
        assert due is not None  # stale going forward means a change was due
        lo, hi = due - dt.timedelta(days=1), today

    def moved(m: Any, *cols: Any) -> Any:
        """The timelines with a period starting or ending in ``(lo, hi]``."""
        edges = or_(and_(m.c.valid_from > lo, m.c.valid_from <= hi), and_(m.c.valid_to > lo, m.c.valid_to <= hi))
        return select(*cols).where(m.c.workspace_id == ws, edges).distinct()

    _refresh_memberships(session, ws, today, moved)
    _refresh_managers(session, ws, today, moved)
    _refresh_teams(session, ws, today, moved)
    ahead = [
        session.scalar(select(func.min(col)).where(m.c.workspace_id == ws, col > today))
        for m in (table(k.model) for k in KINDS)
        for col in (m.c.valid_from, m.c.valid_to)
    ]
    session.execute(
        update(table(Workspace))
        .where(Workspace.id == ws)
        .values(timeline_day=today, timeline_due=min((d for d in ahead if d is not None), default=None))
    )


def _refresh_managers(session: Session, ws: uuid.UUID, today: dt.date, moved: Any) -> None:
    mp, users = table(ManagerPeriod), table(User)
    ids = [u for (u,) in session.execute(moved(mp, mp.c.user_id))]
    if not ids:
        return
    value = (
        select(mp.c.manager_id)
        .where(mp.c.workspace_id == users.c.workspace_id, mp.c.user_id == users.c.id, in_force(mp.c, today))
        .scalar_subquery()
    )
    now = utcnow()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        mine = (users.c.workspace_id == ws, users.c.id.in_(chunk), users.c.direct_manager_id.is_distinct_from(value))
        before: dict[uuid.UUID, uuid.UUID | None] = dict(
            session.execute(select(users.c.id, users.c.direct_manager_id).where(*mine)).all()
        )
        renew = update(users).where(*mine).values(direct_manager_id=value, updated_at=now)
        renewed = session.execute(renew.returning(users.c.id, users.c.direct_manager_id)).all()
        after: dict[uuid.UUID, uuid.UUID | None] = dict(renewed)
        changed = sorted(after)
        if changed:
            audit.record_many(session, [
                audit.event_row(_schedule(ws), "user.updated", "user", u, [
                    {"field": "directManagerId", "before": _text(before.get(u)), "after": _text(after[u])}
                ])
                for u in changed
            ])  # fmt: skip
            # The stored feed entity goes: the feed computes a user's entity from the row where it is NULL
            # (docs/architecture.md, "The feed's stored entity"), and the services do not import the feed's SQL.
            session.execute(
                update(users).where(users.c.workspace_id == ws, users.c.id.in_(changed)).values(feed_json=None)
            )


def _refresh_teams(session: Session, ws: uuid.UUID, today: dt.date, moved: Any) -> None:
    tp, teams = table(TeamPeriod), table(Team)
    ids = [t for (t,) in session.execute(moved(tp, tp.c.team_id))]
    if not ids:
        return

    def value(column: Any) -> Any:
        mine = (tp.c.workspace_id == teams.c.workspace_id, tp.c.team_id == teams.c.id, in_force(tp.c, today))
        return select(column).where(*mine).scalar_subquery()

    manager, parent = value(tp.c.manager_id), value(tp.c.parent_team_id)
    differs = or_(teams.c.manager_id.is_distinct_from(manager), teams.c.parent_team_id.is_distinct_from(parent))
    mine = (teams.c.workspace_id == ws, teams.c.id.in_(ids), differs)
    columns = (teams.c.manager_id, teams.c.parent_team_id)
    before = {t: rest for t, *rest in session.execute(select(teams.c.id, *columns).where(*mine))}
    after = {
        t: rest
        for t, *rest in session.execute(
            update(teams).where(*mine).values(manager_id=manager, parent_team_id=parent, updated_at=utcnow())
            .returning(teams.c.id, *columns)
        )
    }  # fmt: skip
    events = []
    for t in sorted(after):
        was, now = before.get(t, [None, None]), after[t]
        fields = [
            {"field": name, "before": _text(a), "after": _text(b)}
            for name, a, b in zip(("managerId", "parentTeamId"), was, now, strict=True)
            if a != b
        ]
        events.append(audit.event_row(_schedule(ws), "team.updated", "team", t, fields))
    if events:
        audit.record_many(session, events)


def value_on(periods: Sequence[Period], day: dt.date) -> Hashable | None:
    """The value in force on ``day`` (None: none)."""
    return next((p.value for p in periods if p.covers(day)), None)


def cycle_on(
    session: Session, kind: Kind, ws: uuid.UUID, node: uuid.UUID, start: uuid.UUID, lo: dt.date, hi: dt.date | None
) -> dt.date | None:
    """The first day in ``[lo, hi)`` on which ``node`` given the value ``start`` (a manager, or a parent team)
    reaches itself along the stored timelines: one recursive query that carries, along each chain, the days on
    which every link of it holds."""
    m = table(kind.model)
    owner, value = (m.c.user_id, m.c.manager_id) if kind is MANAGER else (m.c.team_id, m.c.parent_team_id)
    far = dt.date(9999, 12, 31)
    seed = select(
        literal(start, type_=owner.type).label("node"),
        literal(lo, type_=m.c.valid_from.type).label("lo"),
        literal(hi or far, type_=m.c.valid_from.type).label("hi"),
        literal(0).label("depth"),
    )
    chain = seed.cte("chain", recursive=True)
    ends = func.coalesce(m.c.valid_to, far)
    step = select(
        value,
        _greatest(chain.c.lo, m.c.valid_from),
        _least(chain.c.hi, ends),
        chain.c.depth + 1,
    ).where(
        m.c.workspace_id == ws,
        owner == chain.c.node,
        value.is_not(None),
        m.c.valid_from < chain.c.hi,
        ends > chain.c.lo,
        chain.c.node != node,
        chain.c.depth < 100_000,
    )
    chain = chain.union_all(step)
    found = session.scalar(select(func.min(chain.c.lo)).where(chain.c.node == node))
    if isinstance(found, str):  # SQLite's min() of dates computed in SQL is their text
        return dt.date.fromisoformat(found)
    return found if isinstance(found, dt.date) else None


def _greatest(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _least(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)
