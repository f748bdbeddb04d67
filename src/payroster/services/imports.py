"""Spreadsheet imports of users, teams, memberships and custom variables (README.md, "Imports").

Two passes, each streaming (memory does not grow with the file):

1. :func:`prepare` reads the file (CSV, TSV or an XLSX workbook, ``services/sheets.py``), checks every cell by the
   rules of the kind's single write, and copies the rows, cells by field, to a temporary file per kind. Every bad
   cell is reported by sheet (or line), row and column; nothing has touched the database yet.
2. :func:`apply` writes them in one transaction that has the workspace to itself, in dependency order (users,
   teams, memberships, custom variables), through the services every other door calls: users in chunks through
   the bulk upsert, the others row by row. What needs the database (a team or e-mail the row names, a new user's
   role, the last full admin, cycles, overlapping entries) is checked there; any problem rolls the whole import
   back and is reported like the cells' problems.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import itertools
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import simplejson
from sqlalchemy import select
from sqlalchemy.orm import Session

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import Team, User
from payroster.domain import normalize, numbers
from payroster.domain.errors import Detail, DomainError, Invalid
from payroster.observability import metrics
from payroster.services import bulk, memberships, reads, sheets, teams, userkernel, variables
from payroster.services.context import Actor
from payroster.services.exports import MEMBERSHIP_COLUMNS, TEAM_COLUMNS, VARIABLE_COLUMNS
from payroster.services.inputs import (
    UNSET,
    USER_FIELDS,
    Pointer,
    TeamInput,
    UserInput,
    canonical,
    parse_date,
    parse_user,
)
from payroster.services.inputs import text_field as _text

ORDER = ("users", "teams", "memberships", "custom-variables")  # a later kind names records of an earlier one
SHEETS = {"users": "Users", "teams": "Teams", "memberships": "Memberships", "custom-variables": "CustomVariables"}
# A users file names a manager by e-mail (as the export writes it) or by id (of this workspace), not both.
USER_COLUMNS = (*USER_FIELDS[:4], "directManagerEmail", *USER_FIELDS[4:])
COLUMNS: dict[str, tuple[str, ...]] = {
    "users": USER_COLUMNS,
    "teams": TEAM_COLUMNS,
    "memberships": MEMBERSHIP_COLUMNS,
    "custom-variables": VARIABLE_COLUMNS,
}
CHUNK = 5000  # user rows per bulk upsert; the other kinds are written row by row
REPORTED = 1000  # problems kept for the report (all are counted)
EXPUNGE = 1000  # rows after which the session forgets the records it loaded (its identity map would grow)


class Progress(Protocol):
    """Told how far an import is: a stage starts with its total (bytes or rows), then advances."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class _Quiet:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


# Cells typed over a file's own (a page's preview fixing them in place): by row place ("line 4", "Teams, row 3"),
# the new text of each column named, an empty text emptying the cell.
Edits = Mapping[str, Mapping[str, str]]


@dataclass
class Refused(Invalid):
    """Every problem of an import (nothing was written) and the cells of the rows they are in, as read (with the
    edits): by place, the row's kind and cells by column. A page shows those rows to be fixed in place."""

    rows: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


@dataclass
class Problems:
    """The problems found so far: the first ``REPORTED`` kept, every one counted, with the rows they are in."""

    kept: list[Detail] = field(default_factory=list)
    count: int = 0
    rows: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def add(self, code: str, message: str, target: str) -> None:
        """Record a problem of one cell (``target``: "line 4, role", "Teams, row 3, parentTeam")."""
        self.count += 1
        if len(self.kept) < REPORTED:
            self.kept.append(Detail(code, message, target))

    def extend(self, details: list[Detail]) -> None:
        """Record problems already addressed."""
        for d in details:
            self.add(d.code, d.message, d.target or "")

    def keep_row(self, where: str, kind: str, row: dict[str, str]) -> None:
        """Keep the cells of a row with a problem (those of the first ``REPORTED`` such rows)."""
        if len(self.rows) < REPORTED:
            self.rows.setdefault(where, (kind, dict(row)))

    def rows_of(self, spool: Spool) -> None:
        """Keep the rows of ``spool`` the kept problems name (a problem the database found names a row's place)."""
        places = {t for d in self.kept if d.target for t in (d.target, d.target.rpartition(", ")[0])}
        for where, row in spool:
            if where in places:
                self.keep_row(where, spool.kind, row)

    def error(self) -> Refused:
        """Every problem as one error; nothing was written."""
        more = f" (the first {REPORTED:,} are listed)" if self.count > REPORTED else ""
        message = f"{self.count:,} problems in the file; nothing was written{more}"
        return Refused(message, details=self.kept, rows=self.rows)


