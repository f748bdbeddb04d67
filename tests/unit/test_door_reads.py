"""The doors read through named query functions of the service layer (``services/reads.py``, ``userreads.py``,
``teamreads.py`` and the entity services): no door module builds a SQL statement itself. The OData door is the
exception by nature (it compiles a request into SQL), and so is SCIM's filter compiler, listed below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "payroster"
DOORS = ("web", "api", "scim", "cli.py")
# The statement builders a read or a write is made of.
BUILDERS = {"select", "insert", "update", "delete", "union_all", "text", "exists", "func"}
# Door modules that build statements: SCIM's filter compiler (a filter into SQL conditions, and the unique-key
# lookups it answers without a scan).
NOT_YET = {"scim/filters.py"}


def _is_sqlalchemy(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"sqlalchemy", "sa"}


def builders(source: str) -> list[str]:
    """``line:name`` of each statement builder ``source`` imports from SQLAlchemy (or reaches as an attribute of
    the ``sqlalchemy`` module)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [f"{node.lineno}:{a.name}" for a in node.names if a.name in BUILDERS]
        elif isinstance(node, ast.Attribute) and node.attr in BUILDERS and _is_sqlalchemy(node.value):
            found.append(f"{node.lineno}:{node.attr}")
    return found


def _door_modules() -> list[Path]:
    return sorted(p for d in DOORS for p in ([SRC / d] if d.endswith(".py") else (SRC / d).rglob("*.py")))


def test_no_door_module_builds_a_statement_but_the_listed_ones() -> None:
    offenders = {}
    for path in _door_modules():
        relative = path.relative_to(SRC).as_posix()
        found = builders(path.read_text(encoding="utf-8"))
        if found and relative not in NOT_YET:
            offenders[relative] = found
    assert offenders == {}


def test_the_listed_exceptions_still_build_statements() -> None:
    """An exception that no longer builds a statement leaves the list (so the list never hides a new one)."""
    clean = sorted(m for m in NOT_YET if not builders((SRC / m).read_text(encoding="utf-8")))
    assert clean == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from sqlalchemy import func, select", ["1:func", "1:select"]),
        ("import sqlalchemy as sa\nsa.select(x)", ["2:select"]),
        ("from sqlalchemy.orm import Session", []),
        ("from sqlalchemy import Select", []),
    ],
)
def test_the_scan_finds_a_builder(source: str, found: list[str]) -> None:
    assert builders(source) == found
