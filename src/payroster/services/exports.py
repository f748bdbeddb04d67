"""Spreadsheets out: users, teams, memberships, custom variables and audit events as CSV or XLSX.

The JSON API's ``GET /api/v1/exports/...`` and the pages' "Export" links call :func:`prepare` with the list page's
filters, then stream the rows it reads. Rows are read in keyset-paged chunks of ``CHUNK``, each chunk in a read of
its own, so memory stays bounded whatever the workspace's size and a slow client holds no database connection or
snapshot between chunks (README.md, "Exports"). The columns are the import's, so a users export is a users import
file; every text cell a spreadsheet would run is neutralised (``domain/cells.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import simplejson
from sqlalchemy import ColumnElement, Connection, and_, bindparam, false, func, or_, select, type_coerce
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import NullType

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, CustomVariable, MembershipPeriod, Team, User, UserAlias, UserTag
from payroster.domain import effective, normalize, wire
from payroster.domain.cells import neutralise
from payroster.domain.errors import Detail, Invalid
from payroster.ids import parse_id
from payroster.services import listings, teams, users

CHUNK = 1000  # rows per read: one statement per chunk (and two for a chunk of users' tags and aliases)
XLSX_ROWS = 1_048_576  # rows of one Excel worksheet, its header included: more continue on another sheet
XLSX_CELL = 32_767  # characters of one Excel cell
# zlib's level for the workbook's parts: level 1 deflates a users sheet five times faster than the default 6 (at
# 316,000 rows/s against 65,000, where the whole export runs at 10,000-20,000) for a file 30% larger
# (bench/JOURNAL.md, "the XLSX export streamed").
XLSX_LEVEL = 1
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# The manager by e-mail, as the import reads it: an id would name nobody in another workspace.
USER_COLUMNS = ("emailAddress", "role", "firstName", "lastName", "directManagerEmail", "tags", "aliases")
TEAM_COLUMNS = (
    "name",
    "description",
    "parentTeam",
    "managerEmail",
    "managerCanViewResults",
    "managerCanViewCredits",
    "membersCanViewCredits",
)
MEMBERSHIP_COLUMNS = ("teamName", "emailAddress", "validFrom", "validTo")
VARIABLE_COLUMNS = ("targetType", "target", "name", "value", "startDate", "endDate")
EVENT_COLUMNS = ("occurredAt", "actor", "actorKind", "channel", "action", "targetType", "targetId", "changes")

Row = list[str | None]


def _fits() -> Invalid | None:
    return None


@dataclass(frozen=True)
class Export:
    """What one export writes: its file name's stem, the sheet's name, the header and the rows (read lazily), and
    the check that no cell of those rows is too long for an Excel cell (:func:`too_long`: the problem, or None)."""

    kind: str
    sheet: str
    columns: tuple[str, ...]
    rows: Iterator[Row]
    overlong: Callable[[], Invalid | None] = _fits

    def filename(self, fmt: str) -> str:
        """``payroster-users-2026-12-04.csv``."""
        return f"payroster-{self.kind}-{dt.date.today().isoformat()}.{fmt}"


# -- filters --------------------------------------------------------------------------------------------------


def _text(params: Mapping[str, str], name: str) -> str:
    """A filter's text; control characters are refused here (PostgreSQL cannot compare text holding NUL)."""
    value = params.get(name) or ""
    if normalize.has_control(value) or any("\ud800" <= ch <= "\udfff" for ch in value):
        raise Invalid(f"{name} holds control characters", details=[Detail("invalidCharacters", "not allowed", name)])
    return value