def _at(where: str) -> Pointer:
    return lambda name: f"{where}, {name}" if name else where


# -- pass 1: reading and checking cells ------------------------------------------------------------------------


@dataclass
class Spool:
    """One kind's rows, checked, in a temporary file: the row's place, then its cells in ``COLUMNS`` order."""

    kind: str
    file: IO[str]
    rows: int = 0

    def __iter__(self) -> Iterator[tuple[str, dict[str, str]]]:
        self.file.seek(0)
        names = COLUMNS[self.kind]
        for where, *cells in csv.reader(self.file):
            yield where, {n: c for n, c in zip(names, cells, strict=True) if c}


@dataclass
class Prepared:
    """A file read and checked: a spool per kind it holds."""

    spools: dict[str, Spool]

    def close(self) -> None:
        """Remove the temporary files."""
        for spool in self.spools.values():
            spool.file.close()

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sheet_kind(name: str) -> str | None:
    """The kind a worksheet holds by its name (``Users``; an export's overflow sheet ``Users 2`` too)."""
    base = re.sub(r"\s+\d+$", "", name).replace(" ", "").casefold()
    return next((k for k, s in SHEETS.items() if s.casefold() == base), None)


def prepare(path: Path, kind: str | None, progress: Progress | None = None, edits: Edits | None = None) -> Prepared:
    """Read ``path`` (one kind's CSV, TSV or XLSX; or, with ``kind`` None, a workbook of the four sheets), with
    ``edits`` over its cells, and check every cell; :class:`Refused` with every problem found, else the rows spooled
    for :func:`apply`."""
    progress = progress or _Quiet()
    problems = Problems()
    sources: list[tuple[str, Iterator[sheets.Row], str, int]] = []  # kind, rows, place prefix, size
    if sheets.is_xlsx(path):
        found = sheets.inspect_xlsx(path)
        for sheet in found:
            sheet_kind = _sheet_kind(sheet.name)
            if kind is None and sheet_kind is None:
                names = ", ".join(SHEETS.values())
                problems.add("unknownSheet", f"sheet {sheet.name} is none of {names}", f"sheet {sheet.name}")
            elif sheet_kind == kind or kind is None or (len(found) == 1 and sheet_kind is None):
                sources.append((kind or sheet_kind or "", sheets.xlsx_rows(path, sheet), f"{sheet.name}, row", 0))
        if kind is not None and not sources:
            message = f"the workbook has no sheet named {SHEETS[kind]}"
            problems.add("missingSheet", message, "file")
    elif kind is None:
        raise Invalid(
            "a workbook import takes an XLSX file", details=[Detail("invalidFile", "not an XLSX workbook", "file")]
        )
    else:
        sources.append((kind, sheets.csv_rows(path), "line", path.stat().st_size))
    if problems.count:
        raise problems.error()
    spools: dict[str, Spool] = {}
    try:
        for source_kind, rows, prefix, size in sources:
            spool = spools.get(source_kind)
            if spool is None:
                spool = spools[source_kind] = Spool(source_kind, tempfile.TemporaryFile("w+", newline=""))  # noqa: SIM115
            _read(spool, rows, prefix, size, problems, progress, edits or {})
    except BaseException:
        Prepared(spools).close()
        raise
    if problems.count:
        Prepared(spools).close()
        raise problems.error()
    return Prepared(spools)


