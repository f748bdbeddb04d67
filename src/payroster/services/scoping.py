"""Tenant scoping: the one way to query a workspace's rows, and the helpers built on it."""

from __future__ import annotations

import functools
import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, Table, bindparam, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from payroster.db.models import Base
from payroster.domain.errors import NotFound

M = TypeVar("M", bound=Base)


def scoped(model: type[M], workspace_id: uuid.UUID) -> Select[M]:
    """``SELECT model WHERE workspace_id = :ws``: every tenant read starts here."""
    return select(model).where(in_workspace(model, workspace_id))


def in_workspace(model: Any, workspace_id: Any) -> Any:
    """The condition that confines ``model`` (a model, an alias or a table's columns) to one workspace: what a
    query joining or correlating several tables adds for each it reads."""
    return model.workspace_id == workspace_id


def within(workspace_id: uuid.UUID, model: Any, *columns: Any) -> Select[Any]:
    """``SELECT columns WHERE model.workspace_id = :ws``: a tenant read of some columns (of ``model`` and of
    what the caller joins to it)."""
    return select(*columns).where(in_workspace(model, workspace_id))


def get_scoped(
    session: Session, model: type[M], workspace_id: uuid.UUID, id_: uuid.UUID | None, what: str, lock: bool = False
) -> M:
    """The row with that id in that workspace; unknown and foreign ids raise the same NotFound."""
    row: M | None = None
    if id_ is not None:
        row = session.scalars(_by_id(model, lock), {"ws": workspace_id, "id": id_}).first()
    if row is None:
        raise NotFound(f"{what} not found", target=what)
    return row


@functools.cache
def _by_id(model: type[Base], lock: bool) -> Select[Any]:
    """:func:`get_scoped`'s statement, built once per model: every request reads a row by id, and building
    the statement and its cache key each time was a measurable share of a SCIM PATCH (bench/JOURNAL.md)."""
    stmt = select(model).where(model.workspace_id == bindparam("ws"), model.id == bindparam("id"))  # type: ignore[attr-defined]
    return stmt.with_for_update() if lock else stmt


def insert_ignoring_conflicts(session: Session, target: type[Base] | Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` into a model (ORM) or a table (Core) for the session's dialect."""
    return insert_ignoring(session.get_bind().dialect.name, target)


@functools.cache
def insert_ignoring(dialect: str, target: Any) -> Any:
    """:func:`insert_ignoring_conflicts` by dialect name, built once per dialect and target."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(target).on_conflict_do_nothing()


def chain_contains(
    session: Session, model: type[Base], parent_col: str, workspace_id: uuid.UUID, start: uuid.UUID, needle: uuid.UUID
) -> bool:
    """True when ``needle`` is ``start`` or one of its ancestors along ``parent_col`` (recursive CTE)."""
    table = model.__table__
    parent = table.c[parent_col]
    base = select(literal(start, type_=table.c.id.type).label("id"), literal(0).label("depth"))
    chain = base.cte("chain", recursive=True)
    step = select(parent.label("id"), (chain.c.depth + 1).label("depth")).where(
        table.c.workspace_id == workspace_id,
        table.c.id == chain.c.id,
        parent.is_not(None),
        chain.c.depth < 100_000,
    )
    chain = chain.union_all(step)
    return session.execute(select(chain.c.id).where(chain.c.id == needle).limit(1)).first() is not None
