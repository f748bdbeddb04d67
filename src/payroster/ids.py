"""Identifiers: GUIDs on the wire, time-ordered (UUIDv7) so B-tree inserts stay sequential."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    """A fresh time-ordered UUID (RFC 9562 version 7)."""
    value: uuid.UUID = uuid6.uuid7()  # a uuid.UUID subclass
    return value


def parse_id(value: object) -> uuid.UUID | None:
    """The UUID in ``value``, or None when it is not a GUID string."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None
