"""What ``users.feed_json`` holds: a user's OData ``Users`` entity as JSON text, written by every write of a user
from the values it stores (docs/architecture.md, "The feed's stored entity").

It lives below the services, which write it, and the OData door, which reads it (``odata.query.feed_document``
is the database's own expression for the same text, the reference it is tested against).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from payroster.domain import wire

# json_object (SQLite) writes compact JSON, json_build_object and json_agg (PostgreSQL) put a space around
# ':' and after ','; both escape only '"', '\\' and control characters and write every other character as it
# is. orjson writes SQLite's form (0.4 us a user), the standard library's encoder without ensure_ascii
# PostgreSQL's (orjson has no separators option): tests/odata/test_feed_json.py compares each with its
# database over every code point.
_SPACED = json.JSONEncoder(ensure_ascii=False, separators=(", ", " : "))


def feed_text(sqlite: bool, **user: Any) -> str:
    """What ``users.feed_json`` holds, written from the values a write is storing (``user``: the arguments of
    ``wire.user``, tags and aliases in position order): the same text ``odata.query.feed_document`` computes
    from the stored row, so a write stores it in the row's own ``INSERT`` or ``UPDATE`` instead of a second
    statement that reads the row, its tags and aliases back to compute it (a fifth of a bulk import's time,
    bench/JOURNAL.md)."""
    document = wire.user(**user)
    return orjson.dumps(document).decode() if sqlite else _SPACED.encode(document)
