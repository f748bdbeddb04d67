"""The feed's application time, after the OASIS "OData Extension for Temporal Data 4.0" (README.md, "OData feed"):
its query options (§4.2.2 ``$at``; §4.2.3 ``$from``, ``$to`` and ``$toInclusive``) and the sources that answer a
snapshot set as of a day.

``Users``, ``Teams`` and ``TeamMembers`` are snapshot sets (§1.2.1.5): without ``$at`` they answer today's values
(the rows services/timelines.py keeps current); with it, the dated properties (``directManagerId``, ``managerId``,
``parentTeamId``) and the memberships are read from the period tables as they stood on that day, in every segment
of the path, through navigation and in ``$expand`` (§4.2.1). ``MembershipPeriods``, ``ManagerPeriods`` and
``TeamPeriods`` are timeline sets (§1.2.1.6): one entity per period, all of them without options, those whose
period overlaps the interval with ``$from``/``$to`` (closed-open, §1.2.1.4.1) or contains the day with ``$at``.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Date, FromClause, Text, and_, exists, func, literal, or_, select, true
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from payroster.db import feed
from payroster.domain import wire
from payroster.odata import literals as L
from payroster.odata.errors import ODataBadQuery
from payroster.odata.model import MANAGER_PERIODS, MEMBERSHIP_PERIODS, SETS, SNAPSHOT, TEAM_PERIODS, TEAMS, EntitySet

OPTIONS = ("at", "from", "to", "toinclusive")
_NAMES = {"at": "$at", "from": "$from", "to": "$to", "toinclusive": "$toInclusive"}
# The columns of a snapshot set read from a period table on the day asked: (periods, owner column, value column).
DATED: dict[str, dict[str, tuple[Any, str, str]]] = {
    "Users": {"direct_manager_id": (MANAGER_PERIODS, "user_id", "manager_id")},
    "Teams": {
        "manager_id": (TEAM_PERIODS, "team_id", "manager_id"),
        "parent_team_id": (TEAM_PERIODS, "team_id", "parent_team_id"),
    },
}
# The column holding a user's stored document (odata/query.py, STORED): today's text, which a snapshot carries with
# its dated members as they stood on the day (db/feed.py, ``with_member``).
STORED_TEXT = "feed_json"


@dataclass(frozen=True)
class Window:
    """The temporal options of a request: the snapshot day, and the closed-open interval of periods asked for
    (``None`` bounds are ``min`` and ``max``)."""

    at: dt.date | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    given: tuple[str, ...] = ()

    def check(self, es: EntitySet) -> None:
        """Refuse options the addressed set cannot answer: any on a set without application time, an interval on
        a snapshot set (§4.2.3: they select periods of timeline sets)."""
        if not self.given:
            return
        names = ", ".join(_NAMES[g] for g in self.given)
        if es.time is None:
            raise ODataBadQuery(
                f"{es.name} has no application time: {names} does not apply", target=_NAMES[self.given[0]]
            )
        if es.time == SNAPSHOT and self.at is None:
            raise ODataBadQuery(
                f"{names} select periods of the timeline sets (MembershipPeriods, ManagerPeriods, TeamPeriods); "
                f"{es.name} answers one day: use $at",
                target=_NAMES[self.given[0]],
            )

    def overlapping(self, es: EntitySet) -> Any:
        """A base condition (odata/query.py) keeping the periods of a timeline set that overlap the window, or
        ``None`` when the request selects every period."""
        if not self.given or es.period is None:
            return None
        start, end = self.start, self.end
        if self.at is not None:  # the day itself (§4.2.2: $from=day&$toInclusive=day)
            start, end = self.at, None if self.at == dt.date.max else self.at + dt.timedelta(days=1)
        lo_name, hi_name = es.period

        def condition(t: FromClause, compiler: Any) -> ColumnElement[bool]:
            lo = unindexed(es.properties[lo_name].sql(t), compiler.sqlite)
            hi = unindexed(es.properties[hi_name].sql(t), compiler.sqlite)
            parts: list[ColumnElement[bool]] = [true()]
            if end is not None:
                parts.append(lo < literal(end, Date()))
            if start is not None:
                parts.append(or_(hi.is_(None), hi > literal(start, Date())))
            return and_(*parts)

        return condition


def window(options: dict[str, str]) -> Window:
    """The temporal options among a request's system query options (400 for a bad date or combination)."""
    given = tuple(name for name in OPTIONS if name in options)
    if not given:
        return Window()
    if "at" in options:
        if len(given) > 1:
            raise ODataBadQuery("$at is not combined with $from, $to or $toInclusive (§4.2.3)", target="$at")
        return Window(at=_date(options["at"], "at", allow=()), given=given)
    if "from" not in options:
        raise ODataBadQuery(f"{_NAMES[given[0]]} needs $from", target=_NAMES[given[0]])
    if "to" in options and "toinclusive" in options:
        raise ODataBadQuery("give $to or $toInclusive, not both", target="$toInclusive")
    start = _date(options["from"], "from", allow=("min",))
    end: dt.date | None = None
    if "to" in options:
        end = _date(options["to"], "to", allow=("max",))
    elif "toinclusive" in options:
        last = _date(options["toinclusive"], "toinclusive", allow=("max",))
        end = None if last is None or last == dt.date.max else last + dt.timedelta(days=1)
    if start is not None and end is not None and start > end:
        raise ODataBadQuery(f"$from ({start}) is after the end of the interval ({end})", target="$from")
    return Window(start=start, end=end, given=given)


