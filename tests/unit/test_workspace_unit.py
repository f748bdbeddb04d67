"""The workspace's unit of work (services/unit.py): it holds the workspace's lock while it is open (PostgreSQL)
and reads only that workspace's rows; the command line's key commands open it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func

from payroster.db.engine import Database, _lock_key
from payroster.db.models import User
from payroster.domain.errors import NotFound
from payroster.services import unit
from tests.conftest import PG_URL, WS
from tests.unit.test_pg_write_transaction import _try_lock


def test_a_unit_reads_only_its_workspace(db: Database, ws: WS, ws_b: WS) -> None:
    """Another workspace's user is NotFound, as an unknown id; the scoped queries count this workspace's rows."""
    with unit.write(db, ws.id) as work:
        assert work.get(User, uuid.UUID(ws.admin_id), "user").id == uuid.UUID(ws.admin_id)
        with pytest.raises(NotFound):
            work.get(User, uuid.UUID(ws_b.admin_id), "user")
        assert work.session.scalar(work.select(User).with_only_columns(func.count())) == 1
        assert work.session.scalars(work.columns(User, User.email)).all() == ["admin@example.com"]


def test_write_by_slug_opens_the_workspace_named(db: Database, ws: WS, ws_b: WS) -> None:
    """The command line names a workspace by slug; an unknown slug is NotFound before any write."""
    with unit.write_by_slug(db, ws_b.slug) as work:
        assert work.workspace_id == ws_b.id
    with pytest.raises(NotFound), unit.write_by_slug(db, "no-such-slug"):
        pass


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only (PAYROSTER_TEST_DATABASE_URL)")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_unit_holds_its_workspace_lock(db: Database, ws: WS) -> None:
    """While a unit is open no import (the exclusive lock) can start; it goes with the transaction."""
    url, key = db.settings.database_url, _lock_key(ws.id)
    with unit.write_by_slug(db, ws.slug):
        assert not _try_lock(url, key, shared=False)
    assert _try_lock(url, key, shared=False)
