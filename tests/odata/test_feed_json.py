"""Users keep their feed entity written (``users.feed_json``): every door's writes keep it equal to what the
database computes from the row, tags and aliases; the full export reads it; NULL rows and $select pages are
computed as before."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import String, Text, cast, event, func, select, update

from payroster.db.engine import Database
from payroster.db.feed import feed_text
from payroster.db.models import User, table
from payroster.odata.query import feed_document
from payroster.services import bulk
from payroster.services.context import Actor
from tests.conftest import WS
from tests.scim.conftest import ENTERPRISE, USER, scim_for

FULL = {"$format": "application/json;odata.metadata=full"}  # the Python writer, from the columns


def _stored_and_computed(db: Database, ws: WS) -> list[tuple[Any, str | None, str]]:
    users = table(User)
    fresh = feed_document(users, db.is_sqlite)
    with db.read() as s:
        rows = s.execute(select(users.c.id, users.c.feed_json, fresh).where(users.c.workspace_id == ws.id))
        return [tuple(r) for r in rows]


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def test_every_write_of_a_user_keeps_its_stored_entity_current(client: httpx.Client, db: Database, ws: WS) -> None:
    """After each write, through each door, every user's stored entity is what the database computes now."""
    h = ws.headers
    api = "/api/v1/users"

    def current(r: httpx.Response) -> dict[str, Any]:
        body = _ok(r)
        for uid, stored, computed in _stored_and_computed(db, ws):
            assert stored is not None and stored == computed, (r.request.method, r.request.url.path, uid)
        return body

    # JSON API: create, update (tags added), patch (e-mail, manager, lists replaced), removals, deactivation.
    first = {"emailAddress": "a@x.com", "role": "Participant", "tags": ["T1"], "aliases": ["A-1"], "firstName": "Zoë",
             "lastName": 'O"Neil'}  # fmt: skip
    a = current(client.post(api, headers=h, json=first))
    b = current(client.post(api, headers=h, json={"emailAddress": "b@x.com", "role": "LimitedAdmin"}))
    current(client.post(api, headers=h, json={"emailAddress": "a@x.com", "firstName": "Ann", "tags": ["T2"]}))
    moved = {"emailAddress": "b2@x.com", "directManagerId": a["id"], "tags": ["Z", "Y"]}
    current(client.patch(f"{api}/{b['id']}", headers=h, json=moved))
    current(client.delete(f"{api}/{a['id']}/tags", headers=h, params={"value": "t1"}))
    current(client.delete(f"{api}/{a['id']}/aliases", headers=h, params={"value": "a-1"}))
    current(client.post(api, headers=h, json={"emailAddress": "b2@x.com", "role": "Deactivated"}))
    # Bulk: new users (one with a manager), an existing user updated, tags added to all.
    bulk = [
        {"emailAddress": "boss@x.com", "role": "Participant", "tags": "Lead"},
        {"emailAddress": "c@x.com", "role": "Participant", "tags": "South|West", "aliases": "C-1",
         "directManagerId": b["id"]},
        {"emailAddress": "a@x.com", "lastName": "Bulk", "tags": "T3"},
    ]  # fmt: skip
    current(client.post(f"{api}:bulk", headers=h, json=bulk))
    c_id = next(u["id"] for u in client.get(f"/odata/{ws.slug}/Users", headers=h).json()["value"]
                if u["emailAddress"] == "c@x.com")  # fmt: skip
    current(client.patch(f"{api}/{c_id}", headers=h, json={"directManagerId": a["id"], "aliases": ["C-2", "C-1"]}))
    current(client.post(f"{api}:bulk", headers=h, json=[{"emailAddress": "boss@x.com", "firstName": "Big"}]))
    # SCIM: create, PATCH, PUT and DELETE (deactivation).
    scim = scim_for(client, db, ws)
    made = current(scim.post("Users", {"schemas": [USER], "userName": "s@x.com", "active": True,
                                       "name": {"givenName": "Sam", "familyName": "Scim"}}))  # fmt: skip
    current(scim.patch(f"Users/{made['id']}", {"op": "replace", "path": "name.familyName", "value": "Patched"}))
    put = {"schemas": [USER, ENTERPRISE], "userName": "s@x.com", "name": {"givenName": "Put", "familyName": "P"},
           "active": True, ENTERPRISE: {"manager": {"value": a["id"]}}}  # fmt: skip
    current(scim.put(f"Users/{made['id']}", put))
    other = current(scim.post("Users", {"schemas": [USER], "userName": "gone@x.com", "active": True}))
    assert scim.delete(f"Users/{other['id']}").status_code == 204
    rows = _stored_and_computed(db, ws)
    assert all(stored == computed for _, stored, computed in rows)
    assert len(rows) == 7  # the admin, a, b, boss, c and two SCIM users (gone@ is deactivated and hidden, kept)

    # The export (read from the column) says what the Python writer says from the columns.
    fast = client.get(f"/odata/{ws.slug}/Users", headers=h).json()["value"]
    slow = client.get(f"/odata/{ws.slug}/Users", headers=h, params=FULL).json()["value"]
    assert fast == [{k: v for k, v in e.items() if "@" not in k} for e in slow]
    by_mail = {u["emailAddress"]: u for u in fast}
    assert by_mail["a@x.com"]["tags"] == ["T2", "T3"] and by_mail["a@x.com"]["aliases"] == []
    assert by_mail["a@x.com"]["lastName"] == "Bulk" and by_mail["b2@x.com"]["role"] == "Deactivated"
    assert by_mail["c@x.com"]["aliases"] == ["C-1", "C-2"] and by_mail["c@x.com"]["directManagerId"] == a["id"]
    assert by_mail["s@x.com"]["lastName"] == "P" and by_mail["s@x.com"]["directManagerId"] == a["id"]


