"""Concurrency soak: 8 clients x PAYROSTER_SOAK_SECONDS (10 by default, 60 in the full form) of a mixed
workload against one ``payroster serve --workers 2``, on SQLite and PostgreSQL. Afterwards: no duplicate
e-mails or aliases, memberships unique, every acknowledged change present, exactly one audit event per
acknowledged change, and no error apart from the documented 409 and 429."""

from __future__ import annotations

import collections
import os
import random
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import Uuid, bindparam, create_engine, text

from tests.conftest import create_workspace
from tests.procs import serve

SECONDS = float(os.environ.get("PAYROSTER_SOAK_SECONDS", "10"))
CLIENTS = 8
SHARED_EMAILS = 100
ALLOWED = {409, 429}


class Ledger:
    """What the clients were told, shared between their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ops: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.changes = 0
        self.tags: dict[str, set[str]] = collections.defaultdict(set)
        self.members: dict[tuple[str, str], bool] = {}
        self.variables: dict[str, int] = {}

    def note(self, op: str, r: httpx.Response, changes: int = 0) -> bool:
        with self.lock:
            self.ops[op] += 1
            if r.status_code >= 300:
                self.errors[f"{op} {r.status_code}"] += 1
                return False
            self.changes += changes
            return True


def _client(
    n: int, url: str, key: str, slug: str, teams: list[str], own: list[str], stop: threading.Event, book: Ledger
) -> None:
    rnd = random.Random(n)
    headers = {"X-ApiKey": key}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        i = 0
        while not stop.is_set():
            i += 1
            kind = rnd.choices(["upsert", "member", "variables", "odata"], weights=[5, 3, 1, 1])[0]
            if kind == "upsert":
                email = f"shared{rnd.randrange(SHARED_EMAILS):03d}@soak.example"
                tag = f"c{n}-{i}"  # a new tag every time: each acknowledged upsert is exactly one change
                body = {"emailAddress": email, "role": "Participant", "tags": [tag, "Soak"], "aliases": [f"A-{email}"]}
                r = c.post("/api/v1/users", json=body)
                if book.note("upsert", r, 1):
                    with book.lock:
                        book.tags[email.casefold()].add(tag)
            elif kind == "member":
                pair = (rnd.choice(own), rnd.choice(teams))
                body = {"systemUserId": pair[0], "teamId": pair[1]}
                if rnd.random() < 0.5:
                    r = c.post("/api/v1/team-members", json=body)
                    if book.note("member.add", r, int(r.status_code == 201)):
                        book.members[pair] = True
                else:
                    r = c.post("/api/v1/team-members:delete", json=body)
                    if book.note("member.remove", r, int(r.status_code == 200 and r.json().get("deleted") is True)):
                        book.members[pair] = False
            elif kind == "variables":
                target = rnd.choice(own)
                value = n * 1_000_000 + i  # a new value every time: one change
                body = [{"name": "Quota", "value": value, "startDate": "2026-01-01", "endDate": None}]
                if book.note("variables", c.put(f"/api/v1/custom-variables/{target}", json=body), 1):
                    book.variables[target] = value
            else:
                r = c.get(f"/odata/{slug}/Users", params={"$filter": "tags/any(t: t eq 'Soak')", "$top": "20"})
                book.note("odata", r)


def _create(c: httpx.Client, email: str) -> str:
    r = c.post("/api/v1/users", json={"emailAddress": email, "role": "Participant"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_mixed_workload_keeps_every_invariant(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "PAYROSTER_RATE_LIMIT_PER_KEY": "100000/second",
        "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "100000/second",
    }
    made = create_workspace(env)
    slug, key = made["workspaceSlug"], made["apiKey"]
    book = Ledger()
    with (
        serve(env, tmp_path / "soak.log", workers=2) as live,
        httpx.Client(base_url=live.url, headers={"X-ApiKey": key}) as c,
    ):
        teams = [c.post("/api/v1/teams", json={"name": f"Team {t}"}).json()["id"] for t in range(5)]
        owned = [[_create(c, f"own{n}-{u}@soak.example") for u in range(5)] for n in range(CLIENTS)]
        engine = create_engine(env["PAYROSTER_DATABASE_URL"])
        with engine.connect() as conn:
            events_before = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
        stop = threading.Event()
        threads = [
            threading.Thread(target=_client, args=(n, live.url, key, slug, teams, owned[n], stop, book))
            for n in range(CLIENTS)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - started
    total = sum(book.ops.values())
    print(f"\nsoak: {total} operations in {elapsed:.1f} s with {CLIENTS} clients, 2 workers "
          f"({total / elapsed:.0f}/s): {dict(book.ops)}; refused: {dict(book.errors)}")  # fmt: skip
    assert total > CLIENTS * SECONDS  # it did run
    unexpected = {k: v for k, v in book.errors.items() if int(k.rsplit(" ", 1)[1]) not in ALLOWED}
    assert not unexpected, unexpected
    try:
        with engine.connect() as conn:
            q = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
            for table, columns in (
                ("users", "workspace_id, email_key"),
                ("user_aliases", "workspace_id, value_key"),
                ("team_members", "team_id, user_id"),
            ):
                assert q(f"SELECT {columns} FROM {table} GROUP BY {columns} HAVING count(*) > 1") == [], table
            stored: dict[str, set[str]] = collections.defaultdict(set)
            tagged = q(
                "SELECT u.email, t.value FROM users u JOIN user_tags t "
                "ON t.workspace_id = u.workspace_id AND t.user_id = u.id WHERE u.email LIKE 'shared%'"
            )
            for email, tag in tagged:
                stored[email.casefold()].add(tag)
            for email, tags in book.tags.items():
                assert tags <= stored[email], f"{email}: acknowledged tags missing {tags - stored[email]}"
            members = {
                (str(uuid.UUID(str(u))), str(uuid.UUID(str(t))))
                for u, t in q("SELECT user_id, team_id FROM team_members")
            }
            for pair, present in book.members.items():
                assert (pair in members) == present, pair
            for target, value in book.variables.items():
                stmt = text("SELECT value_json FROM custom_variables WHERE target_id = :t")
                got = conn.execute(stmt.bindparams(bindparam("t", uuid.UUID(target), type_=Uuid))).scalars().all()
                assert got == [str(value)], target
            events_after = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    finally:
        engine.dispose()
    assert events_after - events_before == book.changes, (events_after - events_before, book.changes)
    print(f"soak: {book.changes} acknowledged changes = {events_after - events_before} audit events")
