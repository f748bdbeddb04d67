"""Team memberships as periods (README.md, "Dates and timelines"): adding merges with the periods it overlaps
or touches, ending cuts the timeline at a date, erasing removes one period entered by mistake. A duplicate add
and the end of a missing membership change nothing and write nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db.models import MembershipPeriod, User
from payroster.domain import normalize, periods
from payroster.domain.errors import Detail, Invalid, NotFound
from payroster.domain.periods import Period
from payroster.services import audit, teams, users
from payroster.services.context import Actor
from payroster.services.scoping import get_scoped, scoped, within
from payroster.services.timelines import MEMBERSHIP, load, set_members, wire, write


@dataclass(frozen=True)
class Outcome:
    """What a single add or end did: whether it created (or ended) a membership, and the period concerned."""

    done: bool
    period: Period | None


def _exists(session: Session, ws: uuid.UUID, user_id: uuid.UUID, team_id: uuid.UUID) -> None:
    """Both ends exist in the workspace; a 404 names the body field that is unknown. The user's row is locked:
    the writes of one person's memberships take turns."""
    try:
        users.get(session, ws, user_id, lock=True)
    except NotFound:
        raise NotFound("no user with that systemUserId in this workspace", target="systemUserId") from None
    try:
        teams.get(session, ws, team_id)
    except NotFound:
        raise NotFound("no team with that teamId in this workspace", target="teamId") from None


def check_span(start: dt.date, end: dt.date | None) -> None:
    """A period ends after it starts."""
    if end is not None and end <= start:
        raise Invalid("validTo must be after validFrom", details=[Detail("invalidPeriod", "empty period", "validTo")])


