"""Users' e-mail keys recomputed: the local part in lower case, the domain in IDNA form (normalize.email_key)

Until this revision a user's ``email_key`` (and a SCIM ``user_name_key``) was ``NFC(casefold(value))``: it merged
different mailboxes (``straße@`` and ``strasse@``) and kept one mailbox apart when its domain was written in
Unicode and in A-labels (``müller.de``, ``xn--mller-kva.de``). Every key is recomputed with
``normalize.email_key``. Where two users of a workspace end up with one key, neither is merged nor is the upgrade
refused: the user whose stored key already is the new one, else the one created first, takes it; each other one
keeps its old key and is reported, as a warning in the log and as a ``user.addressConflict`` audit event of its
workspace naming the user that took the key (docs/operations.md, "Users sharing one e-mail address"). The
downgrade recomputes the old keys the same way.

Revision ID: 0009
Revises: 0008_change_feed
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata
import uuid
from collections.abc import Callable
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

from payroster.domain import normalize
from payroster.ids import new_id

revision = "0009"
down_revision = "0008_change_feed"
branch_labels = None
depends_on = None

log = logging.getLogger("payroster.migrate")

USERS = sa.table(
    "users",
    sa.column("workspace_id", sa.Uuid),
    sa.column("id", sa.Uuid),
    sa.column("email", sa.String),
    sa.column("email_key", sa.String),
    sa.column("user_name", sa.String),
    sa.column("user_name_key", sa.String),
    sa.column("created_at", sa.DateTime),
)
EVENTS = sa.table(
    "audit_events",
    *(sa.column(name, sa.Uuid) for name in ("workspace_id", "id", "actor_user_id", "target_id")),
    sa.column("occurred_at", sa.DateTime),
    *(sa.column(name, sa.String) for name in ("actor_kind", "channel", "action", "target_type", "changes")),
)
MAX_KEY = {"email": 254, "user_name": 320}  # the key columns' lengths
FIELD = {"email": "emailAddress", "user_name": "userName"}


def _casefold_key(value: str) -> str:
    """The key of revisions 0001-0008, for the downgrade (no longer anywhere else in the code)."""
    return unicodedata.normalize("NFC", value.strip().casefold())


class _Move(NamedTuple):  # not a dataclass: Alembic loads a revision without registering it as a module
    """A user whose key the definition changes."""

    workspace_id: uuid.UUID
    id: uuid.UUID
    value: str
    old: str
    new: str
    created_at: dt.datetime | None


def upgrade() -> None:
    """Apply this revision."""
    for column in ("email", "user_name"):
        _rekey(column, normalize.email_key)


def downgrade() -> None:
    """Revert this revision."""
    for column in ("email", "user_name"):
        _rekey(column, _casefold_key)


def _rekey(column: str, key_of: Callable[[str], str]) -> None:
    """Give every user's ``column`` the key ``key_of`` its value, except those that would share one (module note)."""
    bind = op.get_bind()
    value_col, key_col = USERS.c[column], USERS.c[f"{column}_key"]
    moves: list[_Move] = []
    # Streamed, and only the users whose key changes kept: most addresses are ASCII, whose key stays.
    query = sa.select(USERS.c.workspace_id, USERS.c.id, value_col, key_col, USERS.c.created_at).where(
        value_col.is_not(None)
    )
    for ws, uid, value, old, created in bind.execute(query.execution_options(yield_per=5000)):
        new = key_of(value)
        if new != old:
            moves.append(_Move(ws, uid, value, old, new, created))
    if not moves:
        return
    kept = _kept(bind, column, moves)
    taking = [m for m in moves if m.id not in kept]
    # Two steps, so that no row takes a key another still holds on its way elsewhere: the unique index is checked
    # row by row. A user's id is never a key (every key holds an @).
    for step in ((lambda m: str(m.id)), (lambda m: m.new)):
        for m in taking:
            bind.execute(
                sa.update(USERS)
                .where(USERS.c.workspace_id == m.workspace_id, USERS.c.id == m.id)
                .values({key_col.name: step(m)})
            )
    _report(bind, column, kept)


def _kept(bind: sa.Connection, column: str, moves: list[_Move]) -> dict[uuid.UUID, tuple[_Move, str]]:
    """The moving users that keep their old key, each with why (the other user's address and id, or the length)."""
    key_col = USERS.c[f"{column}_key"]
    kept: dict[uuid.UUID, tuple[_Move, str]] = {}
    for m in moves:
        if len(m.new) > MAX_KEY[column]:
            kept[m.id] = (m, f"its new key would be longer than {MAX_KEY[column]} characters")
    # Users that do not move keep their key, which is their new one: they hold it.
    moving = {m.id for m in moves}
    wanted: dict[uuid.UUID, list[str]] = {}
    for m in moves:
        wanted.setdefault(m.workspace_id, []).append(m.new)
    holders: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str]] = {}
    for ws, keys in wanted.items():
        for start in range(0, len(keys), 500):
            rows = bind.execute(
                sa.select(USERS.c.id, USERS.c[column], key_col).where(
                    USERS.c.workspace_id == ws, key_col.in_(keys[start : start + 500])
                )
            )
            holders.update({(ws, k): (uid, value) for uid, value, k in rows if uid not in moving})
    # Of several moving users with one new key, the one created first takes it.
    by_key: dict[tuple[uuid.UUID, str], list[_Move]] = {}
    for m in sorted(moves, key=lambda m: (m.created_at or dt.datetime.min, m.id)):
        if m.id not in kept:
            by_key.setdefault((m.workspace_id, m.new), []).append(m)
    winners: dict[tuple[uuid.UUID, str], _Move] = {}
    for k, group in by_key.items():
        if k in holders:
            uid, value = holders[k]
            kept.update({m.id: (m, f"the same address as {value} ({uid})") for m in group})
        else:
            winners[k] = group[0]
            first = group[0]
            kept.update({m.id: (m, f"the same address as {first.value} ({first.id})") for m in group[1:]})
    # A user keeping its old key may hold what a winner would take: that winner keeps its own old key too, which
    # no one else holds (old keys were unique), and so on until no such winner is left.
    while True:
        held = {(m.workspace_id, m.old): m for m, _ in kept.values()}
        clashes = [(k, w) for k, w in winners.items() if k in held]
        if not clashes:
            return kept
        for k, w in clashes:
            kept[w.id] = (w, f"the same address as {held[k].value} ({held[k].id})")
            del winners[k]


def _report(bind: sa.Connection, column: str, kept: dict[uuid.UUID, tuple[_Move, str]]) -> None:
    """A warning and an audit event of its workspace for each user left with its old key."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for m, why in kept.values():
        log.warning(
            "workspace %s: user %s (%s %s) keeps its old %s key: %s",
            m.workspace_id, m.id, FIELD[column], m.value, column, why,
        )  # fmt: skip
        changes = [{"field": FIELD[column], "before": m.value, "after": f"{m.value}, its old key kept: {why}"}]
        bind.execute(
            sa.insert(EVENTS).values(
                workspace_id=m.workspace_id, id=new_id(), occurred_at=now, actor_user_id=None,
                actor_kind="system", channel="migration", action="user.addressConflict", target_type="user",
                target_id=m.id, changes=json.dumps(changes, ensure_ascii=False),
            )
        )  # fmt: skip