def _one_of(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _text(params, name) or default
    if value not in allowed:
        message = f"{name} must be one of {', '.join(v for v in allowed if v)}" + (" or empty" if "" in allowed else "")
        raise Invalid(message, details=[Detail("invalidValue", message, name)])
    return value


def _user_id(session: Session, ws: uuid.UUID, value: str) -> uuid.UUID | None:
    """A user named by id or e-mail; None when there is no such user in the workspace."""
    found = users.find_by_email(session, ws, value) if "@" in value else None
    if found is not None:
        return found.id
    uid = parse_id(value)
    if uid is None:
        return None
    exists = session.scalar(select(User.id).where(User.workspace_id == ws, User.id == uid))
    return uid if exists is not None else None


def _team_id(session: Session, ws: uuid.UUID, value: str) -> uuid.UUID | None:
    """A team named by id or name; None when there is no such team in the workspace."""
    tid = parse_id(value)
    if tid is not None and session.scalar(select(Team.id).where(Team.workspace_id == ws, Team.id == tid)):
        return tid
    found = teams.find_by_name(session, ws, value)
    return found.id if found is not None else None


def prepare(db: Database, ws: uuid.UUID, kind: str, params: Mapping[str, str]) -> Export:
    """Check the filters of an export of ``kind`` (a 422 before anything is sent) and return it, unread."""
    makers: dict[str, Callable[[Database, uuid.UUID, Mapping[str, str]], Export]] = {
        "users": _users,
        "teams": _teams,
        "memberships": _memberships,
        "custom-variables": _variables,
        "audit-events": _events,
    }
    return makers[kind](db, ws, params)


KINDS = ("users", "teams", "memberships", "custom-variables", "audit-events")


# -- users ----------------------------------------------------------------------------------------------------


def _users(db: Database, ws: uuid.UUID, params: Mapping[str, str]) -> Export:
    conds = listings.user_conditions(
        ws,
        _text(params, "q"),
        _one_of(params, "status", listings.STATUSES, "all"),
        _one_of(params, "role", ("", *normalize.ROLES), ""),
    )
    return Export("users", "Users", USER_COLUMNS, _user_rows(db, ws, conds), lambda: _long_lists(db, ws, conds))


def _raw(column: Any) -> Any:
    """A column read and compared as the driver gives it: a chunk's ids only match its users to their tags and
    aliases, and building a ``uuid.UUID`` of each was a quarter of the export's time on SQLite."""
    return type_coerce(column, NullType())


def _lists_statement(model: type[UserTag] | type[UserAlias], conds: list[ColumnElement[bool]]) -> Any:
    """The tags or aliases of a chunk's users, named by the chunk's first and last e-mail keys and the filter: three
    parameters, where the chunk's ids made a statement of a thousand that psycopg parsed anew for every chunk."""
    item = aliased(model)  # the filter's own EXISTS over the table must not correlate with the rows read here
    return (
        select(_raw(item.user_id), item.value)
        .join(User, and_(User.workspace_id == item.workspace_id, User.id == item.user_id))
        .where(*conds, User.email_key >= bindparam("first"), User.email_key <= bindparam("last"))
        .order_by(item.user_id, item.position)
    )


def _lists(conn: Connection, statement: Any, first: str, last: str) -> dict[Any, list[str]]:
    found: dict[Any, list[str]] = {}
    for uid, value in conn.execute(statement, {"first": first, "last": last}).all():
        found.setdefault(uid, []).append(value)
    return found


def _user_rows(db: Database, ws: uuid.UUID, conds: list[ColumnElement[bool]]) -> Iterator[Row]:
    # In e-mail order: the unique (workspace_id, email_key) index walks it, and the same people give the same
    # file in any workspace (a round trip through the import exports identically).
    manager = aliased(User)
    base = select(
        _raw(User.id).label("id"), User.email_key, User.email, User.role, User.active, User.first_name, User.last_name,
        manager.email.label("manager"),
    )  # fmt: skip
    base = _named(base, manager, User, User.direct_manager_id).where(*conds).order_by(User.email_key).limit(CHUNK)
    after = base.where(User.email_key > bindparam("last"))
    tag_statement, alias_statement = _lists_statement(UserTag, conds), _lists_statement(UserAlias, conds)
    last: str | None = None
    while True:
        with db.read() as s:
            conn = s.connection()  # Core rows: the ORM's loading of plain columns was a third of the time
            rows = conn.execute(base if last is None else after, {"last": last}).all()
            bounds = (rows[0].email_key, rows[-1].email_key) if rows else None
            tags = _lists(conn, tag_statement, *bounds) if bounds else {}
            aliases = _lists(conn, alias_statement, *bounds) if bounds else {}
        for r in rows:
            yield [
                r.email,
                wire.shown_role(r.role, r.active),
                r.first_name,
                r.last_name,
                r.manager,
                "|".join(tags.get(r.id, ())),
                "|".join(aliases.get(r.id, ())),
            ]
        if len(rows) < CHUNK:
            return
        last = rows[-1].email_key


# -- teams ----------------------------------------------------------------------------------------------------


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _teams(db: Database, ws: uuid.UUID, params: Mapping[str, str]) -> Export:
    conds = listings.team_conditions(ws, _text(params, "q"))
    return Export("teams", "Teams", TEAM_COLUMNS, _team_rows(db, ws, conds))


def _team_rows(db: Database, ws: uuid.UUID, conds: list[ColumnElement[bool]]) -> Iterator[Row]:
    parent, manager = aliased(Team), aliased(User)
    columns = (
        Team.name_key, Team.name, Team.description, parent.name.label("parent"), manager.email.label("manager"),
        Team.manager_can_view_results, Team.manager_can_view_credits, Team.members_can_view_credits,
    )  # fmt: skip
    base = select(*columns)
    base = _named(_named(base, parent, Team, Team.parent_team_id), manager, Team, Team.manager_id).where(*conds)
    for r in _keyset(db, base, Team.name_key, "name_key"):
        yield [
            r.name, r.description, r.parent, r.manager, _flag(r.manager_can_view_results),
            _flag(r.manager_can_view_credits), _flag(r.members_can_view_credits),
        ]  # fmt: skip


def _named(stmt: Any, other: Any, model: Any, reference: Any) -> Any:
    """``stmt`` outer-joined with the row of ``other`` (an alias) that ``reference`` of ``model`` names."""
    return stmt.outerjoin(other, and_(other.workspace_id == model.workspace_id, other.id == reference))


def _keyset(db: Database, base: Any, key: Any, name: str) -> Iterator[Any]:
    """The rows of ``base`` in ``key`` order, read ``CHUNK`` at a time (each page in a read of its own, after
    the last key seen: ``name`` is its column's label)."""
    base = base.order_by(key).limit(CHUNK)
    last = None
    while True:
        with db.read() as s:
            rows = s.execute(base if last is None else base.where(key > last)).all()
        yield from rows
        if len(rows) < CHUNK:
            return
        last = getattr(rows[-1], name)


# -- memberships ----------------------------------------------------------------------------------------------


def _memberships(db: Database, ws: uuid.UUID, params: Mapping[str, str]) -> Export:
    team, user = _text(params, "team").strip(), _text(params, "user").strip()
    team_conds: list[ColumnElement[bool]] = [Team.workspace_id == ws]
    user_conds: list[ColumnElement[bool]] = []
    with db.read() as s:
        if team:
            tid = _team_id(s, ws, team)
            team_conds.append(Team.id == tid if tid is not None else false())
        if user:
            uid = _user_id(s, ws, user)
            user_conds.append(MembershipPeriod.user_id == uid if uid is not None else false())
    return Export("memberships", "Memberships", MEMBERSHIP_COLUMNS, _membership_rows(db, ws, team_conds, user_conds))


def _membership_rows(
    db: Database, ws: uuid.UUID, team_conds: list[ColumnElement[bool]], user_conds: list[ColumnElement[bool]]
) -> Iterator[Row]:
    # Every period (ended ones too: the file carries the history), teams in name order, each team's periods by
    # member e-mail then start, both keyset-paged: a chunk never sorts more than one team's periods.
    team_base = select(Team.id, Team.name, Team.name_key).where(*team_conds).order_by(Team.name_key).limit(CHUNK)
    period = MembershipPeriod
    member_base = (
        select(User.email, User.email_key, period.valid_from, period.valid_to)
        .join(period, and_(period.workspace_id == User.workspace_id, period.user_id == User.id))
        .where(period.workspace_id == ws, *user_conds)
        .order_by(User.email_key, period.valid_from)
        .limit(CHUNK)
    )
    last_team: str | None = None
    while True:
        with db.read() as s:
            found = s.execute(team_base if last_team is None else team_base.where(Team.name_key > last_team)).all()
        for team in found:
            last: tuple[str, dt.date] | None = None
            while True:
                stmt = member_base.where(period.team_id == team.id)
                if last is not None:
                    key, start = last
                    stmt = stmt.where(or_(User.email_key > key, and_(User.email_key == key, period.valid_from > start)))
                with db.read() as s:
                    members = s.execute(stmt).all()
                for m in members:
                    yield [team.name, m.email, m.valid_from.isoformat(), m.valid_to.isoformat() if m.valid_to else None]
                if len(members) < CHUNK:
                    break
                last = (members[-1].email_key, members[-1].valid_from)
        if len(found) < CHUNK:
            return
        last_team = found[-1].name_key


# -- custom variables -----------------------------------------------------------------------------------------


def _variables(db: Database, ws: uuid.UUID, params: Mapping[str, str]) -> Export:
    kind = _one_of(params, "targetType", ("", "User", "Team"), "")
    target, name = _text(params, "target").strip(), _text(params, "name").strip()
    conds: list[ColumnElement[bool]] = [CustomVariable.workspace_id == ws]
    if kind:
        conds.append(CustomVariable.target_type == kind)
    if name:
        conds.append(CustomVariable.name_key == normalize.key(name))
    if target:
        with db.read() as s:
            tid = (_user_id(s, ws, target) if kind != "Team" else None) or (
                _team_id(s, ws, target) if kind != "User" else None
            )
        conds.append(CustomVariable.target_id == tid if tid is not None else false())
    rows = _variable_rows(db, conds)
    return Export("custom-variables", "CustomVariables", VARIABLE_COLUMNS, rows, lambda: _long_values(db, conds))


def _variable_rows(db: Database, conds: list[ColumnElement[bool]]) -> Iterator[Row]:
    # In id order (the order they were written, a target's entries together): the primary key walks it.
    base = _variable_base().where(*conds)
    for r in _keyset(db, base, CustomVariable.id, "id"):
        yield _variable_row(r)


def _variable_base() -> Any:
    user, team = aliased(User), aliased(Team)
    columns = (
        CustomVariable.id, CustomVariable.target_type, user.email, team.name.label("team"), CustomVariable.name,
        CustomVariable.value_json, CustomVariable.start_at, CustomVariable.end_at,
    )  # fmt: skip
    target = CustomVariable.target_id
    return _named(_named(select(*columns), user, CustomVariable, target), team, CustomVariable, target)


def _variable_row(r: Any) -> Row:
    value = simplejson.loads(r.value_json, use_decimal=True)
    return [
        r.target_type,
        r.email if r.target_type == "User" else r.team,
        r.name,
        value if isinstance(value, str) else r.value_json,  # numbers keep their exact digits
        effective.format_instant(r.start_at),
        effective.format_instant(r.end_at),
    ]


# -- audit events ---------------------------------------------------------------------------------------------


def _events(db: Database, ws: uuid.UUID, params: Mapping[str, str]) -> Export:
    flt = listings.EventFilter(*(_text(params, n) for n in ("actor", "action", "target", "since", "until")))
    problems = flt.problems()
    if problems:
        raise Invalid("; ".join(problems), details=[Detail("invalidDate", p, p.split()[0]) for p in problems])
    query = listings.events_query(ws, flt)
    return Export(
        "audit-events", "AuditEvents", EVENT_COLUMNS, _event_rows(db, query), lambda: _long_changes(db, query)
    )


def _event_rows(db: Database, base: Any) -> Iterator[Row]:
    # Newest first, as the Activity Log shows them, paged after the last (occurred_at, id) sent.
    base = base.limit(CHUNK)
    last: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        stmt = base
        if last is not None:
            at, id_ = last
            stmt = base.where(or_(AuditEvent.occurred_at < at, and_(AuditEvent.occurred_at == at, AuditEvent.id < id_)))
        with db.read() as s:
            rows = s.execute(stmt).all()
        for event, email in rows:
            yield _event_row(event, email)
        if len(rows) < CHUNK:
            return
        last = (rows[-1][0].occurred_at, rows[-1][0].id)


def _event_row(event: AuditEvent, email: str | None) -> Row:
    return [
        wire.time(event.occurred_at),
        email or event.actor_kind,
        event.actor_kind,
        event.channel,
        event.action,
        event.target_type,
        str(event.target_id),
        event.changes,
    ]


# -- cells too long for Excel ---------------------------------------------------------------------------------
#
# Checked before an XLSX export sends its first byte, one query for each column that can hold more than an Excel
# cell's XLSX_CELL characters given the domain's limits: a user's tags and aliases joined (up to MAX_ITEMS items of
# MAX_ITEM characters each), a custom variable's value (text of any length) and an audit event's changes (JSON of
# any length). Names and e-mails (255 and 254 characters), a team's description (4,000), dates and flags cannot.
# Each query finds candidates by a bound that a longer cell must pass (so it is cheap, and its answer is almost
# always empty); each candidate's cell is then built as the export writes it, neutralised, and measured.

CANDIDATES = 100  # candidate rows measured at most; the first too long, in the export's order, is reported
# Items of at most MAX_ITEM characters and their separators: a joined list longer than an Excel cell has more than
# LONG_LIST items, so one of them sits at a position of LONG_LIST or more (a user's positions are distinct).
LONG_LIST = XLSX_CELL // (normalize.MAX_ITEM + 1)


def _refusal(what: str, column: str, length: int) -> Invalid:
    message = (
        f"{what}: {length:,} characters, more than an Excel cell holds ({XLSX_CELL:,}). The XLSX file would lose the "
        "cell's end, so it is not sent: export as CSV (no such limit), or filter that row out"
    )
    return Invalid(message, details=[Detail("tooLong", message, column)])


def _measured(value: str | None) -> int:
    return 0 if value is None else len(neutralise(value))


def _long_lists(db: Database, ws: uuid.UUID, conds: list[ColumnElement[bool]]) -> Invalid | None:
    """The first user (in e-mail order) whose tags or aliases, joined, are too long for an Excel cell."""
    found: list[tuple[str, str, str, int]] = []  # the user's key and e-mail, the column, the cell's length
    with db.read() as s:
        for model, column in ((UserTag, "tags"), (UserAlias, "aliases")):
            many = select(model.user_id).where(model.workspace_id == ws, model.position >= LONG_LIST)
            stmt = select(User.id, User.email, User.email_key).where(*conds, User.id.in_(many))
            for uid, email, key in s.execute(stmt.order_by(User.email_key).limit(CANDIDATES)).all():
                items = select(model.value).where(model.workspace_id == ws, model.user_id == uid)
                length = _measured("|".join(s.scalars(items.order_by(model.position))))
                if length > XLSX_CELL:
                    found.append((key, email, column, length))
                    break
    if not found:
        return None
    _, email, column, length = min(found)  # the first in e-mail order
    return _refusal(f"the {column} of {email} (column {column})", column, length)


def _long_values(db: Database, conds: list[ColumnElement[bool]]) -> Invalid | None:
    """The first custom variable entry (in the export's order) whose value is too long for an Excel cell: its
    JSON text is at least as long as the cell less the one quote neutralising may add."""
    stmt = _variable_base().where(*conds, func.length(CustomVariable.value_json) >= XLSX_CELL)
    with db.read() as s:
        rows = s.execute(stmt.order_by(CustomVariable.id).limit(CANDIDATES)).all()
    for r in rows:
        row = _variable_row(r)
        if (length := _measured(row[3])) > XLSX_CELL:
            return _refusal(f"the value of {row[2]} for {row[1]} (column value)", "value", length)
    return None


def _long_changes(db: Database, query: Any) -> Invalid | None:
    """The first audit event (newest first, as exported) whose changes are too long for an Excel cell."""
    with db.read() as s:
        rows = s.execute(query.where(func.length(AuditEvent.changes) >= XLSX_CELL).limit(CANDIDATES)).all()
    for event, _ in rows:
        if (length := _measured(event.changes)) > XLSX_CELL:
            what = f"the changes of the {event.action} event of {wire.time(event.occurred_at)} (column changes)"
            return _refusal(what, "changes", length)
    return None


# -- writing --------------------------------------------------------------------------------------------------


def _cells(row: Row) -> list[str]:
    return ["" if v is None else neutralise(v) for v in row]


def csv_chunks(export: Export) -> Iterator[bytes]:
    """The export as UTF-8 CSV with a BOM (Excel then reads accents right), a chunk of rows at a time; the header
    goes out before the first read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export.columns)
    yield ("\ufeff" + buffer.getvalue()).encode()
    while True:
        buffer.seek(0)
        buffer.truncate()
        count = 0
        for row in export.rows:
            writer.writerow(_cells(row))
            count += 1
            if count == CHUNK:
                break
        if count:
            yield buffer.getvalue().encode()
        if count < CHUNK:
            return


# -- XLSX, streamed --------------------------------------------------------------------------------------------

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Every .xml part but the workbook and its styles is a worksheet: so the content types, which a zip reader looks for
# first, go out first, before the number of sheets is known.
_TYPES = (
    f'{_DECL}<Types xmlns="{_PKG}/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'{_DECL}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
# Style 0 is the default, style 1 the header's bold.
_STYLES = (
    f"{_DECL}<styleSheet {_NS}>"
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/>'
    "</font></fonts>"
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
# The header row frozen: the first row stays in view as the sheet scrolls.
_SHEET_HEAD = (
    f'{_DECL}<worksheet {_NS} xmlns:r="{_R}"><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
    '<sheetFormatPr defaultRowHeight="15"/><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"
# Characters XML 1.0 cannot hold, written as Excel escapes them (``_x0001_``); ``&``, ``<`` and ``>`` as entities.
# Most cells hold none of them: one search finds out (a translation of every cell was a third of the writing).
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_EDGE = (" ", "\t", "\n", "\r")


def _xml_text(value: str) -> str:
    if _SPECIAL.search(value) is not None:
        value = _UNWRITABLE.sub(lambda m: f"_x{ord(m.group()):04X}_", value)
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if value.startswith(_EDGE) or value.endswith(_EDGE):
        return f'<t xml:space="preserve">{value}</t>'
    return f"<t>{value}</t>"


def _letters(n: int) -> str:
    """The column letters of the ``n``-th column (0: A)."""
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


class _Sink:
    """Where the zip is written: bytes kept until the next chunk goes out. It cannot seek, so every member's sizes
    and checksum follow its data (a data descriptor) and the zip is never read back."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def too_long(export: Export) -> None:
    """``Invalid`` (a 422, before anything is sent) when a cell of the export's rows is too long for an Excel cell,
    naming the row's record and the column."""
    problem = export.overlong()
    if problem is not None:
        raise problem


def checked_rows(export: Export) -> Iterator[list[str]]:
    """The export's rows as neutralised cells, each checked against Excel's limit as it comes: :func:`too_long` has
    refused the export before its first byte if one was too long then, so this only stops a download whose rows
    grew meanwhile, short (the client sees an incomplete file, never a workbook missing a cell's end)."""
    for r, row in enumerate(export.rows, 2):
        cells = _cells(row)
        for c, value in enumerate(cells):
            if len(value) > XLSX_CELL:
                message = f"row {r}, column {export.columns[c]}: longer than an Excel cell, written since the check"
                raise Invalid(message, details=[Detail("tooLong", message, export.columns[c])])
        yield cells


def xlsx_chunks(export: Export, rows: Iterator[list[str]]) -> Iterator[bytes]:
    """The export as an XLSX workbook, streamed as it is written: a zip whose worksheet XML is deflated row by row
    (cells as inline strings, the header bold and frozen), its sizes after each part and its directory at the end.
    The first bytes go out before the first row is written; memory holds one chunk of rows."""
    sink = _Sink()
    letters = [_letters(c) for c in range(len(export.columns))]
    header = "".join(
        f'<c r="{letters[c]}1" s="1" t="inlineStr"><is>{_xml_text(name)}</is></c>'
        for c, name in enumerate(export.columns)
    )
    names: list[str] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=XLSX_LEVEL) as book:
        book.writestr("[Content_Types].xml", _TYPES)
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/styles.xml", _STYLES)
        yield sink.take()

        def begin() -> IO[bytes]:
            """The next sheet's part, its header row written."""
            names.append(export.sheet if not names else f"{export.sheet} {len(names) + 1}")
            # force_zip64: a sheet's size is not known when it starts, and its XML may pass 2 GiB (audit changes).
            part = book.open(f"xl/worksheets/sheet{len(names)}.xml", "w", force_zip64=True)
            part.write(f'{_SHEET_HEAD}<row r="1">{header}</row>'.encode())
            return part

        part, r = begin(), 1
        batch: list[str] = []
        try:
            for cells in rows:
                if r == XLSX_ROWS:  # Excel's last row: the rows go on in another sheet
                    part.write(("".join(batch) + _SHEET_TAIL).encode())
                    batch.clear()
                    part.close()
                    yield sink.take()
                    part, r = begin(), 1
                r += 1
                row = "".join(
                    f'<c r="{letters[c]}{r}" t="inlineStr"><is>{_xml_text(v)}</is></c>'
                    for c, v in enumerate(cells)
                    if v
                )
                # The last column's cell, if only empty: without a dimension (unknown while rows stream), readers
                # give each row the width of its last cell, and the header's width is every row's in the CSV.
                last = "" if cells[-1] else f'<c r="{letters[-1]}{r}"/>'
                batch.append(f'<row r="{r}">{row}{last}</row>')
                if len(batch) == CHUNK:
                    part.write("".join(batch).encode())
                    batch.clear()
                    yield sink.take()
            part.write(("".join(batch) + _SHEET_TAIL).encode())
        finally:
            part.close()
        sheets = "".join(f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>' for n, name in enumerate(names, 1))
        book.writestr(
            "xl/workbook.xml",
            f'{_DECL}<workbook {_NS} xmlns:r="{_R}"><bookViews><workbookView/></bookViews><sheets>{sheets}</sheets>'
            "</workbook>",
        )
        rels = "".join(
            f'<Relationship Id="rId{n}" Type="{_R}/worksheet" Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, len(names) + 1)
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_DECL}<Relationships xmlns="{_PKG}/relationships">{rels}'
            f'<Relationship Id="rId{len(names) + 1}" Type="{_R}/styles" Target="styles.xml"/></Relationships>',
        )
    yield sink.take()


@dataclass(frozen=True)
class Download:
    """What a door sends for an export: the body's chunks, its media type, its headers."""

    chunks: Iterator[bytes]
    media_type: str
    headers: dict[str, str]


def download(db: Database, ws: uuid.UUID, kind: str, fmt: str, params: Mapping[str, str]) -> Download:
    """An export of ``kind`` as ``fmt``: filters checked (422) and, for XLSX, every cell's length (:func:`too_long`,
    a 422), before the door sends anything; both formats then stream. Run it in a thread, and the chunks too."""
    export = prepare(db, ws, kind, params)
    headers = {"Content-Disposition": f'attachment; filename="{export.filename(fmt)}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        return Download(csv_chunks(export), FORMATS["csv"], headers)
    too_long(export)
    return Download(xlsx_chunks(export, checked_rows(export)), FORMATS["xlsx"], headers)