def _date(text: str, name: str, allow: tuple[str, ...]) -> dt.date | None:
    """A temporal expression (§4.1): a date (the feed's periods are dates), or ``min``/``max`` where allowed."""
    value = text.strip()
    if value in allow:
        return None
    if L.check("dateValue", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    also = f" or {' or '.join(allow)}" if allow else ""
    raise ODataBadQuery(f"{_NAMES[name]} takes a date (YYYY-MM-DD){also}, not {text!r}", target=_NAMES[name])


def unindexed(column: Any, sqlite: bool) -> Any:
    """A period's date as SQLite's planner should not look it up by (``+column``): without statistics it took
    ``valid_from <= day`` for selective and read a team's members through the workspace's index on ``valid_from``
    (two thirds of every period) instead of the pair index, and sorted a month of periods to page them by key
    instead of walking the key (bench/JOURNAL.md). PostgreSQL weighs its statistics and keeps the column."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type) if sqlite else column


def in_force(t: Any, day: dt.date, sqlite: bool = False) -> ColumnElement[bool]:
    """A period row of ``t`` in force on ``day`` (valid_from inclusive, valid_to exclusive, NULL open)."""
    on = literal(day, Date())
    start, end = unindexed(t.c.valid_from, sqlite), unindexed(t.c.valid_to, sqlite)
    return and_(start <= on, or_(end.is_(None), end > on))


def as_of(es: EntitySet, day: dt.date, name: str, sqlite: bool) -> FromClause:
    """:func:`snapshot`, made once per set, day and name, as compiler.named_alias makes table aliases: a request
    that built its own spent more time on SQLAlchemy's cache keys and the entity's JSON expression (odata/query.py,
    ``_document``, cached per alias) than the database did."""
    return snapshot(es.name, day, name, sqlite)


@functools.lru_cache(maxsize=512)
def snapshot(set_name: str, day: dt.date, name: str, sqlite: bool) -> FromClause:
    """The rows of a snapshot set as they stood on ``day``, with the columns of its table (so properties, keys
    and joins read them alike): team members from the membership periods in force (of teams that still
    exist), dated columns from the period in force, the stored document with those dated members, every other
    column as it is today."""
    if set_name == "TeamMembers":
        return members_on(day, name, sqlite, existing_teams=True)
    t = SETS[set_name].table
    dated = DATED.get(set_name, {})

    def held(column: str, form: Any = None) -> Any:
        periods, owner, value = dated[column]
        read = periods.c[value] if form is None else form(periods.c[value])
        return (
            select(read)
            .where(
                periods.c.workspace_id == t.c.workspace_id, periods.c[owner] == t.c.id, in_force(periods, day, sqlite)
            )
            .scalar_subquery()
        )

    cols: list[Any] = []
    for c in t.c:
        if c.name == STORED_TEXT:
            names = {column: name for name, column in wire.USER_FIELDS}
            document: Any = c
            for column in dated:
                # The value's JSON text read in one subquery (the GUID's text uses it five times), ``null`` without
                # a period in force.
                text = func.coalesce(held(column, lambda v: feed.guid_json(v, sqlite)), literal("null", Text))
                document = feed.with_member(document, names[column], text, sqlite)
            cols.append(document.label(c.name))
        else:
            cols.append(held(c.name).label(c.name) if c.name in dated else c)
    alias = select(*cols).subquery(name)
    alias.c  # noqa: B018 - the column collection made now, before threads share the alias
    return alias


@functools.lru_cache(maxsize=512)
def members_on(day: dt.date, name: str, sqlite: bool, existing_teams: bool = False) -> FromClause:
    """The (team, user) pairs of ``team_members``'s shape whose membership period is in force on ``day``;
    ``created_at`` is when that period was recorded."""
    p = MEMBERSHIP_PERIODS
    stmt = select(p.c.workspace_id, p.c.team_id, p.c.user_id, p.c.created_at).where(in_force(p, day, sqlite))
    if existing_teams:
        team = select(TEAMS.c.id).where(TEAMS.c.workspace_id == p.c.workspace_id, TEAMS.c.id == p.c.team_id)
        stmt = stmt.where(exists(team))
    alias = stmt.subquery(name)
    alias.c  # noqa: B018 - as in as_of
    return alias