def _read(
    spool: Spool,
    rows: Iterator[sheets.Row],
    prefix: str,
    size: int,
    problems: Problems,
    progress: Progress,
    edits: Edits,
) -> None:
    check = CHECKS[spool.kind]
    names = COLUMNS[spool.kind]
    writer = csv.writer(spool.file)
    folded = {n.casefold(): n for n in names}  # field names match case-insensitively (``EmailAddress``)
    progress.start(f"reading {SHEETS[spool.kind]}", size)
    for number, cells in rows:
        row = {folded.get(k.casefold(), k): v for k, v in cells.items()}
        where = f"{prefix} {number}"
        for name, text in edits.get(where, {}).items():
            if text:
                row[name] = text
            else:
                row.pop(name, None)
        found = check(row, _at(where))
        if found:
            problems.extend(found)
            problems.keep_row(where, spool.kind, row)
        elif not problems.count:  # once a problem is found the rest is only checked
            writer.writerow([where, *(row.get(n, "") for n in names)])
        spool.rows += 1
        if spool.rows % 10_000 == 0:
            progress.advance(10_000)
    progress.advance(spool.rows % 10_000)


def parse_user_row(row: dict[str, str], at: Pointer) -> tuple[UserInput, str | None, list[Detail]]:
    """A user's row checked: the upsert's fields, and the manager's e-mail when the row names one."""
    fields = {k: v for k, v in row.items() if k != "directManagerEmail"}
    inp, problems = parse_user(fields, at)
    manager = row.get("directManagerEmail", "").strip() or None
    if manager is not None:
        if why := normalize.email_problem(manager):
            problems.append(Detail("invalidEmail", why, at("directManagerEmail")))
        if "directManagerId" in fields:
            message = "give directManagerEmail or directManagerId, not both"
            problems.append(Detail("duplicateField", message, at("directManagerEmail")))
    return inp, manager, problems


def _check_user(row: dict[str, str], at: Pointer) -> list[Detail]:
    return parse_user_row(row, at)[2]


@dataclass
class TeamRow:
    """A team's row: fields absent from the row are ``UNSET`` (kept as stored)."""

    name: str
    description: Any = UNSET
    parent: Any = UNSET
    manager: Any = UNSET
    flags: dict[str, bool] = field(default_factory=dict)


_TRUE, _FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n"}


def parse_team(row: dict[str, str], at: Pointer) -> tuple[TeamRow | None, list[Detail]]:
    """A team's row checked: its name, description, parent's name, manager's e-mail and flags."""
    data, problems = canonical(row, TEAM_COLUMNS, at)
    name = _text(data.get("name"), "name", at, problems)
    if name is None and not problems:
        problems.append(Detail("required", "name is required", at("name")))
    team = TeamRow(name or "")
    if "description" in data:
        team.description = _text(data["description"], "description", at, problems, limit=4000)
    if "parentTeam" in data:
        team.parent = _text(data["parentTeam"], "parentTeam", at, problems)
    if "managerEmail" in data:
        why = normalize.email_problem(data["managerEmail"])
        if why:
            problems.append(Detail("invalidEmail", why, at("managerEmail")))
        team.manager = data["managerEmail"].strip()
    for flag in TEAM_COLUMNS[4:]:
        if flag in data:
            text = data[flag].strip().casefold()
            if text not in _TRUE | _FALSE:
                problems.append(Detail("invalidType", f"{flag} must be true or false", at(flag)))
            team.flags[flag] = text in _TRUE
    return (None if problems else team), problems


@dataclass
class MembershipRow:
    """A membership's row: the team's name, the person's e-mail, the period (None: from today, open)."""

    team: str
    email: str
    start: dt.date | None
    end: dt.date | None


