"""Tenancy belongs to the unit of work and the read queries (docs/rules.md, "Workspaces"): outside ``db/``, the
services and the OData compiler, no module compares a column ``workspace_id`` with a value of its own. Comparing
two ``workspace_id`` columns (a join that keeps two tables in one workspace) is not filtering and is allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "payroster"
ALLOWED = ("db/", "services/", "odata/compiler.py")


# Names that hold a value in this code base, never a table: the signed-in person, the actor, an ORM row.
VALUES = {"who", "actor", "self", "user", "made"}


def _is_workspace_column(node: ast.expr) -> bool:
    """``X.workspace_id`` of a model, an alias or a table's columns (not of a value such as ``who``)."""
    if not (isinstance(node, ast.Attribute) and node.attr == "workspace_id"):
        return False
    return not (isinstance(node.value, ast.Name) and node.value.id in VALUES)


def hand_filters(source: str) -> list[int]:
    """The lines of ``source`` that compare ``.workspace_id`` with anything but another ``.workspace_id``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        sides = [node.left, *node.comparators]
        named = any(isinstance(s, ast.Attribute) and s.attr == "workspace_id" for s in sides)
        if named and not all(_is_workspace_column(s) for s in sides):
            found.append(node.lineno)
    return found


def offenders() -> list[str]:
    """``path:line`` of every hand-written workspace filter outside the allowed modules."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(ALLOWED):
            continue
        out += [f"{relative}:{line}" for line in hand_filters(path.read_text(encoding="utf-8"))]
    return out


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("select(User).where(User.workspace_id == ws)", True),
        ("select(t).where(ws == t.c.workspace_id, t.c.id == 1)", True),
        ("Workspace.id == user.workspace_id", True),
        ("select(Team.name).where(Team.workspace_id == who.workspace_id)", True),
        ("join(User, (User.workspace_id == TeamMember.workspace_id) & (User.id == TeamMember.user_id))", False),
        ("scoped(User, ws).where(User.id == uid)", False),
    ],
)
def test_the_scan_sees_a_hand_written_filter(source: str, flagged: bool) -> None:
    """The scan flags a comparison of ``workspace_id`` with a value, not one of two columns."""
    assert bool(hand_filters(source)) is flagged


def test_no_door_filters_on_workspace_id_by_hand() -> None:
    """Every tenant read of a door goes through services (scoping, unit, reads)."""
    assert offenders() == []