def test_the_export_reads_the_stored_entity_and_computes_a_missing_one(
    client: httpx.Client, db: Database, ws: WS
) -> None:
    """A row without a stored entity (written before revision 0006) reads as before; a full page reads the
    column (a marked value shows through); a $select page computes from the columns."""
    h, root = ws.headers, f"/odata/{ws.slug}/Users"
    for i in range(3):
        _ok(client.post("/api/v1/users", headers=h, json={"emailAddress": f"u{i}@x.com", "role": "Participant",
                                                           "tags": [f"T{i}"], "lastName": f"L{i}"}))  # fmt: skip
    before = client.get(root, headers=h).json()["value"]
    users = table(User)
    with db.write() as s:
        s.execute(update(users).where(users.c.workspace_id == ws.id).values(feed_json=None))
    assert client.get(root, headers=h).json()["value"] == before
    paged, url = [], root  # pages of 2: each page computes its own missing documents
    while url:
        body = client.get(url, headers={**h, "Prefer": "odata.maxpagesize=2"}).json()
        paged += body["value"]
        url = body.get("@odata.nextLink")
    assert paged == before
    # Ordered by the key first (the key is then not the last order value), and by the key alone, descending.
    for orderby in ("id desc,lastName", "id desc"):
        ordered = client.get(root, headers=h, params={"$orderby": orderby}).json()["value"]
        assert ordered == sorted(before, key=lambda e: e["id"], reverse=True)
    with db.write() as s:
        s.execute(
            update(users)
            .where(users.c.workspace_id == ws.id, users.c.email == "u0@x.com")
            .values(feed_json='{"marked":true}')
        )
    read = client.get(root, headers=h).json()["value"]
    assert {"marked": True} in read and len(read) == len(before)
    assert [e for e in read if e != {"marked": True}] == [e for e in before if e["emailAddress"] != "u0@x.com"]
    picked = client.get(root, headers=h, params={"$select": "emailAddress,tags"}).json()["value"]
    assert {"emailAddress": "u0@x.com", "tags": ["T0"]} in picked
    # The next write of the user puts the stored entity right again.
    _ok(client.post("/api/v1/users", headers=h, json={"emailAddress": "u0@x.com", "firstName": "Again"}))
    again = {u["emailAddress"]: u for u in client.get(root, headers=h).json()["value"]}
    assert again["u0@x.com"]["firstName"] == "Again" and again["u0@x.com"]["tags"] == ["T0"]