def parse_membership(row: dict[str, str], at: Pointer) -> tuple[MembershipRow | None, list[Detail]]:
    """A membership's row checked."""
    data, problems = canonical(row, MEMBERSHIP_COLUMNS, at)
    team = _text(data.get("teamName"), "teamName", at, problems)
    if team is None:
        problems.append(Detail("required", "teamName is required", at("teamName")))
    email = data.get("emailAddress", "").strip()
    why = normalize.email_problem(email) if email else "emailAddress is required"
    if why:
        problems.append(Detail("invalidEmail", why, at("emailAddress")))
    start = parse_date(data.get("validFrom"), "validFrom", at, problems)
    end = parse_date(data.get("validTo"), "validTo", at, problems)
    if end is not None and end <= (start or end):
        problems.append(Detail("invalidPeriod", "validTo must be after validFrom", at("validTo")))
    if problems:
        return None, problems
    return MembershipRow(team or "", email, start, end), problems


_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def cell_value(text: str | None) -> variables.Scalar:
    """A variable's value from its cell as an export writes it: a JSON number, ``true``, ``false`` or ``null``
    is that value, anything else (an empty cell too) the text itself."""
    if text is None:
        return ""
    stripped = text.strip()
    if stripped in ("true", "false"):
        return stripped == "true"
    if stripped == "null":
        return None
    if _NUMBER.fullmatch(stripped):
        value: variables.Scalar = simplejson.loads(stripped, use_decimal=True, parse_int=numbers.integer)
        return value
    return text


@dataclass
class VariableRow:
    """A variable entry's row: its target (``User`` by e-mail or ``Team`` by name) and the entry's fields."""

    target_type: str
    target: str
    entry: dict[str, Any]

    @property
    def target_key(self) -> tuple[str, str]:
        """The target as compared: its type and normalised e-mail or name."""
        if self.target_type == "User":
            return self.target_type, normalize.email_key(self.target)
        return self.target_type, normalize.key(self.target)


def parse_variable(row: dict[str, str], at: Pointer) -> tuple[VariableRow | None, list[Detail]]:
    """A custom variable entry's row checked (its entry by the API's own rules)."""
    data, problems = canonical(row, VARIABLE_COLUMNS, at)
    kind = data.get("targetType", "").strip().capitalize()
    if kind not in ("User", "Team"):
        problems.append(Detail("invalidValue", "targetType must be User or Team", at("targetType")))
    target = _text(data.get("target"), "target", at, problems)
    if target is None:
        problems.append(Detail("required", "target is required (an e-mail or a team's name)", at("target")))
    elif kind == "User" and (why := normalize.email_problem(target)):
        problems.append(Detail("invalidEmail", why, at("target")))
    entry = {
        "name": data.get("name"),
        "value": cell_value(data.get("value")),
        "startDate": data.get("startDate"),
        "endDate": data.get("endDate"),
    }
    try:
        variables.parse_entries([entry])
    except Invalid as exc:
        problems += [Detail(d.code, d.message, at((d.target or "").rpartition("/")[2])) for d in exc.details]
    if problems:
        return None, problems
    return VariableRow(kind, target or "", entry), problems


CHECKS: dict[str, Callable[[dict[str, str], Pointer], list[Detail]]] = {
    "users": _check_user,
    "teams": lambda row, at: parse_team(row, at)[1],
    "memberships": lambda row, at: parse_membership(row, at)[1],
    "custom-variables": lambda row, at: parse_variable(row, at)[1],
}


# -- pass 2: writing ------------------------------------------------------------------------------------------


@dataclass
class Counts:
    """What one kind's rows did, as sequential single writes would report it."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def wire(self) -> dict[str, int]:
        """The counts as the CLI and the pages show them."""
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged}


class _DryRun(Exception):
    """Rolls back a :func:`check`'s transaction once every row is written."""


def check(db: Database, actor: Actor, prepared: Prepared) -> dict[str, Counts]:
    """What :func:`apply` would do, found by doing it in a transaction that is then rolled back (the rules that
    need the database are checked exactly as they will be); ``Invalid`` with every problem."""
    try:
        _write(db, actor, prepared, _Quiet(), dry_run=True)
    except _DryRun as done:
        counts: dict[str, Counts] = done.args[0]
        return counts
    raise AssertionError("a dry run always rolls back")  # pragma: no cover


