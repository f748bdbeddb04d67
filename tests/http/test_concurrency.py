"""Simultaneous writes over real HTTP on SQLite and PostgreSQL: nothing lost, nothing duplicated."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import sqlalchemy as sa

from payroster.app import COLLECTOR_THRESHOLD, SWITCH_INTERVAL, create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import TeamMember, User, table
from payroster.odata.query import feed_document
from payroster.services import bulk
from payroster.services.context import Actor
from tests.conftest import WS
from tests.scim.conftest import Scim, scim_for

N = 32


def burst(base_url: str, call: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """Run ``call`` from N threads released together, each on its own connection."""
    barrier = threading.Barrier(N)
    results: list[Any] = [None] * N

    def run(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            barrier.wait()
            results[i] = call(c, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_32_upserts_of_one_new_email(base_url: str, ws: WS, db: Database) -> None:
    """One user, created once, holding the union of all 32 tags."""
    results = burst(
        base_url,
        lambda c, i: c.post(
            "/api/v1/users",
            json={"emailAddress": "Race@X.com", "role": "Participant", "tags": f"T{i}"},
            headers=ws.headers,
        ),
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200] * (N - 1) + [201], [r.text for r in results if r.status_code >= 300]
    assert len({r.json()["id"] for r in results}) == 1
    users = table(User)
    with db.read() as s:
        count = s.execute(
            sa.select(sa.func.count()).where(users.c.workspace_id == ws.id, users.c.email_key == "race@x.com")
        ).scalar_one()
    assert count == 1
    final = httpx.get(f"{base_url}/api/v1/users", params={"emailAddress": "race@x.com"}, headers=ws.headers).json()
    assert sorted(final["tags"]) == sorted(f"T{i}" for i in range(N))


def test_32_adds_of_one_membership(base_url: str, client: httpx.Client, ws: WS, db: Database) -> None:
    """Exactly one created, the rest no-ops, one row."""
    user = client.post(
        "/api/v1/users", json={"emailAddress": "m@x.com", "role": "Participant"}, headers=ws.headers
    ).json()
    team = client.post("/api/v1/teams", json={"name": "T"}, headers=ws.headers).json()
    pair = {"systemUserId": user["id"], "teamId": team["id"]}
    results = burst(base_url, lambda c, i: c.post("/api/v1/team-members", json=pair, headers=ws.headers))
    assert sorted(r.status_code for r in results) == [200] * (N - 1) + [201]
    assert sum(r.json()["created"] for r in results) == 1
    tm = table(TeamMember)
    with db.read() as s:
        assert s.execute(sa.select(sa.func.count()).where(tm.c.workspace_id == ws.id)).scalar_one() == 1


def test_32_different_creates(base_url: str, ws: WS, db: Database) -> None:
    """32 different users at once all land."""
    results = burst(
        base_url,
        lambda c, i: c.post(
            "/api/v1/users", json={"emailAddress": f"p{i}@x.com", "role": "Participant"}, headers=ws.headers
        ),
    )
    assert [r.status_code for r in results] == [201] * N
    users = table(User)
    with db.read() as s:
        assert s.execute(sa.select(sa.func.count()).where(users.c.workspace_id == ws.id)).scalar_one() == N + 1


def test_handler_thread_pool_follows_the_setting(settings: Settings, db: Database) -> None:
    """``PAYROSTER_THREADS`` sizes the pool that runs request handlers, for the life of the server."""

    async def pool_size(threads: int) -> float:
        app = create_app(settings.model_copy(update={"threads": threads}), db)
        async with app.router.lifespan_context(app):
            return anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(pool_size, 3) == 3
    assert anyio.run(pool_size, 8) == 8


def test_the_interpreter_is_settled_once_the_server_runs(settings: Settings, db: Database) -> None:
    """After start-up the objects built so far are frozen, young collections run less often and threads
    hand the GIL over sooner."""

    async def started() -> tuple[int, int, float]:
        app = create_app(settings, db)
        async with app.router.lifespan_context(app):
            return gc.get_threshold()[0], gc.get_freeze_count(), sys.getswitchinterval()

    threshold, frozen, interval = anyio.run(started)
    assert threshold >= COLLECTOR_THRESHOLD > 700
    assert frozen > 10_000  # the application's modules, routes and models
    assert interval == SWITCH_INTERVAL < 0.005


def test_a_scim_write_waits_for_an_import_of_its_workspace(
    base_url: str, client: httpx.Client, ws: WS, db: Database
) -> None:
    """An import has its workspace to itself: a SCIM PATCH that arrives while it runs waits for its commit (on
    PostgreSQL the SCIM door took no workspace lock and wrote in the middle of the import, which then stored the
    user's entity as it had read it), then applies to what the import wrote."""
    scim = scim_for(client, db, ws)
    made = scim.create_user("x@x.com")
    done: dict[str, httpx.Response] = {}

    def patch() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            op = {"op": "replace", "path": "name.familyName", "value": "Patched"}
            done["r"] = Scim(c, ws, scim.token, scim.root).patch(f"Users/{made['id']}", op)

    waiting = threading.Thread(target=patch)
    with db.write(ws.id, exclusive=True) as s:  # as bulk.run holds it
        waiting.start()
        waiting.join(1.5)
        assert waiting.is_alive() and not done, "the SCIM write ran inside the import"
        rows = [{"emailAddress": "X@x.com", "lastName": "Imported", "tags": "C"}]
        assert bulk.apply(s, Actor(ws.id, None, "cli", "import"), bulk.parse_rows(rows)).updated == 1
    waiting.join(30)
    assert done["r"].status_code == 200, done["r"].text
    users = table(User)
    with db.read() as s:
        stored, computed = s.execute(
            sa.select(users.c.feed_json, feed_document(users, db.is_sqlite)).where(
                users.c.workspace_id == ws.id, users.c.email_key == "x@x.com"
            )
        ).one()
    assert stored == computed
    assert '"Patched"' in stored and '"C"' in stored
