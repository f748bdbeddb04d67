"""The unit of work of one workspace: a write that holds the workspace's lock and reads only its rows.

``db.write(workspace_id)`` takes the workspace's lock (on PostgreSQL a transaction-scoped advisory lock: single
writes share it, an import holds it alone); a write opened without the id takes none. Every change of one
workspace's records opens its transaction here, so no door can forget the lock, and reads through the scoped
helpers, so none writes ``workspace_id ==`` by hand (tests/unit/test_scoping_rule.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from payroster.db.engine import Database
from payroster.db.models import Base
from payroster.services import workspaces
from payroster.services.scoping import get_scoped, scoped, within

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class WorkspaceUnit:
    """An open write of one workspace: its session and the queries confined to it."""

    session: Session
    workspace_id: uuid.UUID

    def select(self, model: type[M]) -> Select[M]:
        """``SELECT model`` of this workspace's rows."""
        return scoped(model, self.workspace_id)

    def columns(self, model: Any, *columns: Any) -> Select[Any]:
        """``SELECT columns`` of this workspace's rows of ``model``."""
        return within(self.workspace_id, model, *columns)

    def get(self, model: type[M], id_: uuid.UUID | None, what: str, lock: bool = False) -> M:
        """The row with that id in this workspace, or NotFound (an id of another workspace alike)."""
        return get_scoped(self.session, model, self.workspace_id, id_, what, lock=lock)


@contextlib.contextmanager
def write(db: Database, workspace_id: uuid.UUID, exclusive: bool = False) -> Iterator[WorkspaceUnit]:
    """A write transaction of the workspace, under its lock (``exclusive``: alone, as an import)."""
    with db.write(workspace_id, exclusive=exclusive) as session:
        yield WorkspaceUnit(session, workspace_id)


@contextlib.contextmanager
def write_by_slug(db: Database, slug: str, exclusive: bool = False) -> Iterator[WorkspaceUnit]:
    """:func:`write` of the workspace with that slug (NotFound when there is none): the command line's way in."""
    with db.read() as session:
        workspace_id = workspaces.by_slug(session, slug).id
    with write(db, workspace_id, exclusive) as unit:
        yield unit
