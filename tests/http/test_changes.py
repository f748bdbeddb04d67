"""The change feed, ``GET /api/v1/changes``, over real HTTP on SQLite and PostgreSQL (README "Change feed")."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from payroster.api import routes_changes
from payroster.db.engine import Database
from payroster.services import apikeys, changes
from payroster.services.context import Actor
from tests.conftest import WS, refused_within_key_ttl

DAY = dt.timedelta(days=1)


def age_every_event(db: Database, by: dt.timedelta) -> int:
    """Move every audit event ``by`` into the past (in Python: SQLite keeps datetimes as text); how many."""
    events = changes.EVENTS
    with db.write() as s:
        rows = s.execute(sa.select(events.c.workspace_id, events.c.id, events.c.occurred_at)).all()
        for row in rows:
            s.execute(
                sa.update(events)
                .where(events.c.workspace_id == row.workspace_id, events.c.id == row.id)
                .values(occurred_at=row.occurred_at - by)
            )
    return len(rows)


def read_all(client: httpx.Client, key: WS, after: str | None = None, limit: int = 1000) -> tuple[list[Any], str]:
    """Every change after ``after``, page by page, and the last ``next`` cursor."""
    seen: list[Any] = []
    while True:
        params: dict[str, Any] = {"limit": limit} | ({} if after is None else {"after": after})
        page = client.get("/api/v1/changes", params=params, headers=key.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["changes"]
        if not body["changes"]:
            assert after is None or body["next"] == after  # nothing new: the same cursor
            return seen, body["next"]
        after = body["next"]


def test_changes_are_every_event_in_order_with_its_wire_shape(client: httpx.Client, ws: WS) -> None:
    ann = {"emailAddress": "ann@a.example", "role": "Participant", "firstName": "Ann"}
    answer = client.post("/api/v1/users", json=ann, headers=ws.headers)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    client.patch(f"/api/v1/users/{made['id']}", json={"firstName": "Anne"}, headers=ws.headers)
    seen, cursor = read_all(client, ws, limit=1)
    assert [c["sequence"] for c in seen] == list(range(1, len(seen) + 1))
    assert seen[0]["action"] == "workspace.created"  # the workspace's own first event
    created, updated = seen[-2:]
    assert created["action"] == "user.created" and created["targetType"] == "user"
    assert created["targetId"] == made["id"] and created["channel"] == "api"
    assert created["actor"] == {"kind": "apiKey", "userId": ws.admin_id}
    assert {"field": "firstName", "before": None, "after": "Ann"} in created["changes"]
    assert updated["changes"] == [{"field": "firstName", "before": "Ann", "after": "Anne"}]
    assert updated["occurredAt"].endswith("Z") and set(updated) == {
        "sequence", "occurredAt", "action", "targetType", "targetId", "actor", "channel", "changes",
    }  # fmt: skip
    # A later change continues from the cursor, and only it comes.
    client.post("/api/v1/teams", json={"name": "West"}, headers=ws.headers)
    more, _ = read_all(client, ws, cursor)
    assert [(c["sequence"], c["action"]) for c in more] == [(len(seen) + 1, "team.created")]


def test_a_long_poll_answers_when_a_change_commits(client: httpx.Client, ws: WS, base_url: str) -> None:
    _, cursor = read_all(client, ws)
    quiet = time.monotonic()
    empty = client.get("/api/v1/changes", params={"after": cursor, "wait": 0.3}, headers=ws.headers)
    assert time.monotonic() - quiet >= 0.3
    assert empty.json() == {"changes": [], "next": cursor}

    def write_soon() -> None:
        time.sleep(0.4)
        with httpx.Client(base_url=base_url) as other:
            late = {"emailAddress": "late@a.example", "role": "Participant"}
            other.post("/api/v1/users", json=late, headers=ws.headers)

    writer = threading.Thread(target=write_soon)
    started = time.monotonic()
    writer.start()
    answer = client.get("/api/v1/changes", params={"after": cursor, "wait": 20}, headers=ws.headers)
    writer.join()
    assert time.monotonic() - started < 10  # answered by the write, long before the wait ended
    assert [c["action"] for c in answer.json()["changes"]] == ["user.created"]


def test_waiting_polls_are_bounded(
    client: httpx.Client, ws: WS, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound a poll is refused at once with Retry-After, instead of queueing."""
    monkeypatch.setattr(routes_changes, "MAX_WAITERS", 1)
    _, cursor = read_all(client, ws)
    first: list[httpx.Response] = []

    def wait() -> None:
        with httpx.Client(base_url=base_url, timeout=10) as other:
            first.append(other.get("/api/v1/changes", params={"after": cursor, "wait": 1.5}, headers=ws.headers))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    refused = client.get("/api/v1/changes", params={"after": cursor, "wait": 1}, headers=ws.headers)
    waiter.join()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["target"] == "wait"
    assert first[0].status_code == 200
    # Once the first poll ended, its place is free again.
    assert client.get("/api/v1/changes", params={"after": cursor, "wait": 0.1}, headers=ws.headers).status_code == 200


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"wait": 31}, "wait"),
        ({"wait": -1}, "wait"),
    ],
)
def test_out_of_range_parameters_answer_422(client: httpx.Client, ws: WS, params: dict[str, Any], target: str) -> None:
    answer = client.get("/api/v1/changes", params=params, headers=ws.headers)
    assert answer.status_code == 422
    assert [d["target"] for d in answer.json()["error"]["details"]] == [target]