def add(
    session: Session,
    actor: Actor,
    user_id: uuid.UUID,
    team_id: uuid.UUID,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Outcome:
    """Add the user to the team from ``start`` (today) to ``end`` (open); ``done`` when no period covered
    ``start`` before. The period is the one covering ``start`` afterwards."""
    start = start or clock.today()
    check_span(start, end)
    _exists(session, actor.workspace_id, user_id, team_id)
    old, new = _change(session, actor, team_id, [user_id], lambda _, old: periods.added(old, start, end))[user_id]
    return Outcome(periods.at(old, start) is None, next(p for p in new if p.covers(start)))


def end(session: Session, actor: Actor, user_id: uuid.UUID, team_id: uuid.UUID, day: dt.date | None = None) -> bool:
    """End the membership on ``day`` (today): True when a period in force that day was ended."""
    day = day or clock.today()
    _exists(session, actor.workspace_id, user_id, team_id)
    old, _ = _change(session, actor, team_id, [user_id], lambda _, old: periods.ended(old, day))[user_id]
    return periods.at(old, day) is not None


# The doors' names of before: removing is ending today.
remove = end


def move(
    session: Session, actor: Actor, user_id: uuid.UUID, from_team: uuid.UUID, to_team: uuid.UUID, start: dt.date
) -> Outcome:
    """Move the user from one team to another from ``start``: the old membership's last day is the day before
    (its timeline ends on ``start``), the new one starts on ``start``, open-ended. Both writes, and their audit
    events, are the caller's one transaction: a refusal of either leaves both teams as they were."""
    if from_team == to_team:
        why = "choose a team other than the one they leave"
        raise Invalid(why, details=[Detail("sameTeam", why, "team")])
    if not end(session, actor, user_id, from_team, start):
        why = f"not a member of the team they leave on {start}: choose a date their membership is in force"
        raise Invalid(why, details=[Detail("notMember", why, "validFrom")])
    return add(session, actor, user_id, to_team, start)


def erase(session: Session, actor: Actor, period_id: uuid.UUID | None) -> MembershipPeriod:
    """Erase one period entered by mistake (its history goes with it); NotFound when unknown."""
    ws = actor.workspace_id
    row = get_scoped(session, MembershipPeriod, ws, period_id, "period")
    users.get(session, ws, row.user_id, lock=True)
    gone = Period(row.valid_from, row.valid_to, True, row.id)
    _change(
        session,
        actor,
        row.team_id,
        [row.user_id],
        lambda _, old: [p for p in old if p.id != gone.id],
        "membership.erased",
    )
    return row


def add_many(session: Session, actor: Actor, team_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> int:
    """Add several users of the workspace to a team from today; ids that are not users of the workspace and
    memberships in force today are skipped. Returns how many were created."""
    today = clock.today()
    ids = _locked_users(session, actor.workspace_id, user_ids)
    done = _change(session, actor, team_id, ids, lambda _, old: periods.added(old, today, None))
    return sum(periods.at(old, today) is None for old, _ in done.values())


def add_periods(
    session: Session,
    actor: Actor,
    team_id: uuid.UUID,
    wanted: Mapping[uuid.UUID, Sequence[tuple[dt.date, dt.date | None]]],
) -> dict[uuid.UUID, list[bool]]:
    """Several users' periods on one team of the workspace (``wanted``: each user's ``(start, end)`` in order),
    each added as :func:`add` adds it, set-based: one audit event per user whose timeline changed. Users not of
    the workspace are skipped. Returns each user's ``add`` outcomes: whether no period covered each start."""
    for spans in wanted.values():
        for start, end in spans:
            check_span(start, end)
    done: dict[uuid.UUID, list[bool]] = {}

    def change(uid: uuid.UUID, old: list[Period]) -> list[Period]:
        flags = done[uid] = []
        for start, end in wanted[uid]:
            flags.append(periods.at(old, start) is None)
            old = periods.added(old, start, end)
        return old

    _change(session, actor, team_id, _locked_users(session, actor.workspace_id, wanted), change)
    return done


def remove_many(session: Session, actor: Actor, team_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> int:
    """End several users' memberships of a team today; missing memberships are skipped."""
    today = clock.today()
    ids = _locked_users(session, actor.workspace_id, user_ids)
    done = _change(session, actor, team_id, ids, lambda _, old: periods.ended(old, today))
    return sum(periods.at(old, today) is not None for old, _ in done.values())


def members_on(
    session: Session,
    ws: uuid.UUID,
    team_id: uuid.UUID,
    day: dt.date,
    limit: int | None = None,
    after: uuid.UUID | None = None,
) -> list[MembershipPeriod]:
    """The periods of a team in force on ``day`` (one per member), by user id: at most ``limit``, those of users
    after ``after``."""
    m = MembershipPeriod
    stmt = scoped(m, ws).where(m.team_id == team_id, m.valid_from <= day, (m.valid_to.is_(None)) | (m.valid_to > day))
    if after is not None:
        stmt = stmt.where(m.user_id > after)
    return list(session.scalars(stmt.order_by(m.user_id).limit(limit)))


@dataclass(frozen=True)
class PeriodKey:
    """A member period's place in a team's timeline, which is ordered by user, then start, then period id (the
    id only breaks ties the non-overlap rule already forbids)."""

    user_id: uuid.UUID
    valid_from: dt.date
    id: uuid.UUID


def of_team(
    session: Session, ws: uuid.UUID, team_id: uuid.UUID, limit: int, after: PeriodKey | None = None
) -> list[MembershipPeriod]:
    """A page of a team's member periods, past, current and scheduled, by user, then start, then id: at most
    ``limit``, those after ``after``. The statement walks the pair index in that order and stops at ``limit``,
    however many periods the team has."""
    m = MembershipPeriod
    stmt = scoped(m, ws).where(m.team_id == team_id)
    if after is not None:
        # The first term is the index's range (where the walk starts); the row comparison settles the first user.
        stmt = stmt.where(
            m.user_id >= after.user_id,
            tuple_(m.user_id, m.valid_from, m.id) > tuple_(after.user_id, after.valid_from, after.id),
        )
    return list(session.scalars(stmt.order_by(m.user_id, m.valid_from, m.id).limit(limit)))


def team_has_periods(session: Session, ws: uuid.UUID, team_id: uuid.UUID) -> bool:
    """Whether any member period of the team is recorded (a deleted team's included)."""
    m = MembershipPeriod
    found = session.scalars(within(ws, m, m.id).where(m.team_id == team_id).limit(1)).first()
    return found is not None


def of_user(session: Session, ws: uuid.UUID, user_id: uuid.UUID) -> list[MembershipPeriod]:
    """Every membership period of a user, by date then team."""
    stmt = scoped(MembershipPeriod, ws).where(MembershipPeriod.user_id == user_id)
    return list(session.scalars(stmt.order_by(MembershipPeriod.valid_from, MembershipPeriod.team_id)))


def end_team(session: Session, actor: Actor, team_id: uuid.UUID) -> None:
    """A deleted team's memberships end today (those that start later go); their history stays."""
    ws = actor.workspace_id
    ids = session.scalars(
        select(MembershipPeriod.user_id).where(MembershipPeriod.workspace_id == ws, MembershipPeriod.team_id == team_id)
    ).all()
    today = clock.today()
    ids = _locked_users(session, ws, set(ids))
    _change(session, actor, team_id, ids, lambda _, old: periods.ended(old, today))


def _locked_users(session: Session, ws: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The ids that are users of the workspace, their rows locked in id order (no two writers wait on each
    other in opposite orders)."""
    found: list[uuid.UUID] = []
    for chunk in _chunks(sorted(set(user_ids))):
        stmt = select(User.id).where(User.workspace_id == ws, User.id.in_(chunk)).order_by(User.id).with_for_update()
        found += session.scalars(stmt).all()
    return found


def _change(
    session: Session,
    actor: Actor,
    team_id: uuid.UUID,
    user_ids: list[uuid.UUID],
    change: Callable[[uuid.UUID, list[Period]], list[Period]],
    action: str | None = None,
) -> dict[uuid.UUID, tuple[list[Period], list[Period]]]:
    """Apply ``change`` to each user's timeline on the team (it is given the user and the timeline); store the
    differences, their audit events and today's ``team_members``. Returns every user's timeline before and after."""
    ws, today = actor.workspace_id, clock.today()
    result: dict[uuid.UUID, tuple[list[Period], list[Period]]] = {}
    for chunk in _chunks(user_ids):
        found = load(session, MEMBERSHIP, ws, team_id=team_id, user_id=chunk)
        changes = []
        for uid in chunk:
            old = found.get((team_id, uid), [])
            new = periods.with_ids(old, change(uid, old))
            result[uid] = (old, new)
            changes.append(((team_id, uid), old, new))
        events: list[dict[str, object]] = []
        joined: list[uuid.UUID] = []
        left: list[uuid.UUID] = []
        for (_, uid), old, new in write(session, MEMBERSHIP, ws, changes):
            result[uid] = (old, new)
            was, now = periods.at(old, today) is not None, periods.at(new, today) is not None
            if was != now:
                (joined if now else left).append(uid)
            name = action or ("membership.added" if now and not was else "membership.removed" if was and not now
                              else "membership.updated")  # fmt: skip
            events.append(_event(actor, name, team_id, uid, old, new))
        set_members(session, ws, team_id, joined, left)
        audit.record_many(session, events)
    return result


def _event(
    actor: Actor, action: str, team_id: uuid.UUID, user_id: uuid.UUID, old: list[Period], new: list[Period]
) -> dict[str, object]:
    """The audit event of one pair's change: the pair (as before: set when added, cleared when removed) and its
    periods before and after."""
    ids = {"teamId": str(team_id), "systemUserId": str(user_id)}
    added, removed = action == "membership.added", action == "membership.removed"
    changes: list[dict[str, object]] = [
        {"field": f, "before": None if added else v, "after": None if removed else v} for f, v in ids.items()
    ]
    changes.append(
        {"field": "periods", "before": [wire(MEMBERSHIP, p) for p in old], "after": [wire(MEMBERSHIP, p) for p in new]}
    )
    return audit.event_row(actor, action, "membership", team_id, changes)


def _chunks(ids: list[uuid.UUID], size: int = 500) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass
class AddedByEmail:
    """What adding a pasted list of addresses to a team did: how many joined, how many were members already,
    and each address not added with why."""

    added: int
    already: int
    refused: list[tuple[str, str]]


def add_by_emails(session: Session, actor: Actor, team_id: uuid.UUID, addresses: list[str]) -> AddedByEmail:
    """Add the people of the workspace these addresses name; a malformed or unknown address is listed with why,
    never a reason to add nobody (an admin pastes a list, some of it stale)."""
    malformed: dict[str, str] = {}
    keys: dict[str, str] = {}
    for address in addresses:
        problem = normalize.email_problem(address)
        if problem:
            malformed[address] = f"not an e-mail address ({problem})"
        else:
            keys.setdefault(normalize.email_key(address), address)
    found: dict[str, uuid.UUID] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        stmt = select(User.email_key, User.id).where(User.workspace_id == actor.workspace_id, User.email_key.in_(chunk))
        found.update((key, uid) for key, uid in session.execute(stmt))
    unknown = {keys[k] for k in keys if k not in found}
    refused = [
        (a, malformed.get(a) or "no person of this workspace has this e-mail")
        for a in addresses
        if a in malformed or a in unknown
    ]
    added = add_many(session, actor, team_id, list(found.values())) if found else 0
    return AddedByEmail(added, len(found) - added, refused)
