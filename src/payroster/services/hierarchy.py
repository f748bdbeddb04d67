"""Dated managers and parents (README.md, "Dates and timelines"): a user's direct manager and a team's manager
and parent are timelines. A change holds from its date until the next recorded change of that field; no chain
of managers or parents closes a cycle on any date."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db.models import TeamPeriod
from payroster.domain import periods
from payroster.domain.errors import Conflict
from payroster.domain.periods import Period
from payroster.services import audit
from payroster.services.context import Actor
from payroster.services.inputs import UNSET
from payroster.services.timelines import MANAGER, TEAM, cycle_on, load, wire, write

Change = dict[str, Any]


def manager_timeline(session: Session, ws: uuid.UUID, user_id: uuid.UUID) -> list[Period]:
    """A user's direct-manager periods, in date order."""
    return load(session, MANAGER, ws, user_id=user_id).get((user_id,), [])


def team_timeline(session: Session, ws: uuid.UUID, team_id: uuid.UUID) -> list[Period]:
    """A team's periods, each value ``(managerId, parentTeamId)``, in date order."""
    return load(session, TEAM, ws, team_id=team_id).get((team_id,), [])


def store_new_manager(session: Session, ws: uuid.UUID, user_id: uuid.UUID, timeline: list[Period]) -> None:
    """Store the manager timeline of a user just created (after the user's row)."""
    if timeline:
        write(session, MANAGER, ws, [((user_id,), [], timeline)])


def manager_change(old: list[Period], new: list[Period]) -> Change:
    """The audit change of a manager timeline."""
    return _change("directManagerPeriods", MANAGER, old, new)


def set_team(
    session: Session, ws: uuid.UUID, team_id: uuid.UUID, manager_id: Any, parent_id: Any, day: dt.date | None
) -> tuple[tuple[uuid.UUID | None, uuid.UUID | None], Change | None]:
    """Give the team ``manager_id`` and/or ``parent_id`` (``UNSET``: unchanged, None: none) from ``day`` (today)
    until the next recorded change of each; 409 naming the first date on which the parent would close a cycle.
    Returns today's (manager, parent) and the audit change of the periods (None when nothing changed)."""
    today = clock.today()
    day = day or today
    old = team_timeline(session, ws, team_id)
    fields = [periods.field(old, 0), periods.field(old, 1)]
    for index, value in enumerate((manager_id, parent_id)):
        if value is UNSET:
            continue
        before = fields[index]
        fields[index], until = periods.set_from(before, day, value)
        if index == 1 and value is not None and not periods.same(before, fields[index]):
            when = cycle_on(session, TEAM, ws, team_id, value, day, until)
            if when is not None:
                raise Conflict(
                    f"parentTeamId would create a cycle in the team hierarchy on {when.isoformat()}",
                    target="parentTeamId",
                    code="cycle",
                )
    return _store_team(session, ws, team_id, old, periods.combined(fields), today)


def _store_team(
    session: Session, ws: uuid.UUID, team_id: uuid.UUID, old: list[Period], new: list[Period], today: dt.date
) -> tuple[tuple[uuid.UUID | None, uuid.UUID | None], Change | None]:
    written = write(session, TEAM, ws, [((team_id,), old, periods.with_ids(old, new))])
    final = written[0][2] if written else old
    now = periods.at(final, today) or (None, None)
    return now, (_change("periods", TEAM, old, final) if written else None)  # type: ignore[return-value]


def end_team(session: Session, ws: uuid.UUID, team_id: uuid.UUID) -> Change | None:
    """A deleted team's own timeline ends today; returns the audit change (None when nothing changed)."""
    old = team_timeline(session, ws, team_id)
    return _store_team(session, ws, team_id, old, periods.ended(old, clock.today()), clock.today())[1]


def children_from_today(session: Session, ws: uuid.UUID, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The teams that have ``team_id`` as parent today or later."""
    P = TeamPeriod  # noqa: N806
    stmt = select(P.team_id).where(
        P.workspace_id == ws, P.parent_team_id == team_id, or_(P.valid_to.is_(None), P.valid_to > clock.today())
    )
    return sorted(set(session.scalars(stmt)))


def move_up(
    session: Session, ws: uuid.UUID, child_id: uuid.UUID, gone: uuid.UUID, gone_parents: list[Period]
) -> tuple[tuple[uuid.UUID | None, uuid.UUID | None], Change | None]:
    """From today, wherever ``child_id`` had ``gone`` as parent it has ``gone``'s own parent of those days
    (``gone_parents``: that team's parent timeline)."""
    today = clock.today()
    old = team_timeline(session, ws, child_id)
    manager, parent = periods.field(old, 0), periods.field(old, 1)
    moved: list[Period] = []
    for p in parent:
        if p.value != gone or not p.overlaps(today, None):
            moved.append(p)
            continue
        lo = max(p.start, today)
        if p.start < today:
            moved.append(Period(p.start, today, p.value, p.id))
        for g in gone_parents:
            if g.overlaps(lo, p.end):
                moved.append(Period(max(lo, g.start), periods.earlier(p.end, g.end), g.value))
    return _store_team(session, ws, child_id, old, periods.combined([manager, periods.normalised(moved)]), today)


def timeline_events(actor: Actor, owner_type: str, owner_id: uuid.UUID, change: Change) -> list[dict[str, Any]]:
    """One audit event per changed period (``managerPeriod.added``, ``teamPeriod.changed``, ``...removed``),
    its target the period: the owner and the period before and after."""
    kind, old, new = change["kind"], change["old"], change["new"]
    name = "managerPeriod" if kind is MANAGER else "teamPeriod"
    owner = "systemUserId" if kind is MANAGER else "teamId"
    before = {p.id: p for p in old}
    after = {p.id: p for p in new}
    events = []
    for pid in [*before, *(i for i in after if i not in before)]:
        was, now = before.get(pid), after.get(pid)
        if was is not None and now is not None and was.same(now):
            continue
        action = "added" if was is None else "removed" if now is None else "changed"
        ids = (None if was is None else str(owner_id), None if now is None else str(owner_id))
        changes = [
            {"field": owner, "before": ids[0], "after": ids[1]},
            {"field": "period", "before": was and wire(kind, was), "after": now and wire(kind, now)},
        ]
        events.append(audit.event_row(actor, f"{name}.{action}", name, pid, changes))  # type: ignore[arg-type]
    return events


def _change(name: str, kind: Any, old: list[Period], new: list[Period]) -> Change:
    """A timeline's change, for :func:`timeline_events` (``name``: the field, for readers of the change)."""
    return {"field": name, "kind": kind, "old": old, "new": new}
