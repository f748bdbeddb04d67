"""The fast write paths give the same rows as the ordinary ones: bulk rows (written as driver tuples) read
back like single upserts, and list positions stay ordered across removals (they are read with the lists)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
import threading
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from payroster.db import rows
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, User, UserAlias, UserTag, table
from payroster.services import bulk, users
from payroster.services.context import Actor
from payroster.services.inputs import parse_user
from tests.conftest import WS
from tests.scim.conftest import USER, is_error, scim_for

WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SQLITE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")  # SQLAlchemy's own DateTime text


def _user(**extra: object) -> dict[str, object]:
    return {"role": "Participant", "firstName": "Ada", "lastName": "Lovelace", "tags": "AE|West", **extra}


def test_bulk_rows_read_back_like_single_upserts(client: httpx.Client, ws: WS, db: Database) -> None:
    single = client.post(
        "/api/v1/users", json=_user(emailAddress="one@acme.example", aliases="A-1"), headers=ws.headers
    )
    assert single.status_code == 201
    bulk = client.post(
        "/api/v1/users:bulk", json=[_user(emailAddress="two@acme.example", aliases="A-2")], headers=ws.headers
    )
    assert bulk.status_code == 200 and bulk.json()["created"] == 1
    made = {u["emailAddress"]: u["id"] for u in bulk.json()["users"]} | {"one@acme.example": single.json()["id"]}

    api = {e: client.get(f"/api/v1/users/{i}", headers=ws.headers).json() for e, i in made.items()}
    feed = client.get(f"/odata/{ws.slug}/Users", params={"$filter": "startswith(emailAddress,'t') or "
                      "startswith(emailAddress,'o')"}, headers=ws.headers).json()["value"]  # fmt: skip
    odata = {u["emailAddress"]: u for u in feed}
    for view in (api, odata):
        one, two = view["one@acme.example"], view["two@acme.example"]
        assert set(one) == set(two)
        for name in ("role", "active", "firstName", "lastName", "tags", "directManagerId"):
            assert one[name] == two[name], name
        assert [one["aliases"], two["aliases"]] == [["A-1"], ["A-2"]]
        for stamp in ("createdAt", "updatedAt"):
            assert WIRE_TIME.match(one[stamp]) and WIRE_TIME.match(two[stamp]), (one[stamp], two[stamp])

    with db.read() as s:
        rows = {u.email: u for u in s.scalars(select(User).where(User.workspace_id == ws.id))}
        two = rows["two@acme.example"]
        assert isinstance(two.id, uuid.UUID) and isinstance(two.created_at, dt.datetime)
        assert two.active is True and two.scim_hidden is False and two.email_key == "two@acme.example"
        tags = s.execute(select(UserTag.value, UserTag.value_key, UserTag.position).where(UserTag.user_id == two.id))
        assert sorted(tags) == [("AE", "ae", 0), ("West", "west", 1)]
        alias = s.execute(select(UserAlias.value_key, UserAlias.user_id).where(UserAlias.workspace_id == ws.id))
        assert ("a-2", two.id) in list(alias)
        event = s.scalars(select(AuditEvent).where(AuditEvent.target_id == two.id)).one()
        assert event.action == "user.created" and event.channel == "api" and event.actor_kind == "apiKey"
        assert {c["field"]: c["after"] for c in json.loads(event.changes)}["aliases"] == ["A-2"]
        if db.is_sqlite:  # the stored text is SQLAlchemy's own format, so both kinds of rows sort and compare alike
            stored = s.execute(text("SELECT created_at, updated_at, id FROM users WHERE email = 'two@acme.example'"))
            created, updated, raw_id = stored.one()
            assert SQLITE_TIME.match(created) and SQLITE_TIME.match(updated) and raw_id == two.id.hex


def test_positions_stay_ordered_across_removals(client: httpx.Client, ws: WS, db: Database) -> None:
    body = {"emailAddress": "pos@acme.example", "role": "Participant", "tags": "A|B|C", "aliases": "X|Y"}
    uid = client.post("/api/v1/users", json=body, headers=ws.headers).json()["id"]
    assert client.delete(f"/api/v1/users/{uid}/tags", params={"value": "b"}, headers=ws.headers).status_code == 200
    assert client.delete(f"/api/v1/users/{uid}/aliases", params={"value": "X"}, headers=ws.headers).status_code == 200
    again = {"emailAddress": "POS@acme.example", "tags": ["D", "b", "a"], "aliases": "Z"}
    r = client.post("/api/v1/users", json=again, headers=ws.headers)
    assert r.status_code == 200
    assert (r.json()["tags"], r.json()["aliases"]) == (["A", "C", "D", "b"], ["Y", "Z"])
    fetched = client.get(f"/api/v1/users/{uid}", headers=ws.headers).json()
    assert (fetched["tags"], fetched["aliases"]) == (["A", "C", "D", "b"], ["Y", "Z"])
    with db.read() as s:
        for model in (UserTag, UserAlias):
            positions = list(
                s.scalars(select(model.position).where(model.user_id == uuid.UUID(uid)).order_by(model.position))
            )
            assert positions == sorted(set(positions)), positions  # unique and increasing


def test_driver_level_inserts_raise_sqlalchemy_errors_and_write_nothing(ws: WS, db: Database) -> None:
    """A constraint broken by the tuple path surfaces as SQLAlchemy's IntegrityError (which the API maps to
    409), and the transaction writes nothing."""
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(UserTag))
    with pytest.raises(IntegrityError), db.write() as s:
        d = rows.Driver(s)
        uid = d.uid(uuid.UUID(ws.admin_id))
        same = (d.uid(ws.id), uid, "dup", "Dup", 0)
        rows.insert_many(s, table(UserTag), ("workspace_id", "user_id", "value_key", "value", "position"), [same, same])
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(UserTag)) == before


def test_bulk_requests_run_with_the_collector_paused(client: httpx.Client, ws: WS) -> None:
    """A batch's parsing, planning and writing (on a request handler thread) set off no garbage collection,
    which was a quarter of a large import's time, and the collector is on again after every batch, refused
    ones included."""
    rows = [_user(emailAddress=f"gc{i}@acme.example", tags=f"T{i % 7}|All") for i in range(3000)]
    starts: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            starts.append(threading.current_thread().name)

    assert gc.isenabled()
    settled = gc.get_threshold()
    gc.set_threshold(700, *settled[1:])  # Python's default pace, so that the control below collects
    gc.callbacks.append(count)
    try:
        bulk.parse_rows(rows)  # the same parsing with the collector on, as a control that the check can fail
        control = len(starts)
        starts.clear()
        r = client.post("/api/v1/users:bulk", json=rows, headers=ws.headers)
        handlers = [name for name in starts if name.startswith("AnyIO worker")]
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*settled)
    assert r.status_code == 200 and r.json()["created"] == 3000
    # At most the collections that come due right after the pause (the allocation count keeps running while
    # the collector is off); without the pause this batch sets off dozens.
    assert len(handlers) <= 2 < control, (control, handlers)
    assert gc.isenabled()

    refused = client.post("/api/v1/users:bulk", json=[{"emailAddress": "no-role@acme.example"}], headers=ws.headers)
    assert refused.status_code == 422 and gc.isenabled()


def test_a_create_writes_every_field_at_once_and_a_refused_one_writes_nothing(
    client: httpx.Client, ws: WS, db: Database
) -> None:
    """A new user is written by one INSERT with every field, then its lists: it reads back like any other, its
    audit event lists every field, and a create refused by a rule (unknown manager, alias held by another
    user, userName taken) leaves no user, no list item and no event behind."""
    boss = client.post("/api/v1/users", json=_user(emailAddress="boss@acme.example"), headers=ws.headers).json()
    client.post("/api/v1/users", json=_user(emailAddress="held@acme.example", aliases="HELD-1"), headers=ws.headers)
    body = _user(
        emailAddress="New@Acme.example", role="Deactivated", directManagerId=boss["id"], aliases="N-1|N-2", tags="AE|AE"
    )
    r = client.post("/api/v1/users", json=body, headers=ws.headers)
    assert r.status_code == 201
    made = r.json()
    assert made == client.get(f"/api/v1/users/{made['id']}", headers=ws.headers).json()
    assert (made["role"], made["active"], made["directManagerId"]) == ("Deactivated", False, boss["id"])
    assert (made["firstName"], made["tags"], made["aliases"]) == ("Ada", ["AE"], ["N-1", "N-2"])
    with db.read() as s:
        stored = s.scalars(select(User).where(User.id == uuid.UUID(made["id"]))).one()
        assert (stored.role, stored.email_key, stored.scim_hidden) == ("Participant", "new@acme.example", False)
        event = s.scalars(select(AuditEvent).where(AuditEvent.target_id == stored.id)).one()
    assert event.action == "user.created"
    logged = {c["field"]: c["after"] for c in json.loads(event.changes)}
    assert logged == {
        "emailAddress": "New@Acme.example", "role": "Participant", "active": False, "firstName": "Ada",
        "lastName": "Lovelace", "directManagerId": boss["id"], "tags": ["AE"], "aliases": ["N-1", "N-2"],
    }  # fmt: skip

    def counts() -> tuple[int, ...]:
        with db.read() as s:
            return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in (User, UserTag, AuditEvent))

    before = counts()
    orphan = _user(emailAddress="x1@a.example", directManagerId=str(uuid.uuid4()))
    unknown = client.post("/api/v1/users", json=orphan, headers=ws.headers)
    taken = client.post("/api/v1/users", json=_user(emailAddress="x2@a.example", aliases="held-1"), headers=ws.headers)
    assert (unknown.status_code, taken.status_code) == (422, 409)
    scim = scim_for(client, db, ws)  # the userName rule is reached through SCIM only
    scim.create_user("same@acme.example")
    before = counts()
    emails = [{"value": "other@acme.example"}]
    again = scim.post("Users", {"schemas": [USER], "userName": "SAME@acme.example", "emails": emails})
    assert is_error(again, 409, "uniqueness")
    assert counts() == before


def test_a_create_that_loses_the_race_writes_nothing_and_one_that_wins_writes_its_lists_in_order(
    client: httpx.Client, ws: WS, db: Database
) -> None:
    """The create itself (on PostgreSQL one statement: user, tags, aliases and event), called as the upsert
    calls it after finding no user: for an e-mail another request created meanwhile it writes no user, list
    item or event and returns None (the upsert then updates that user); for a new one, the lists are stored
    with positions from 0 in the order given and one event records the whole user."""
    client.post("/api/v1/users", json=_user(emailAddress="first@acme.example"), headers=ws.headers)
    actor = Actor(ws.id, uuid.UUID(ws.admin_id), "apiKey", "api")
    tables = (User, UserTag, UserAlias, AuditEvent)

    def counts() -> tuple[int, ...]:
        with db.read() as s:
            return tuple(s.scalar(select(func.count()).select_from(m)) or 0 for m in tables)

    before = counts()
    lost, _ = parse_user(_user(emailAddress="FIRST@acme.example", aliases="R-1", tags="Z|Y"), lambda p: p)
    with db.write(ws.id) as s:
        assert users._create(s, actor, lost) is None
    assert counts() == before

    won, _ = parse_user(_user(emailAddress="second@acme.example", aliases="S-2|S-1", tags="Z|Y|X"), lambda p: p)
    with db.write(ws.id) as s:
        made = users._create(s, actor, won)
        assert made is not None and made.next_position == {"tags": 3, "aliases": 2}
    assert counts() == tuple(n + d for n, d in zip(before, (1, 3, 2, 1), strict=True))
    with db.read() as s:
        for model, expected in ((UserTag, [("Z", 0), ("Y", 1), ("X", 2)]), (UserAlias, [("S-2", 0), ("S-1", 1)])):
            stored = s.execute(
                select(model.value, model.position).where(model.user_id == made.user.id).order_by(model.position)
            ).all()
            assert [tuple(r) for r in stored] == expected
        event = s.scalars(select(AuditEvent).where(AuditEvent.target_id == made.user.id)).one()
    assert (event.action, event.actor_user_id, event.channel) == ("user.created", actor.user_id, "api")
    assert {c["field"]: c["after"] for c in json.loads(event.changes)}["tags"] == ["Z", "Y", "X"]
    again = client.get(f"/api/v1/users/{made.user.id}", headers=ws.headers).json()
    assert (again["tags"], again["aliases"]) == (["Z", "Y", "X"], ["S-2", "S-1"])


def test_a_batch_written_in_flushes_keeps_every_row(ws: WS, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """New users, their lists and every audit event are inserted a few users at a time (``bulk.FLUSH``): a batch
    that spans several flushes, with a remainder, writes what one written whole would, existing users'
    updates and new users' managers included."""
    monkeypatch.setattr(bulk, "FLUSH", 4)
    actor = Actor(ws.id, None, "cli", "import")
    old = [{"emailAddress": f"old{n}@acme.example", "role": "Participant", "tags": "Old"} for n in range(3)]
    bulk.run(db, actor, bulk.parse_rows(old))
    batch = [
        {"emailAddress": f"new{n}@acme.example", "role": "Participant", "tags": f"T{n}|All", "aliases": f"N-{n}",
         "directManagerId": ws.admin_id}
        for n in range(9)
    ] + [
        {"emailAddress": "old0@acme.example", "tags": "Added"},  # an update
        {"emailAddress": "OLD1@acme.example", "firstName": "Renamed"},  # an update
        {"emailAddress": "old2@acme.example", "tags": "old"},  # unchanged: the tag is there already
    ]  # fmt: skip
    result = bulk.run(db, actor, bulk.parse_rows(batch))
    assert (result.created, result.updated, result.unchanged) == (9, 2, 1)
    with db.read() as s:
        found = {u.email: u for u in s.scalars(select(User).where(User.workspace_id == ws.id))}
        assert {f"new{n}@acme.example" for n in range(9)} <= set(found)
        for n in range(9):
            u = found[f"new{n}@acme.example"]
            assert str(u.direct_manager_id) == ws.admin_id
            assert list(s.scalars(select(UserTag.value).where(UserTag.user_id == u.id).order_by(UserTag.position)))\
                == [f"T{n}", "All"]  # fmt: skip
            assert list(s.scalars(select(UserAlias.value).where(UserAlias.user_id == u.id))) == [f"N-{n}"]
        assert found["old1@acme.example"].first_name == "Renamed"
        assert list(s.scalars(select(UserTag.value).where(UserTag.user_id == found["old0@acme.example"].id)
                              .order_by(UserTag.position))) == ["Old", "Added"]  # fmt: skip
        events = s.execute(
            select(AuditEvent.target_id, AuditEvent.action).where(
                AuditEvent.workspace_id == ws.id, AuditEvent.channel == "import"
            )
        ).all()
    created = [t for t, action in events if action == "user.created"]
    updated = [t for t, action in events if action == "user.updated"]
    assert len(created) == 12 and len(set(created)) == 12  # the 3 earlier users and the batch's 9
    assert sorted(map(str, updated)) == sorted(str(found[f"old{n}@acme.example"].id) for n in (0, 1))