def apply(db: Database, actor: Actor, prepared: Prepared, progress: Progress | None = None) -> dict[str, Counts]:
    """Write every kind of ``prepared`` in one transaction, in dependency order; ``Invalid`` (nothing written)
    with every problem the database showed."""
    done = _write(db, actor, prepared, progress or _Quiet())
    users = done.get("users")
    if users is not None:
        metrics.imported(actor.channel, users.created, users.updated, users.unchanged)
        if users.rows >= bulk.ANALYZE_AFTER:
            db.refresh_statistics(("users", "user_tags", "user_aliases", "audit_events"))
    return done


def _write(
    db: Database, actor: Actor, prepared: Prepared, progress: Progress, dry_run: bool = False
) -> dict[str, Counts]:
    problems = Problems()
    done: dict[str, Counts] = {}
    with db.write(actor.workspace_id, exclusive=True) as session:
        for kind in ORDER:
            spool = prepared.spools.get(kind)
            if spool is None:
                continue
            progress.start(f"writing {SHEETS[kind]}", spool.rows)
            done[kind] = counts = Counts(rows=spool.rows)
            WRITERS[kind](session, actor, spool, counts, problems, progress)
            if problems.count:  # later kinds would only report what depends on these rows; rolled back
                problems.rows_of(spool)
                raise problems.error()
        if dry_run:
            raise _DryRun(done)
    return done


def _write_users(
    session: Session, actor: Actor, spool: Spool, counts: Counts, problems: Problems, progress: Progress
) -> None:
    """Chunks of ``CHUNK`` rows through the bulk upsert, each seeing the ones before it in the transaction.

    A manager named by e-mail who is not a user yet (a later row creates them: an export is in e-mail order) is
    set in a second pass over those rows only, kept in a temporary file meanwhile."""
    ws = actor.workspace_id
    chunk: list[UserInput] = []
    places: list[str] = []
    managers: list[str | None] = []
    with tempfile.TemporaryFile("w+", newline="") as later:
        pending = csv.writer(later)

        def flush() -> bool:
            found = _user_ids(session, ws, [m for m in managers if m is not None])
            waiting: list[int] = []
            for n, manager in enumerate(managers):
                if manager is not None:
                    uid = found.get(normalize.email_key(manager))
                    if uid is None:
                        waiting.append(n)
                    else:
                        chunk[n].direct_manager_id = uid
            named = ["directManagerEmail" if m else "directManagerId" for m in managers]
            result = _upsert(session, actor, chunk, places, problems, named)
            if result is None:
                return False
            counts.created += result.created
            counts.updated += result.updated
            counts.unchanged += result.unchanged
            for n in waiting:
                inp = chunk[n]
                date = inp.effective_date.isoformat() if inp.effective_date else ""
                unchanged = "" if result.changed[n] else "1"  # counted unchanged so far
                pending.writerow([places[n], inp.email, managers[n], date, unchanged])
            progress.advance(len(chunk))
            session.expunge_all()
            chunk.clear()
            places.clear()
            managers.clear()
            return True

        for where, row in spool:
            inp, manager, _ = parse_user_row(row, _at(where))
            chunk.append(inp)
            places.append(where)
            managers.append(manager)
            if len(chunk) == CHUNK and not flush():
                return
        if chunk and not flush():
            return
        later.seek(0)
        _write_managers(session, actor, csv.reader(later), counts, problems)


def _user_ids(session: Session, ws: uuid.UUID, emails: list[str]) -> dict[str, uuid.UUID]:
    """The users of these e-mails that exist, by normalised e-mail."""
    return reads.ids_by_key(session, ws, User, {normalize.email_key(e) for e in emails})


def _team_ids(session: Session, ws: uuid.UUID, names: list[str]) -> dict[str, uuid.UUID]:
    """The teams of these names that exist, by normalised name."""
    return reads.ids_by_key(session, ws, Team, {normalize.key(n) for n in names})


