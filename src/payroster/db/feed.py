"""What ``users.feed_json`` holds: a user's OData ``Users`` entity as JSON text, written by every write of a user
from the values it stores (docs/architecture.md, "The feed's stored entity").

It lives below the services, which write it, and the OData door, which reads it (``odata.query.feed_document``
is the database's own expression for the same text, the reference it is tested against).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence

import orjson

from payroster.domain import wire

# json_object (SQLite) writes compact JSON, json_build_object and json_agg (PostgreSQL) put a space around
# ':' and after ','; both escape only '"', '\\' and control characters and write every other character as it
# is. orjson writes SQLite's form (0.4 us a user), the standard library's encoder without ensure_ascii
# PostgreSQL's (orjson has no separators option): tests/odata/test_feed_json.py compares each with its
# database over every code point.
_SPACED = json.JSONEncoder(ensure_ascii=False, separators=(", ", " : "))


def feed_text(
    sqlite: bool,
    *,
    id: uuid.UUID,  # noqa: A002 - the property's name
    email: str,
    role: str,
    active: bool,
    first_name: str | None,
    last_name: str | None,
    direct_manager_id: uuid.UUID | None,
    tags: Sequence[str],
    aliases: Sequence[str],
    created_at: dt.datetime,
    updated_at: dt.datetime,
) -> str:
    """What ``users.feed_json`` holds, written from the values a write is storing (tags and aliases in position
    order): the same text ``odata.query.feed_document`` computes from the stored row, so a write stores it in the
    row's own ``INSERT`` or ``UPDATE`` instead of a second statement that reads the row, its tags and
    aliases back to compute it (a fifth of a bulk import's time, bench/JOURNAL.md)."""
    document = wire.user(
        id, email, role, active, first_name, last_name, direct_manager_id, tags, aliases, created_at, updated_at
    )
    return orjson.dumps(document).decode() if sqlite else _SPACED.encode(document)
