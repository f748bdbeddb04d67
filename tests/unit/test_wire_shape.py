"""A user's shape on the wire is defined once, in ``domain/wire.py`` (docs/rules.md, "Users"): the JSON API's body,
the feed's stored entity and its SQL reference, the audit trail, SCIM and the pages all take the field names, the
role an inactive user shows and the ``...Z`` time format from there. These checks keep copies from coming back."""

from __future__ import annotations

import ast
import datetime as dt
import uuid
from pathlib import Path

from payroster.domain import wire
from payroster.odata.model import SETS

SRC = Path(__file__).resolve().parents[2] / "src" / "payroster"
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5)


def _user(active: bool, created: dt.datetime = WHEN) -> dict[str, object]:
    return wire.user(
        uuid.UUID(int=1), "a@x.example", "LimitedAdmin", active, "Ana", None, None, ["t"], [], created, WHEN
    )


def test_a_user_on_the_wire_has_the_fields_in_their_order_with_the_shown_role_and_times() -> None:
    shown = _user(active=False, created=WHEN - dt.timedelta(microseconds=1))
    assert tuple(shown) == wire.USER_NAMES
    assert shown["role"] == "Deactivated" and shown["active"] is False
    assert shown["createdAt"] == "2026-01-02T03:04:04.999999Z"
    assert shown["updatedAt"] == "2026-01-02T03:04:05.000000Z"  # microseconds always
    assert shown["id"] == "00000000-0000-0000-0000-000000000001" and shown["directManagerId"] is None
    assert _user(active=True)["role"] == "LimitedAdmin"


def test_the_audit_trail_keeps_the_wire_fields_but_id_and_times_with_the_stored_role() -> None:
    kept = wire.user_audited("a@x.example", "Participant", False, None, "Lee", uuid.UUID(int=2), ("t",), ())
    assert (
        tuple(kept)
        == wire.USER_AUDITED
        == tuple(n for n in wire.USER_NAMES if n not in {"id", "createdAt", "updatedAt"})
    )
    assert kept["role"] == "Participant" and kept["directManagerId"] == str(uuid.UUID(int=2))


def test_the_feed_sql_reference_publishes_the_wire_fields_from_their_columns() -> None:
    properties = SETS["Users"].properties
    assert tuple(properties) == wire.USER_NAMES
    users = SETS["Users"].table
    for name, column in wire.USER_FIELDS:
        if column in wire.USER_LISTS:
            assert properties[name].items is not None
        elif name != "role":  # the role is wire.shown_role in SQL
            assert properties[name].sql(users) is users.c[column]


def test_the_time_format_other_precisions_keep_the_suffix() -> None:
    assert wire.time(WHEN, "seconds") == "2026-01-02T03:04:05Z"
    assert wire.time(WHEN, "milliseconds") == "2026-01-02T03:04:05.000Z"
    assert wire.time_from_sqlite("2026-01-02 03:04:05.000000") == wire.time(WHEN)


def _is_suffix(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == "Z"


def _copies(tree: ast.AST) -> list[int]:
    """Lines that spell the shown role or append the wire's time suffix themselves."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == "Deactivated":
            found.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and '"Z"' in node.value:
            found.append(node.lineno)  # a SQL time pattern ending in a quoted Z
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_suffix(node.right):
            found.append(node.lineno)
    return found


# The one definition of each, and the places that name the word as an accepted input: the role parser's table,
# the sample data, the OpenAPI schema's Literal (a type annotation cannot read a constant).
DEFINED = {"domain/wire.py", "domain/normalize.py", "services/demo.py", "api/schemas.py"}


def test_no_module_spells_the_shown_role_or_the_time_suffix_but_wire() -> None:
    copies = [
        f"{path.relative_to(SRC).as_posix()}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).as_posix() not in DEFINED
        for line in _copies(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert copies == []
    templates = [p.name for p in (SRC / "web" / "templates").glob("*.html") if "Deactivated" in p.read_text("utf-8")]
    assert templates == []  # the pages show wire.shown_role (the ``shown_role`` global)


def test_the_scan_finds_a_copy() -> None:
    assert _copies(ast.parse('x = value.isoformat() + "Z"\ny = "Deactivated"\nz = \'SS.US"Z"\'')) == [1, 2, 3]