def _upsert(
    session: Session, actor: Actor, chunk: list[UserInput], places: list[str], problems: Problems, manager: list[str]
) -> userkernel.Outcome | None:
    """One chunk through the bulk upsert; its problems by the rows' places (``manager``: the column each row's
    ``directManagerId`` problem is reported under, the one the row named its manager in). None when refused."""
    try:
        # The collector paused for the chunk only (bulk.collector_paused says why), then the chunk's own
        # cycles collected: paused for the whole import, they piled up with the rows.
        with bulk.collector_paused():
            result = bulk.apply(session, actor, chunk)
        gc.collect(1)
    except Invalid as exc:
        for d in exc.details:
            row, _, column = (d.target or "").lstrip("/").partition("/")
            column = manager[int(row)] if column == "directManagerId" and row.isdigit() else column
            where = places[int(row)] if row.isdigit() else (d.target or "")
            problems.add(d.code, d.message, f"{where}, {column}" if column else where)
        return None
    return result


def _write_managers(
    session: Session, actor: Actor, rows: Iterator[list[str]], counts: Counts, problems: Problems
) -> None:
    """The managers left for later (place, e-mail, manager's e-mail, effective date, counted unchanged), now
    that every row's user exists: a chunk at a time, through the bulk upsert."""
    ws = actor.workspace_id
    while part := list(itertools.islice(rows, CHUNK)):
        found = _user_ids(session, ws, [r[2] for r in part])
        chunk: list[UserInput] = []
        places: list[str] = []
        for where, email, manager, date, _ in part:
            uid = found.get(normalize.email_key(manager))
            if uid is None:
                problems.add("unknownUser", "no user of this workspace has this e-mail", f"{where}, directManagerEmail")
                continue
            effective = dt.date.fromisoformat(date) if date else None
            chunk.append(UserInput(email=email, direct_manager_id=uid, effective_date=effective))
            places.append(where)
        if problems.count:
            continue  # the rest is only checked
        result = _upsert(session, actor, chunk, places, problems, ["directManagerEmail"] * len(chunk))
        if result is None:
            continue
        moved = sum(1 for (*_, unchanged), changed in zip(part, result.changed, strict=True) if unchanged and changed)
        counts.unchanged -= moved
        counts.updated += moved
        session.expunge_all()


def _user_id(session: Session, ws: uuid.UUID, email: str) -> uuid.UUID | None:
    stmt = select(User.id).where(User.workspace_id == ws, User.email_key == normalize.email_key(email))
    return session.scalar(stmt)


def _team_id(session: Session, ws: uuid.UUID, name: str) -> uuid.UUID | None:
    return session.scalar(select(Team.id).where(Team.workspace_id == ws, Team.name_key == normalize.key(name)))


def _forget(session: Session, n: int) -> None:
    """Every ``EXPUNGE`` rows, the records the services loaded leave the session (they are written)."""
    if n % EXPUNGE == 0:
        session.flush()
        session.expunge_all()


