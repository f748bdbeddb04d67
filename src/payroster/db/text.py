"""Literal substring tests in SQL, the same on SQLite and PostgreSQL.

``LIKE`` would read ``%`` and ``_`` in the searched text as wildcards and, on SQLite, fold ASCII case; the
OData and SCIM filters need neither, so they compare with ``instr``/``strpos`` and ``substr``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func


def position(text: Any, part: Any, dialect: str) -> ColumnElement[int]:
    """1-based position of ``part`` in ``text``, 0 when absent (``instr`` / ``strpos``)."""
    found: ColumnElement[int] = func.strpos(text, part) if dialect == "postgresql" else func.instr(text, part)
    return found


def contains(text: Any, part: Any, dialect: str) -> ColumnElement[bool]:
    """``part`` occurs in ``text``."""
    return position(text, part, dialect) > 0


def startswith(text: Any, part: Any) -> ColumnElement[bool]:
    """``text`` begins with ``part``."""
    same: ColumnElement[bool] = func.substr(text, 1, func.length(part)) == part
    return same


def endswith(text: Any, part: Any) -> ColumnElement[bool]:
    """``text`` ends with ``part`` (a start before the first character never equals a longer ``part``)."""
    same: ColumnElement[bool] = func.substr(text, func.length(text) - func.length(part) + 1) == part
    return same
