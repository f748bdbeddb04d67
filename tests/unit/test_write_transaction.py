"""The unit of work's write transaction: everything in it commits or nothing does, on both databases (on
PostgreSQL it opens the transaction itself: tests/unit/test_pg_write_transaction.py)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, insert, select

from payroster.db.engine import Database
from payroster.db.models import Workspace, table, utcnow
from tests.conftest import WS

WORKSPACES = table(Workspace)


class Boom(Exception):
    pass


def _workspace(slug: str) -> dict[str, object]:
    return {"id": uuid.uuid4(), "slug": slug, "name": slug, "created_at": utcnow()}


def count(db: Database, slug: str) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(WORKSPACES).where(WORKSPACES.c.slug == slug)) or 0)


@pytest.mark.parametrize("with_workspace", [False, True])
def test_a_failed_write_leaves_nothing_and_a_finished_one_everything(
    db: Database, ws: WS, with_workspace: bool
) -> None:
    """Two statements, then an error: neither is kept (a write with no workspace, such as a key's last use, is
    a transaction too); the same two without the error are both kept."""
    scope = ws.id if with_workspace else None
    with pytest.raises(Boom), db.write(scope) as s:
        s.execute(insert(WORKSPACES), _workspace("gone-1"))
        s.execute(insert(WORKSPACES), _workspace("gone-2"))
        raise Boom
    assert count(db, "gone-1") == 0 and count(db, "gone-2") == 0
    with db.write(scope) as s:
        s.execute(insert(WORKSPACES), _workspace("kept-1"))
        s.execute(insert(WORKSPACES), _workspace("kept-2"))
    assert count(db, "kept-1") == 1 and count(db, "kept-2") == 1