def _write_teams(
    session: Session, actor: Actor, spool: Spool, counts: Counts, problems: Problems, progress: Progress
) -> None:
    """Each row upserted by name; a parent named before its own row is set in a second pass over the rows."""
    ws = actor.workspace_id
    later = False
    for n, (where, row) in enumerate(spool, 1):
        team, _ = parse_team(row, _at(where))
        assert team is not None
        inp = TeamInput(name=team.name, description=team.description, flags=team.flags)
        if team.manager not in (UNSET, None):
            inp.manager_id = _user_id(session, ws, team.manager)
            if inp.manager_id is None:
                problems.add("unknownUser", "no user of this workspace has this e-mail", f"{where}, managerEmail")
                continue
        if team.parent not in (UNSET, None):
            inp.parent_team_id = _team_id(session, ws, team.parent)
            if inp.parent_team_id is None:  # its row comes later in the file
                inp.parent_team_id, later = UNSET, True
        existing = teams.find_by_name(session, ws, team.name)
        before = teams.snapshot(existing) if existing is not None else None
        try:
            made, created = teams.upsert(session, actor, inp)
        except DomainError as exc:
            problems.add(exc.code, exc.message, f"{where}, {_team_column(exc.target)}")
            continue
        counts.created += created
        changed = not created and teams.snapshot(made) != before
        counts.updated += changed
        counts.unchanged += not created and not changed
        _forget(session, n)
        if n % 1000 == 0:
            progress.advance(1000)
    if later and not problems.count:
        for where, row in spool:
            team, _ = parse_team(row, _at(where))
            assert team is not None
            if team.parent in (UNSET, None):
                continue
            parent = _team_id(session, ws, team.parent)
            if parent is None:
                problems.add("unknownTeam", "no team of this workspace has this name", f"{where}, parentTeam")
                continue
            stored = teams.find_by_name(session, ws, team.name)
            if stored is not None and stored.parent_team_id != parent:
                try:
                    teams.upsert(session, actor, TeamInput(name=team.name, parent_team_id=parent))
                except DomainError as exc:
                    problems.add(exc.code, exc.message, f"{where}, parentTeam")
    progress.advance(spool.rows % 1000)


def _team_column(target: str | None) -> str:
    return {"managerId": "managerEmail", "parentTeamId": "parentTeam"}.get(target or "", target or "name")


def _write_memberships(
    session: Session, actor: Actor, spool: Spool, counts: Counts, problems: Problems, progress: Progress
) -> None:
    """Each row's period added (merged with the periods it overlaps or touches, as the API's add does), ``CHUNK``
    rows at a time set-based: a person's rows for a team in file order, an audit event per person and team."""
    ws = actor.workspace_id
    team_ids: dict[str, uuid.UUID | None] = {}  # by name as written; cleared when it grows large
    batch: list[tuple[str, MembershipRow]] = []
    today = clock.today()

    def flush() -> None:
        users = _user_ids(session, ws, [m.email for _, m in batch])
        wanted: dict[uuid.UUID, dict[uuid.UUID, list[tuple[dt.date, dt.date | None]]]] = {}
        for where, member in batch:
            team_id, user_id = team_ids[member.team], users.get(normalize.email_key(member.email))
            if team_id is None:
                problems.add("unknownTeam", "no team of this workspace has this name", f"{where}, teamName")
            if user_id is None:
                problems.add("unknownUser", "no user of this workspace has this e-mail", f"{where}, emailAddress")
            start = member.start or today
            if member.end is not None and member.end <= start:
                problems.add("invalidPeriod", "validTo must be after validFrom (today when empty)", f"{where}, validTo")
            if team_id is not None and user_id is not None:
                wanted.setdefault(team_id, {}).setdefault(user_id, []).append((start, member.end))
        if problems.count:
            return  # the rest is only checked
        for team_id, spans in wanted.items():
            for flags in memberships.add_periods(session, actor, team_id, spans).values():
                counts.created += sum(flags)
                counts.unchanged += len(flags) - sum(flags)
        session.flush()
        session.expunge_all()

    for n, (where, row) in enumerate(spool, 1):
        member, _ = parse_membership(row, _at(where))
        assert member is not None
        if len(team_ids) > 10_000:
            team_ids.clear()
        if member.team not in team_ids:
            team_ids[member.team] = _team_id(session, ws, member.team)
        batch.append((where, member))
        if len(batch) == CHUNK:
            flush()
            batch.clear()
        if n % 1000 == 0:
            progress.advance(1000)
    if batch:
        flush()
    progress.advance(spool.rows % 1000)


