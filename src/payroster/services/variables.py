"""Custom variables: effective-dated entries on users and teams, replaced all at once."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import simplejson
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from payroster.db.models import CustomVariable, Team, User
from payroster.domain import effective, normalize, numbers
from payroster.domain.errors import Detail, Invalid, NotFound
from payroster.ids import new_id
from payroster.services import audit
from payroster.services.context import Actor
from payroster.services.inputs import canonical
from payroster.services.scoping import scoped

FIELDS = ("name", "value", "startDate", "endDate")
Scalar = Decimal | int | str | bool | None


@dataclass
class Entry:
    """One variable entry; ``value`` keeps exact decimals."""

    name: str
    value: Scalar
    start: dt.datetime | None
    end: dt.datetime | None

    def wire(self) -> dict[str, Any]:
        """The entry as the API shows it."""
        return {
            "name": self.name,
            "value": self.value,
            "startDate": effective.format_instant(self.start),
            "endDate": effective.format_instant(self.end),
        }


def target_type(session: Session, workspace_id: uuid.UUID, target_id: uuid.UUID | None) -> str:
    """``User`` or ``Team`` for an id of the workspace; NotFound otherwise."""
    if target_id is not None:
        for model, name in ((User, "User"), (Team, "Team")):
            stmt = scoped(model, workspace_id).where(model.id == target_id).with_only_columns(model.id)
            if session.scalar(stmt) is not None:
                return name
    raise NotFound("user or team not found", target="id")


def parse_entries(raw: Any) -> list[Entry]:
    """Entries from a JSON array (numbers already parsed as Decimal); every problem is reported."""
    if not isinstance(raw, list):
        raise Invalid(
            "expected a JSON array of {name, value, startDate, endDate}",
            details=[Detail("invalidType", "expected a JSON array", None)],
        )
    entries: list[Entry] = []
    problems: list[Detail] = []
    for i, item in enumerate(raw):
        entry = _parse_entry(item, lambda f, i=i: f"/{i}/{f}" if f else f"/{i}", problems)
        if entry is not None:
            entries.append(entry)
    if not problems:
        for i, j in effective.overlapping(entries):
            problems.append(Detail("overlap", f"entries {i} and {j} of '{entries[i].name}' overlap", f"/{j}"))
    if problems:
        raise Invalid("invalid custom variables", details=problems)
    return sorted(entries, key=effective.sort_key)


def _parse_entry(item: Any, at: Any, problems: list[Detail]) -> Entry | None:
    data, found = canonical(item, FIELDS, at)
    problems += found
    if found:
        return None
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Detail("required", "name must be a non-empty string", at("name")))
        return None
    if len(name) > 255 or normalize.has_control(name):
        problems.append(Detail("invalidValue", "name is too long or has control characters", at("name")))
    value = data.get("value")
    if not isinstance(value, Decimal | int | str | bool) and value is not None:
        problems.append(Detail("invalidType", "value must be a number, string, boolean or null", at("value")))
    bounds: list[dt.datetime | None] = []
    for field in ("startDate", "endDate"):
        raw = data.get(field)
        try:
            bound = None if raw is None else effective.parse_instant(raw)
        except (TypeError, ValueError, AttributeError):
            problems.append(Detail("invalidDate", f"{field} must be a date or datetime", at(field)))
            bound = None
        if bound is not None and bound.microsecond:
            # The output form has whole seconds (README.md, Custom variables): refused, never cut off.
            message = f"{field} must be a whole second: fractions of a second are not kept"
            problems.append(Detail("invalidDate", message, at(field)))
            bound = None
        bounds.append(bound)
    start, end = bounds
    if start is not None and end is not None and end <= start:
        problems.append(Detail("invalidRange", "endDate must be after startDate", at("endDate")))
    return Entry(name.strip(), value, start, end)


def list_entries(
    session: Session, workspace_id: uuid.UUID, target_id: uuid.UUID | None, at: dt.datetime | None = None
) -> list[Entry]:
    """The target's entries by name then start; with ``at``, only those in force then."""
    target_type(session, workspace_id, target_id)
    stmt = select(CustomVariable).where(
        CustomVariable.workspace_id == workspace_id, CustomVariable.target_id == target_id
    )
    if at is not None:
        stmt = stmt.where(
            (CustomVariable.start_at.is_(None)) | (CustomVariable.start_at <= at),
            (CustomVariable.end_at.is_(None)) | (CustomVariable.end_at > at),
        )
    rows = session.scalars(stmt).all()
    entries = [Entry(r.name, _value(r.value_json), r.start_at, r.end_at) for r in rows]
    return sorted(entries, key=effective.sort_key)


