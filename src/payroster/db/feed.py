"""What ``users.feed_json`` holds: a user's OData ``Users`` entity as JSON text, written by every write of a user
from the values it stores (docs/architecture.md, "The feed's stored entity").

It lives below the services, which write it, and the OData door, which reads it (``odata.query.feed_document``
is the database's own expression for the same text, the reference it is tested against).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, func, literal

from payroster.domain import wire

# json_object (SQLite) writes compact JSON, json_build_object and json_agg (PostgreSQL) put a space around
# ':' and after ','; both escape only '"', '\\' and control characters and write every other character as it
# is. orjson writes SQLite's form (0.4 us a user), the standard library's encoder without ensure_ascii
# PostgreSQL's (orjson has no separators option): tests/odata/test_feed_json.py compares each with its
# database over every code point.
SEPARATORS = {True: (",", ":"), False: (", ", " : ")}  # (between members, after a name): SQLite's, PostgreSQL's
_SPACED = json.JSONEncoder(ensure_ascii=False, separators=SEPARATORS[False])


def feed_text(sqlite: bool, **user: Any) -> str:
    """What ``users.feed_json`` holds, written from the values a write is storing (``user``: the arguments of
    ``wire.user``, tags and aliases in position order): the same text ``odata.query.feed_document`` computes
    from the stored row, so a write stores it in the row's own ``INSERT`` or ``UPDATE`` instead of a second
    statement that reads the row, its tags and aliases back to compute it (a fifth of a bulk import's time,
    bench/JOURNAL.md)."""
    document = wire.user(**user)
    return orjson.dumps(document).decode() if sqlite else _SPACED.encode(document)


def with_member(document: Any, name: str, value: Any, sqlite: bool) -> ColumnElement[str]:
    """In SQL: the stored text ``document`` with the value of its member ``name`` replaced by ``value``, a JSON
    text (NULL stays NULL).

    The text between the member's name and the next member is its value: the members come in the order of
    ``wire.USER_FIELDS`` with the separators above, and a name with its quotes and colon occurs nowhere else (in a
    string value every quote is escaped). A snapshot on another day reads the stored text with its dated members
    put in this way (odata/temporal.py) instead of computing each user's JSON, tags and aliases anew: most of the
    time of a page's statement (bench/JOURNAL.md)."""
    between, after = SEPARATORS[sqlite]
    names = [field for field, _ in wire.USER_FIELDS]
    following = names[names.index(name) + 1]  # a dated member is never the last one
    find = func.instr if sqlite else func.strpos
    key, rest = f'"{name}"{after}', f'{between}"{following}"{after}'
    head = func.substr(document, 1, find(document, literal(key, Text)) + (len(key) - 1), type_=Text)
    spliced: ColumnElement[str] = head + value + func.substr(document, find(document, literal(rest, Text)), type_=Text)
    return spliced


def guid_json(column: Any, sqlite: bool) -> ColumnElement[str]:
    """In SQL: a stored GUID as its JSON text (``"8-4-4-4-12"`` in lower case, ``null`` for NULL)."""
    if sqlite:
        return func.json_quote(guid_text(column), type_=Text)  # json_quote(NULL) is null
    return func.coalesce('"' + cast(column, Text) + '"', literal("null", Text))


def guid_text(column: Any) -> ColumnElement[str]:
    """In SQL on SQLite: a GUID stored as 32 hex digits, as the wire writes it (8-4-4-4-12, lower case)."""
    parts = [func.substr(column, a, b) for a, b in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    return func.lower(parts[0] + "-" + parts[1] + "-" + parts[2] + "-" + parts[3] + "-" + parts[4])