def test_bad_cursors_are_refused_never_restarted(client: httpx.Client, ws: WS, ws_b: WS) -> None:
    _, cursor = read_all(client, ws)
    payload, _, signature = cursor.rpartition(".")
    tampered = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for bad in ("nonsense", "", tampered, cursor + "x", "x" * 5000):
        answer = client.get("/api/v1/changes", params={"after": bad}, headers=ws.headers)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["target"] == "after"
    # A cursor of workspace A is unknown to B's key, exactly as a cursor B never had.
    same_id = {"X-Request-ID": "cursor-check"}  # the request id is the only part of a body that is the request's
    foreign = client.get("/api/v1/changes", params={"after": cursor}, headers=ws_b.headers | same_id)
    assert foreign.status_code == 404 and foreign.json()["error"]["message"] == "unknown cursor"
    assert ws.slug not in foreign.text and str(ws.id) not in foreign.text
    # A genuine cursor past the last change (from a database restored to an earlier state): unknown, not a wait.
    ahead = changes.Cursors("test-secret").dump(ws.id, 10_000)
    unknown = client.get("/api/v1/changes", params={"after": ahead, "wait": 5}, headers=ws.headers | same_id)
    assert unknown.status_code == 404 and unknown.json() == foreign.json()


def test_only_full_admins_keys_read_changes(client: httpx.Client, ws: WS, db: Database) -> None:
    actor = Actor(ws.id, None, "system", "cli")
    made = client.post("/api/v1/users", json={"emailAddress": "lim@a.example", "role": "FullAdmin"}, headers=ws.headers)
    with db.write(ws.id) as s:
        key, _ = apikeys.issue(s, actor, uuid.UUID(made.json()["id"]), "limited")
        scim, _ = apikeys.issue(s, actor, None, "provisioning", kind="scim")
    assert client.get("/api/v1/changes", headers={"X-ApiKey": key}).status_code == 200
    for role in ("LimitedAdmin", "Participant"):
        client.patch(f"/api/v1/users/{made.json()['id']}", json={"role": role}, headers=ws.headers)
        # A key just used is believed for at most KEY_TTL more, timed from each request's sending (tests/conftest.py).
        refused_within_key_ttl(client, "/api/v1/changes", {"X-ApiKey": key}, 403)
        refused = client.get("/api/v1/changes", headers={"X-ApiKey": key})
        assert refused.status_code == 403, role
        assert "changes" not in refused.json()
    assert client.get("/api/v1/changes", headers={"X-ApiKey": scim}).status_code == 401
    assert client.get("/api/v1/changes").status_code == 401


def test_the_route_is_described_in_openapi(client: httpx.Client) -> None:
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/changes"]["get"]
    assert operation["operationId"] == "listChanges" and operation["tags"] == ["changes"]
    assert {p["name"] for p in operation["parameters"]} == {"after", "limit", "wait"}


