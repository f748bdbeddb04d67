"""How a record's values read on the wire, the same in every door that shows them (the JSON API, the feed's
stored entity and its SQL reference, the OData pages, the change feed, the exports): written here once.

docs/rules.md, "Users": where a door shows one role, an inactive user shows as ``Deactivated``; times are UTC
with microseconds and a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from payroster.domain.normalize import DEACTIVATED

# The SQL writers' forms of :func:`time` (a stored naive-UTC time: SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff').
TIME_SUFFIX = "Z"
TIME_POSTGRESQL = f'YYYY-MM-DD"T"HH24:MI:SS.US"{TIME_SUFFIX}"'


def shown_role(role: str, active: bool) -> str:
    """The one role a user shows: its role, or ``Deactivated`` while it is inactive."""
    return role if active else DEACTIVATED


def time(value: dt.datetime) -> str:
    """A stored naive-UTC time on the wire: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds always, as both
    databases format it)."""
    return value.isoformat(timespec="microseconds") + TIME_SUFFIX


def user(
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
) -> dict[str, Any]:
    """A user as the JSON API answers it and the feed stores it (``users.feed_json``; its SQL reference is
    ``odata.query.feed_document``), in this order."""
    updated = time(updated_at)
    return {
        "id": str(id),
        "emailAddress": email,
        "role": shown_role(role, active),
        "active": bool(active),
        "firstName": first_name,
        "lastName": last_name,
        "directManagerId": str(direct_manager_id) if direct_manager_id is not None else None,
        "tags": list(tags),
        "aliases": list(aliases),
        "createdAt": updated if created_at == updated_at else time(created_at),
        "updatedAt": updated,
    }