def test_a_bulk_import_writes_each_entity_with_its_row(db: Database, ws: WS) -> None:
    """A large import stores every entity in its rows' own statements, for new users and for existing ones it
    changes: no statement recomputes an entity, and every stored one equals what the database computes."""
    recomputed: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "json_object(" in statement or "json_build_object(" in statement:
            recomputed.append(statement[:200])

    seeded = [{"emailAddress": f"old{i}@x.com", "role": "Participant", "tags": "Old"} for i in range(3_000)]
    bulk.run(db, Actor(ws.id, None, "cli", "import"), bulk.parse_rows(seeded))
    rows = [{"emailAddress": f"bulk{i}@x.com", "role": "Participant", "tags": f"T{i % 5}", "aliases": f"A-{i}"}
            for i in range(12_000)]  # fmt: skip
    # Half the existing users change (a tag and a last name added), the other half are given as they are.
    rows += [{"emailAddress": f"OLD{i}@x.com", "lastName": 'Ö"\\', "tags": "New"} for i in range(0, 3_000, 2)]
    rows += [{"emailAddress": f"old{i}@x.com", "tags": "old"} for i in range(1, 3_000, 2)]
    event.listen(db.engine, "before_cursor_execute", watch)
    try:
        result = bulk.run(db, Actor(ws.id, None, "cli", "import"), bulk.parse_rows(rows))
    finally:
        event.remove(db.engine, "before_cursor_execute", watch)
    assert (result.created, result.updated, result.unchanged) == (12_000, 1_500, 1_500)
    assert recomputed == []
    stored = _stored_and_computed(db, ws)
    assert len(stored) == 15_001 and all(s == c for _, s, c in stored)
    with db.read() as s:
        changed = s.execute(select(User.feed_json).where(User.workspace_id == ws.id, User.email == "old0@x.com"))
        assert json.loads(changed.scalar_one())["tags"] == ["Old", "New"]


def test_the_written_text_escapes_every_code_point_as_the_database_does(db: Database) -> None:
    """``feed_text`` writes strings as the database's JSON functions do, for every character a name can hold:
    the 1,112,062 code points outside the surrogates, in strings of 4,096 (control characters, which no input
    accepts, are in the first one)."""
    points = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    strings = ["".join(points[i : i + 4096]) for i in range(0, len(points), 4096)]
    when = dt.datetime(2026, 12, 2, 4, 5, 6, 7)
    function = "json_object" if db.is_sqlite else "json_build_object"
    with db.read() as s:
        conn = s.connection()
        for text in strings:
            value = cast(text, String)
            built = getattr(func, function)("lastName", value, "directManagerId", None, "tags", _array(db, value))
            theirs = conn.execute(select(cast(built, Text)))
            ours = feed_text(
                db.is_sqlite, id=uuid.UUID(int=1), email="e", role="r", active=True, first_name=None,
                last_name=text, direct_manager_id=None, tags=[text], aliases=[], created_at=when, updated_at=when,
            )  # fmt: skip
            expected = theirs.scalar_one()
            sep = ":" if db.is_sqlite else " : "
            start = ours.index(f'"lastName"{sep}')
            end = ours.index(f'"aliases"{sep}')
            assert ours[start:end].rstrip(", ") == expected[1:-1], text[:8]


def _array(db: Database, value: Any) -> Any:
    """A one-string JSON array, as each database's feed expression builds a list."""
    return func.json(func.json_array(value)) if db.is_sqlite else func.json_build_array(value)
