"""How a record's values read on the wire, the same in every door that shows them (the JSON API, the feed's
stored entity and its SQL reference, the OData pages, the change feed, the exports, SCIM, the pages and the
audit trail): written here once.

docs/rules.md, "Users": where a door shows one role, an inactive user shows as ``Deactivated``; times are UTC
with microseconds and a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from payroster.domain.normalize import DEACTIVATED

# A user's fields on the wire, in the order every door writes them, each with the ``users`` column (or, for
# the lists, the side table's values) it shows. The JSON API's body and the feed's stored entity are
# :func:`user`; the feed's SQL reference (``odata.model``, Users) takes its properties' names, order and columns
# from here; SCIM and the pages map from :func:`user`'s values; the audit trail keeps :data:`USER_AUDITED`.
USER_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("emailAddress", "email"),
    ("role", "role"),
    ("active", "active"),
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("directManagerId", "direct_manager_id"),
    ("tags", "tags"),
    ("aliases", "aliases"),
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
)
USER_NAMES = tuple(name for name, _ in USER_FIELDS)
USER_COLUMNS = dict(USER_FIELDS)  # wire name -> column (also :func:`user`'s parameter)
USER_LISTS = ("tags", "aliases")  # the fields held in side tables, in position order
USER_ROW_COLUMNS = tuple(column for _, column in USER_FIELDS if column not in USER_LISTS)
# What the audit trail keeps of a user (the doors that add their own fields add them after): the wire's fields
# but the id and the times, with the role as stored (``active`` says whether it shows).
USER_AUDITED = tuple(name for name in USER_NAMES if name not in ("id", "createdAt", "updatedAt"))

# The SQL writers' forms of :func:`time` (a stored naive-UTC time: SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff').
TIME_SUFFIX = "Z"
TIME_POSTGRESQL = f'YYYY-MM-DD"T"HH24:MI:SS.US"{TIME_SUFFIX}"'


def shown_role(role: str, active: bool) -> str:
    """The one role a user shows: its role, or ``Deactivated`` while it is inactive."""
    return role if active else DEACTIVATED


def time(value: dt.datetime, timespec: str = "microseconds") -> str:
    """A stored naive-UTC time on the wire: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds always, as both
    databases format it; a door that shows fewer digits names its ``timespec``)."""
    return value.isoformat(timespec=timespec) + TIME_SUFFIX


def time_from_sqlite(stored: str) -> str:
    """:func:`time` of an instant as SQLite keeps it (``YYYY-MM-DD HH:MM:SS.ffffff``), without parsing it."""
    return f"{stored[:10]}T{stored[11:]}{TIME_SUFFIX}"


def guid(value: uuid.UUID | None) -> str | None:
    """An id on the wire (8-4-4-4-12, lower case), or null."""
    return str(value) if value is not None else None


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
    ``odata.query.feed_document``): :data:`USER_FIELDS`, in this order."""
    updated = time(updated_at)
    values = (
        str(id),
        email,
        shown_role(role, active),
        bool(active),
        first_name,
        last_name,
        guid(direct_manager_id),
        list(tags),
        list(aliases),
        updated if created_at == updated_at else time(created_at),
        updated,
    )
    return dict(zip(USER_NAMES, values, strict=True))


def user_audited(
    email: str, role: str, active: bool, first: str | None, last: str | None, manager: Any, tags: Any, aliases: Any
) -> dict[str, Any]:
    """A user's audited fields every door writes (:data:`USER_AUDITED`; the SCIM door adds its own)."""
    values = (email, role, active, first, last, str(manager) if manager else None, list(tags), list(aliases))
    return dict(zip(USER_AUDITED, values, strict=True))