WRITERS, WRITES, READERS = 8, 12, 3


def test_eight_writers_and_tailing_readers_see_every_event_once_in_order(base_url: str, ws: WS, db: Database) -> None:
    """Readers tail the feed with ``after`` cursors while 8 writers create and change users: every reader sees
    numbers 1, 2, 3 ... with none missing or out of order, and in the end exactly the events the writes made."""
    written: list[list[str]] = [[] for _ in range(WRITERS)]
    seen: list[list[Any]] = [[] for _ in range(READERS)]
    writing = threading.Event()
    writing.set()
    failures: list[str] = []
    start = threading.Barrier(WRITERS + READERS)
    count = sa.select(sa.func.count()).select_from(changes.EVENTS)
    with db.read() as s:
        before = s.execute(count).scalar_one()  # the workspace's own events: its creation, its admin, its key

    def write(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            start.wait()
            for n in range(WRITES):
                user = {"emailAddress": f"w{i}.{n}@a.example", "role": "Participant", "tags": f"T{n}"}
                made = c.post("/api/v1/users", json=user, headers=ws.headers)
                if made.status_code != 201:
                    failures.append(made.text)
                    continue
                written[i].append(made.json()["id"])
                changed = c.patch(f"/api/v1/users/{made.json()['id']}", json={"lastName": f"L{n}"}, headers=ws.headers)
                if changed.status_code != 200:
                    failures.append(changed.text)

    def tail(r: int) -> None:
        after: str | None = None
        with httpx.Client(base_url=base_url, timeout=60) as c:
            start.wait()
            while True:
                done = not writing.is_set()  # read before the page: a page after the last write then drains it
                params: dict[str, Any] = {"limit": 5 + r, "wait": 0.2} | ({} if after is None else {"after": after})
                page = c.get("/api/v1/changes", params=params, headers=ws.headers)
                if page.status_code != 200:
                    failures.append(page.text)
                    return
                body = page.json()
                seen[r] += body["changes"]
                after = body["next"]
                if done and not body["changes"]:
                    return

    writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    readers = [threading.Thread(target=tail, args=(r,)) for r in range(READERS)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    writing.clear()
    for t in readers:
        t.join()
    assert failures == []
    with db.read() as s:
        total = s.execute(count).scalar_one()
    assert total == before + 2 * WRITERS * WRITES  # a create and a change per write
    created = sorted(c["targetId"] for c in seen[0] if c["action"] == "user.created" and c["targetId"] != ws.admin_id)
    assert created == sorted(uid for ids in written for uid in ids)
    for r in range(READERS):
        assert [c["sequence"] for c in seen[r]] == list(range(1, total + 1)), f"reader {r}"
        assert seen[r] == seen[0]  # every reader saw the same events under the same numbers


def test_pruned_changes_answer_410_to_older_cursors(client: httpx.Client, ws: WS, db: Database) -> None:
    """Pruning numbers what is not numbered yet, then deletes the old events: a cursor before them is told to
    resync, and a reader starting afresh begins with the first kept change."""
    for n in range(3):
        client.post(
            "/api/v1/users", json={"emailAddress": f"old{n}@a.example", "role": "Participant"}, headers=ws.headers
        )
    old = age_every_event(db, 100 * DAY)  # written 100 days ago, and no reader has seen them yet
    for n in range(2):
        client.post(
            "/api/v1/users", json={"emailAddress": f"new{n}@a.example", "role": "Participant"}, headers=ws.headers
        )
    beginning = changes.Cursors("test-secret").dump(ws.id, 0)
    assert client.get("/api/v1/changes", params={"after": beginning}, headers=ws.headers).status_code == 200

    assert changes.prune(db, 90 * DAY) == old
    assert changes.prune(db, 90 * DAY) == 0  # nothing more is that old
    gone = client.get("/api/v1/changes", params={"after": beginning}, headers=ws.headers)
    assert gone.status_code == 410 and "full resync needed" in gone.json()["error"]["message"]
    kept, cursor = read_all(client, ws)
    assert [(c["sequence"], c["action"]) for c in kept] == [(old + 1, "user.created"), (old + 2, "user.created")]
    # The last pruned position is still a valid cursor: nothing after it was deleted.
    at_edge = changes.Cursors("test-secret").dump(ws.id, old)
    assert client.get("/api/v1/changes", params={"after": at_edge}, headers=ws.headers).json()["changes"] == kept
    assert client.get("/api/v1/changes", params={"after": cursor}, headers=ws.headers).json()["changes"] == []


def test_a_page_read_ahead_is_the_page_read_and_a_prune_since_answers_410(
    client: httpx.Client, ws: WS, db: Database, http_server: Any
) -> None:
    """After a full page the server reads the next one while its reader parses (routes_changes ``_Ahead``): the
    reader is served it, the same page as a read would give, and a prune that passes its start after it was read
    still answers 410."""
    rows = [{"emailAddress": f"a{i}@a.example", "role": "Participant"} for i in range(12)]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    expected = [orjson.loads(doc) for doc in changes.read(db, ws.id, None, 1000, as_json=True).events]
    assert len(expected) > 12
    ahead = http_server[0].app.state

    def read_ahead(cursor: str, position: int) -> None:
        """Until the page after ``position`` is read ahead."""
        deadline = time.monotonic() + 10
        while not ((task := ahead.changes_ahead.pages.get((ws.id, position, 4))) and task.done()):
            assert time.monotonic() < deadline, cursor
            time.sleep(0.01)

    first = client.get("/api/v1/changes", params={"limit": 4}, headers=ws.headers).json()
    assert first["changes"] == expected[:4]
    read_ahead(first["next"], 4)
    second = client.get("/api/v1/changes", params={"limit": 4, "after": first["next"]}, headers=ws.headers).json()
    assert second["changes"] == expected[4:8]
    assert (ws.id, 4, 4) not in ahead.changes_ahead.pages  # served from there
    seen, _ = read_all(client, ws, after=second["next"], limit=4)
    assert first["changes"] + second["changes"] + seen == expected

    assert client.get("/api/v1/changes", params={"limit": 4}, headers=ws.headers).json() == first
    read_ahead(first["next"], 4)  # read ahead again, full, then pruned away
    assert age_every_event(db, 100 * DAY) and changes.prune(db, 90 * DAY) == len(expected)
    gone = client.get("/api/v1/changes", params={"limit": 4, "after": first["next"]}, headers=ws.headers)
    assert gone.status_code == 410, gone.text


def test_the_database_writes_each_event_as_the_python_writer_does(client: httpx.Client, ws: WS, db: Database) -> None:
    """The feed's pages are the events' JSON written from their text columns (changes.read, ``as_json``): the same
    document as ``changes.document`` for single writes, bulk writes, memberships, variables and a provisioning
    token's change (no user), values with quotes, backslashes and non-ASCII text included."""
    rows = [{"emailAddress": f"b{i}@a.example", "role": "Participant", "lastName": 'O"Brien \\ Été'} for i in range(3)]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    team = client.post("/api/v1/teams", json={"name": 'Ünïcode "team"'}, headers=ws.headers).json()["id"]
    pair = {"teamId": team, "systemUserId": ws.admin_id}
    assert client.post("/api/v1/team-members", json=pair, headers=ws.headers).status_code == 201
    entries = [{"name": "Quota", "value": 1.5, "startDate": "2026-01-01"}]
    assert client.put(f"/api/v1/custom-variables/{team}", json=entries, headers=ws.headers).status_code == 200
    with db.write() as s:  # as a provisioning token's change reads: no user
        s.execute(sa.update(changes.EVENTS).values(actor_user_id=None).where(changes.EVENTS.c.action == "team.created"))
    python = changes.read(db, ws.id, None, 1000)
    database = changes.read(db, ws.id, None, 1000, as_json=True)
    assert len(python.events) == len(database.events) >= 8
    for event, written in zip(python.events, database.events, strict=True):
        assert orjson.loads(written) == orjson.loads(orjson.dumps(changes.document(event)))
    assert any(orjson.loads(written)["actor"]["userId"] is None for written in database.events)
    assert database.last == python.last == python.events[-1].sequence
