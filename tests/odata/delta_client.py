"""A delta client as a sync job would write one: read a tracked query whole, keep its entities by key, apply
each delta link's page to them. The tests compare what it holds with a fresh full read."""

from __future__ import annotations

import re
from typing import Any

import httpx

_LOCATION = re.compile(r"/(\w+)\(([^)]*)\)$")


def key_of(body: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    """An entity's key: its key properties, else those of its ``@id`` / ``@odata.id`` / ``id`` URL."""
    if all(k in body for k in keys) and not is_removed(body):  # 4.0's deleted entry: "id" is its URL
        return tuple(str(body[k]) for k in keys)
    where = body.get("@id") or body.get("@odata.id") or body.get("id")
    assert isinstance(where, str), body
    found = _LOCATION.search(where)
    assert found is not None, where
    inner = found.group(2)
    if "=" not in inner:
        return (inner,)
    parts = dict(p.split("=", 1) for p in inner.split(","))
    return tuple(parts[k] for k in keys)


def plain(body: dict[str, Any]) -> dict[str, Any]:
    """The entity without its control information."""
    return {k: v for k, v in body.items() if not k.startswith("@")}


def is_removed(body: dict[str, Any]) -> bool:
    """A deleted entry in either form: 4.01's ``@removed``, 4.0's ``$deletedEntity`` context."""
    return "@removed" in body or str(body.get("@odata.context", "")).endswith("/$deletedEntity")


def read_all(
    client: httpx.Client, url: str, headers: dict[str, str], track: bool = False
) -> tuple[dict[tuple[str, ...], dict[str, Any]], str | None, list[httpx.Response]]:
    """Every entity of a query by key, following next links; with ``track``, also its delta link."""
    keys = _keys_for(url)
    sent = {**headers, "Prefer": "odata.track-changes"} if track else headers
    held: dict[tuple[str, ...], dict[str, Any]] = {}
    answers = []
    next_url: str | None = url
    delta = None
    while next_url is not None:
        r = client.get(next_url, headers=sent)
        assert r.status_code == 200, r.text
        answers.append(r)
        body = r.json()
        for entity in body["value"]:
            held[key_of(entity, keys)] = plain(entity)
        next_url = body.get("@odata.nextLink")
        delta = body.get("@odata.deltaLink", delta)
    return held, delta, answers


def apply_delta(
    client: httpx.Client, url: str, headers: dict[str, str], held: dict[tuple[str, ...], dict[str, Any]]
) -> tuple[str, list[dict[str, Any]]]:
    """Apply every page of a delta link to ``held``; the next delta link and the entries read."""
    keys = _keys_for(url)
    entries: list[dict[str, Any]] = []
    next_url: str | None = url
    while True:
        assert next_url is not None
        r = client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "/$delta" in body.get("@odata.context", "/$delta"), body
        for entry in body["value"]:
            entries.append(entry)
            key = key_of(entry, keys)
            if is_removed(entry):
                held.pop(key, None)
            else:
                held[key] = plain(entry)
        if "@odata.deltaLink" in body:
            return str(body["@odata.deltaLink"]), entries
        next_url = body["@odata.nextLink"]


def _keys_for(url: str) -> tuple[str, ...]:
    return ("teamId", "systemUserId") if "/TeamMembers" in url else ("id",)
