"""Custom variables across people: one variable name (a quota, a rate) as a grid of people by periods, filtered
by team and tag, a page at a time, and the same grid as a CSV file (``exports.csv_chunks``).

The periods are the dates the workspace's entries of that name start on (among the people shown): a column runs
from its date until the next one, and a cell holds the value in force on the column's first day. Only the page's
people and their entries of that name are read; the file reads its people in keyset chunks."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import simplejson
from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session, aliased

from payroster.db.engine import Database
from payroster.db.models import CustomVariable, TeamMember, User, UserTag
from payroster.domain import effective, normalize
from payroster.services import exports

MAX_COLUMNS = 24  # the latest periods shown (two years of months); older ones are in the Custom tabs
MAX_NAMES = 500


@dataclass(frozen=True)
class Filters:
    """The grid's question: a variable name, people of a team (by id) and with a tag, and whether people with no
    entry of that name are listed too."""

    name: str
    team_id: uuid.UUID | None = None
    tag: str = ""
    missing: bool = False


@dataclass(frozen=True)
class Row:
    """One person's line: who, and the value shown under each column ('' where none is in force)."""

    id: uuid.UUID
    email: str
    name: str
    cells: list[str]


def names(session: Session, ws: uuid.UUID) -> list[str]:
    """The variable names people of the workspace have, once each (as first written), by name."""
    cv = CustomVariable
    stmt = (
        select(func.min(cv.name))
        .where(cv.workspace_id == ws, cv.target_type == "User")
        .group_by(cv.name_key)
        .order_by(cv.name_key)
        .limit(MAX_NAMES)
    )
    return list(session.scalars(stmt))


def _any(stmt: Select[Any]) -> ColumnElement[bool]:
    """``EXISTS (stmt OFFSET 0)``: one index probe per person. The ``OFFSET 0`` keeps PostgreSQL from turning the
    test into a join, which, while its statistics still said the tables were empty (new rows not yet analysed),
    it planned as a scan of every entry of the name for each person: seconds at 5,000 people instead of
    milliseconds (SQLite plans the same text as a probe too)."""
    return exists(stmt.offset(0))


def _filters(ws: uuid.UUID, flt: Filters, person: Any) -> list[ColumnElement[bool]]:
    """The team and tag filters on a column holding a person's id."""
    conds: list[ColumnElement[bool]] = []
    if flt.team_id is not None:
        tm = TeamMember
        conds.append(
            _any(select(tm.user_id).where(tm.workspace_id == ws, tm.team_id == flt.team_id, tm.user_id == person))
        )
    if flt.tag.strip():
        tag = UserTag
        key = normalize.key(flt.tag)
        conds.append(
            _any(select(tag.user_id).where(tag.workspace_id == ws, tag.user_id == person, tag.value_key == key))
        )
    return conds


def conditions(ws: uuid.UUID, flt: Filters) -> list[ColumnElement[bool]]:
    """The people the grid lists, as conditions on ``users``."""
    conds: list[ColumnElement[bool]] = [User.workspace_id == ws]
    if not flt.missing:
        cv = aliased(CustomVariable)
        held = select(cv.target_id).where(
            cv.workspace_id == ws,
            cv.target_id == User.id,
            cv.name_key == normalize.key(flt.name),
            cv.target_type == "User",
        )
        conds.append(_any(held))
    return conds + _filters(ws, flt, User.id)


def columns(session: Session, ws: uuid.UUID, flt: Filters) -> list[dt.datetime | None]:
    """The periods' first days (None: entries with no start), oldest first, the latest ``MAX_COLUMNS`` of them."""
    cv = CustomVariable
    stmt = (
        select(cv.start_at)
        .where(cv.workspace_id == ws, cv.target_type == "User", cv.name_key == normalize.key(flt.name))
        .where(*_filters(ws, flt, cv.target_id))
        .distinct()
        .order_by(cv.start_at.desc().nulls_last())
        .limit(MAX_COLUMNS)
    )
    starts = list(session.scalars(stmt))
    return sorted(starts, key=lambda d: (d is not None, d or dt.datetime.min))


