"""Audit events: one per changed record, with actor, door and per-field before/after."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import bindparam, insert
from sqlalchemy.orm import Session

from payroster.db.models import AuditEvent, table, utcnow
from payroster.db.prepared import Prepared
from payroster.db.rows import Driver
from payroster.ids import new_id
from payroster.services.context import Actor

Change = dict[str, Any]


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """The ``{field, before, after}`` list of fields whose value differs."""
    return [
        {"field": f, "before": before.get(f), "after": after.get(f)} for f in after if before.get(f) != after.get(f)
    ]


def _jsonable(value: object) -> object:
    """Decimals as numbers when a float keeps their digits exactly, else as their exact text."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    return str(value)


COLUMNS = (
    "workspace_id", "id", "occurred_at", "actor_user_id", "actor_kind", "channel", "action", "target_type",
    "target_id", "changes",
)  # fmt: skip


def created(after: dict[str, Any]) -> list[Change]:
    """The change list of a new record: every field that has a value."""
    return [{"field": f, "before": None, "after": v} for f, v in after.items() if v not in (None, [])]


def encode(changes: list[Change]) -> str:
    """The stored JSON text of a change list (orjson: a bulk import encodes one per row)."""
    return orjson.dumps(changes, default=_jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def event_row(
    actor: Actor, action: str, target_type: str, target_id: uuid.UUID, changes: list[Change]
) -> dict[str, Any]:
    """The column values of one audit event (for single and bulk inserts alike)."""
    return {
        "workspace_id": actor.workspace_id,
        "id": new_id(),
        "occurred_at": utcnow(),
        "actor_user_id": actor.user_id,
        "actor_kind": actor.kind,
        "channel": actor.channel,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "changes": encode(changes),
    }


def event_values(
    d: Driver, actor: Actor, at: dt.datetime
) -> Callable[[str, str, uuid.UUID, list[Change]], tuple[Any, ...]]:
    """A maker of events as tuples in ``COLUMNS`` order and the driver's form, for ``db.rows.insert_many``:
    ``make(action, target_type, target_id, changes)`` (what every event of a batch shares is converted once)."""
    ws, who, when = d.uid(actor.workspace_id), d.uid(actor.user_id), d.when(at)

    def make(action: str, target_type: str, target_id: uuid.UUID, changes: list[Change]) -> tuple[Any, ...]:
        return (
            ws, d.uid(new_id()), when, who, actor.kind, actor.channel, action, target_type, d.uid(target_id),
            encode(changes),
        )  # fmt: skip

    return make


# Built once, its columns bound by name, run on the driver (db.prepared): every audited write runs it.
_INSERT = Prepared(insert(table(AuditEvent)).values({c: bindparam(c) for c in COLUMNS}))


def record(
    session: Session, actor: Actor, action: str, target_type: str, target_id: uuid.UUID, changes: list[Change]
) -> None:
    """Write one audit event."""
    _INSERT.run(session, event_row(actor, action, target_type, target_id, changes))


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Write prepared audit events in one executemany."""
    _INSERT.run_many(session, list(rows))
