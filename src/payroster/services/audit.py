"""Audit events: one per changed record, with actor, door and per-field before/after."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from payroster.db.models import AuditEvent, table, utcnow
from payroster.ids import new_id
from payroster.services.context import Actor

Change = dict[str, Any]


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
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
        "changes": json.dumps(changes, ensure_ascii=False, default=_jsonable),
    }


def record(
    session: Session, actor: Actor, action: str, target_type: str, target_id: uuid.UUID, changes: list[Change]
) -> None:
    """Write one audit event."""
    session.execute(insert(AuditEvent), [event_row(actor, action, target_type, target_id, changes)])


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Write prepared audit events in one executemany."""
    batch = list(rows)
    if batch:
        # Core executemany: the ORM's bulk path adds per-row bookkeeping a bulk import does not need.
        session.connection().execute(insert(table(AuditEvent)), batch)