def column_title(start: dt.datetime | None, following: dt.datetime | None) -> str:
    """A column's heading: its dates as dates."""
    first = _day(start) if start else "open start"
    return f"{first} – {_day(following)}" if following else f"from {first}" if start else first


def _day(value: dt.datetime | None) -> str:
    return effective.format_day(value) or ""


def _text(value_json: str) -> str:
    value = simplejson.loads(value_json, use_decimal=True)
    return value if isinstance(value, str) else value_json  # numbers keep their exact digits


def _rows(
    session: Session, ws: uuid.UUID, people: list[tuple[uuid.UUID, str, str | None, str | None]], key: str,
    starts: list[dt.datetime | None],
) -> list[Row]:  # fmt: skip
    """The cells of these people: their entries of the name read in one statement, placed under each column."""
    ids = [p[0] for p in people]
    cv = CustomVariable
    held: dict[uuid.UUID, list[tuple[dt.datetime | None, dt.datetime | None, str]]] = {}
    if ids:
        stmt = select(cv.target_id, cv.start_at, cv.end_at, cv.value_json).where(
            cv.workspace_id == ws, cv.target_id.in_(ids), cv.name_key == key
        )
        for tid, start, end, value in session.execute(stmt):
            held.setdefault(tid, []).append((start, end, _text(value)))
    out = []
    for uid, email, first, last in people:
        cells = []
        for column in starts:
            entries = held.get(uid, [])
            if column is None:
                found = next((v for s, _, v in entries if s is None), "")
            else:
                found = next((v for s, e, v in entries if (s is None or s <= column) and (e is None or column < e)), "")
            cells.append(found)
        out.append(Row(uid, email, " ".join(p for p in (first, last) if p) or email, cells))
    return out


def page(
    session: Session, ws: uuid.UUID, flt: Filters, number: int, size: int
) -> tuple[list[dt.datetime | None], list[Row], int]:
    """The columns, one page of people (by last name, first name, e-mail) and how many people there are."""
    conds = conditions(ws, flt)
    total = session.scalar(select(func.count()).select_from(User).where(*conds)) or 0
    starts = columns(session, ws, flt)
    people = session.execute(
        select(User.id, User.email, User.first_name, User.last_name)
        .where(*conds)
        .order_by(User.last_name.asc().nulls_last(), User.first_name.asc().nulls_last(), User.email_key)
        .limit(size)
        .offset((number - 1) * size)
    ).all()
    found = [(p[0], p[1], p[2], p[3]) for p in people]
    return starts, _rows(session, ws, found, normalize.key(flt.name), starts), total


def export(db: Database, ws: uuid.UUID, flt: Filters) -> exports.Export:
    """The whole grid (every person the filters list, by e-mail) as an export ``exports.csv_chunks`` writes."""
    with db.read() as s:
        starts = columns(s, ws, flt)
    titles = [column_title(d, starts[i + 1] if i + 1 < len(starts) else None) for i, d in enumerate(starts)]
    return exports.Export(
        "variable-grid", "VariableGrid", ("emailAddress", "name", *titles), _export_rows(db, ws, flt, starts)
    )


def _export_rows(
    db: Database, ws: uuid.UUID, flt: Filters, starts: list[dt.datetime | None]
) -> Iterator[list[str | None]]:
    # Keyset chunks in e-mail order (the unique key), each read in a read of its own, as the other exports do.
    base = (
        select(User.id, User.email, User.first_name, User.last_name, User.email_key)
        .where(*conditions(ws, flt))
        .order_by(User.email_key)
        .limit(exports.CHUNK)
    )
    last: str | None = None
    key = normalize.key(flt.name)
    while True:
        with db.read() as s:
            people = s.execute(base if last is None else base.where(User.email_key > last)).all()
            rows = _rows(s, ws, [(p[0], p[1], p[2], p[3]) for p in people], key, starts)
        if people:
            last = people[-1][4]
        for row in rows:
            yield [row.email, row.name, *row.cells]
        if len(people) < exports.CHUNK:
            return