def replace(session: Session, actor: Actor, target_id: uuid.UUID | None, entries: list[Entry]) -> list[Entry]:
    """Replace every entry of the target in one transaction."""
    ws = actor.workspace_id
    kind = target_type(session, ws, target_id)
    assert target_id is not None
    before = [e.wire() for e in list_entries(session, ws, target_id)]
    if _stored(session, ws, target_id) == sorted((_text(e) for e in entries), key=repr):
        # A no-op keeps the stored entries as they are, their ids included: it writes no audit event, so new ids
        # would be a change that the change feed and the feed's delta links never hear of.
        return entries
    old_ids = entry_ids(session, ws, target_id)
    session.execute(
        delete(CustomVariable).where(CustomVariable.workspace_id == ws, CustomVariable.target_id == target_id)
    )
    rows = _rows(kind, target_id, entries, ws)
    if rows:
        session.execute(insert(CustomVariable), rows)
    # Past the no-op test, something stored changed (if only a value's digits, 10 as 10.0): audited.
    audit.record(
        session,
        actor,
        "customVariables.replaced",
        kind.lower(),
        target_id,
        [
            {"field": "customVariables", "before": before, "after": [e.wire() for e in entries]},
            # The entries' ids: the feed's delta answers the replaced ones as removed (odata/delta.py).
            {"field": "customVariableIds", "before": old_ids, "after": sorted(str(r["id"]) for r in rows)},
        ],
    )
    return entries


def replace_many(
    session: Session, actor: Actor, targets: list[tuple[str, uuid.UUID, list[Entry]]]
) -> list[tuple[bool, bool]]:
    """:func:`replace` for several targets of the workspace at once (``(User or Team, id, entries)``, each target
    once, known to exist), set-based: a read of their stored entries, one delete and one insert for those that
    change, an audit event each as :func:`replace` writes it. Returns, for each target, whether it had entries
    before and whether they changed."""
    ws = actor.workspace_id
    c = CustomVariable
    stored: dict[uuid.UUID, list[Any]] = {t: [] for _, t, _ in targets}
    ids = list(stored)
    columns = (c.id, c.target_id, c.name, c.value_json, c.start_at, c.end_at)
    for start in range(0, len(ids), 500):
        stmt = select(*columns).where(c.workspace_id == ws, c.target_id.in_(ids[start : start + 500]))
        for row in session.execute(stmt):
            stored[row.target_id].append(row)
    gone: list[uuid.UUID] = []
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    done: list[tuple[bool, bool]] = []
    for kind, target_id, entries in targets:
        old = stored[target_id]
        texts = sorted(((r.name, r.value_json, r.start_at, r.end_at) for r in old), key=repr)
        same = texts == sorted((_text(e) for e in entries), key=repr)
        done.append((bool(old), not same))
        if same:
            continue  # a no-op, as in replace
        before = sorted(
            (Entry(r.name, _value(r.value_json), r.start_at, r.end_at) for r in old), key=effective.sort_key
        )
        made = _rows(kind, target_id, entries, ws)
        gone.append(target_id)
        rows += made
        events.append(
            audit.event_row(
                actor,
                "customVariables.replaced",
                kind.lower(),
                target_id,
                [
                    {
                        "field": "customVariables",
                        "before": [e.wire() for e in before],
                        "after": [e.wire() for e in entries],
                    },
                    {
                        "field": "customVariableIds",
                        "before": sorted(str(r.id) for r in old),
                        "after": sorted(str(r["id"]) for r in made),
                    },
                ],
            )  # fmt: skip
        )
    for start in range(0, len(gone), 500):
        session.execute(delete(c).where(c.workspace_id == ws, c.target_id.in_(gone[start : start + 500])))
    if rows:
        session.execute(insert(CustomVariable), rows)
    audit.record_many(session, events)
    return done


def _rows(kind: str, target_id: uuid.UUID, entries: list[Entry], ws: uuid.UUID) -> list[dict[str, Any]]:
    """The stored rows of a target's entries, with new ids."""
    return [
        {
            "workspace_id": ws,
            "id": new_id(),
            "target_type": kind,
            "target_id": target_id,
            "name": e.name,
            "name_key": normalize.key(e.name),
            "value_json": simplejson.dumps(e.value, use_decimal=True),
            "number_value": _number(e.value),
            "start_at": e.start,
            "end_at": e.end,
        }
        for e in entries
    ]


def _stored(session: Session, workspace_id: uuid.UUID, target_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """A target's stored entries as :func:`_text` writes them, in order."""
    c = CustomVariable
    stmt = select(c.name, c.value_json, c.start_at, c.end_at).where(
        c.workspace_id == workspace_id, c.target_id == target_id
    )
    return sorted(((name, value, start, end) for name, value, start, end in session.execute(stmt)), key=repr)


def _text(e: Entry) -> tuple[Any, ...]:
    """An entry as it is stored: its name, its value's exact JSON text, its start and end."""
    return (e.name, simplejson.dumps(e.value, use_decimal=True), e.start, e.end)


def entry_ids(session: Session, workspace_id: uuid.UUID, target_id: uuid.UUID) -> list[str]:
    """The ids of a target's stored entries, as text in order (what an audit event records of them)."""
    stmt = select(CustomVariable.id).where(
        CustomVariable.workspace_id == workspace_id, CustomVariable.target_id == target_id
    )
    return sorted(str(i) for i in session.scalars(stmt))


def _value(text: str) -> Scalar:
    """A stored value as the body reader gave it: integers past 64 bits stay Decimals (the audit trail's encoder
    writes no larger integer)."""
    value: Scalar = simplejson.loads(text, use_decimal=True, parse_int=numbers.integer)
    return value


def _number(value: Scalar) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return None
    return Decimal(value)