def _write_variables(
    session: Session, actor: Actor, spool: Spool, counts: Counts, problems: Problems, progress: Progress
) -> None:
    """A target's consecutive rows replace its entries all at once (docs/rules.md, "Effective dating"), some
    ``EXPUNGE`` targets at a time set-based."""
    seen: set[tuple[str, str]] = set()  # targets written: a target's rows must be together
    group: list[tuple[str, VariableRow]] = []
    ready: list[tuple[str, VariableRow, list[variables.Entry]]] = []  # the first row's place, the target, entries
    ws = actor.workspace_id

    def target() -> None:
        first, head = group[0]
        key = head.target_key
        if key in seen:
            message = f"{head.target}'s entries must be on consecutive rows: a target's entries are replaced at once"
            problems.add("notConsecutive", message, f"{first}, target")
            return
        seen.add(key)
        try:
            entries = variables.parse_entries([r.entry for _, r in group])
        except Invalid as exc:
            for d in exc.details:
                index, _, column = (d.target or "").lstrip("/").partition("/")
                where = group[int(index)][0] if index.isdigit() else first
                problems.add(d.code, d.message, f"{where}, {column or 'startDate'}")
            return
        ready.append((first, head, entries))

    def flush() -> None:
        """The targets read so far, found by e-mail or name (a read for each kind), then written."""
        people = _user_ids(session, ws, [h.target for _, h, _ in ready if h.target_type == "User"])
        groups = _team_ids(session, ws, [h.target for _, h, _ in ready if h.target_type == "Team"])
        found: list[tuple[str, uuid.UUID, list[variables.Entry]]] = []
        for first, head, entries in ready:
            target_id = (people if head.target_type == "User" else groups).get(head.target_key[1])
            if target_id is None:
                what = "user of this workspace has this e-mail" if head.target_type == "User" else "team has this name"
                problems.add("unknownTarget", f"no {what}", f"{first}, target")
            else:
                found.append((head.target_type, target_id, entries))
        if not problems.count:
            for had, changed in variables.replace_many(session, actor, found):
                counts.created += not had
                counts.updated += had and changed
                counts.unchanged += had and not changed
            session.flush()
            session.expunge_all()
        ready.clear()

    for n, (where, row) in enumerate(spool, 1):
        entry, _ = parse_variable(row, _at(where))
        assert entry is not None
        if group and group[0][1].target_key != entry.target_key:
            target()
            group.clear()
            if len(ready) >= EXPUNGE:
                flush()
        group.append((where, entry))
        if n % 1000 == 0:
            progress.advance(1000)
    if group:
        target()
    flush()
    progress.advance(spool.rows % 1000)


WRITERS: dict[str, Callable[[Session, Actor, Spool, Counts, Problems, Progress], None]] = {
    "users": _write_users,
    "teams": _write_teams,
    "memberships": _write_memberships,
    "custom-variables": _write_variables,
}


def run(
    db: Database, actor: Actor, path: Path, kind: str | None, progress: Progress | None = None
) -> dict[str, Counts]:
    """Both passes over ``path``: ``kind``'s rows, or with ``kind`` None every sheet of a workbook."""
    with prepare(path, kind, progress) as prepared:
        return apply(db, actor, prepared, progress)


FORMATS = ("csv", "tsv", "xlsx")


def upload(
    db: Database,
    actor: Actor,
    path: Path,
    kind: str | None,
    fmt: str | None = None,
    dry_run: bool = False,
    edits: Edits | None = None,
) -> dict[str, Counts]:
    """An uploaded file (the API's and the pages' doors) checked, then applied, or with ``dry_run`` only checked
    (nothing written); ``edits`` are the cells fixed in the page's preview, read over the file's. ``fmt`` is what
    the sender said the file is (``csv`` and ``tsv`` alike: the delimiter is detected); a file that is not what it
    says is refused before it is read. None: told by its first bytes."""
    if fmt is not None:
        workbook = sheets.is_xlsx(path)
        if workbook != (fmt == "xlsx"):
            said = "an XLSX workbook" if fmt == "xlsx" else f"{fmt.upper()} text"
            found = "an XLSX workbook (a zip archive)" if workbook else "not an XLSX workbook (no zip archive)"
            message = f"the file was sent as {said} but is {found}: send its right type or format"
            raise Invalid(message, details=[Detail("invalidFile", message, "file")])
    with prepare(path, kind, edits=edits) as prepared:
        if dry_run:
            return check(db, actor, prepared)
        return apply(db, actor, prepared)
