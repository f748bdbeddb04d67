"""Hostile clients against one ``payroster serve`` (SQLite and PostgreSQL) with a short query budget: eight
threads send the review's heavy feed queries, "try it" runs of the explorer and giant SCIM filters, each giving
up after 3 s (one after 1 s, so its query is stopped by its leaving), while a ninth calls ``/healthz`` and
``GET /api/v1/me`` every 100 ms for PAYROSTER_HOSTILE_SECONDS (15 by default, 60 in ./scripts/reliability-full).

Afterwards: the probes' p99 is at most a second, no answer is a 5xx except 503s that say the time budget was
spent, no heavy query is left running, and the server's memory is back within 20% of where it started.

``ATTACKS`` is the workload: each entry names one request and the client time-out it runs with; a door's own
expensive requests join it by appending entries (the clients draw from the list at random).
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.odata.hostile import HEAVY, HEAVY_FILTER, big_queries, heavy_rows
from tests.procs import run_cli, serve
from tests.web.conftest import http_login

SECONDS = float(os.environ.get("PAYROSTER_HOSTILE_SECONDS", "15"))
BUDGET = 2.0
CLIENTS = 8
PASSWORD = "hostile clients are welcome"


@dataclass
class Target:
    """What the attacks need: the live server, a key, the feed's root and a signed-in admin's cookies (every
    client carries them)."""

    url: str
    key: str
    root: str
    cookies: httpx.Cookies


@dataclass(frozen=True)
class Attack:
    """One expensive request and how long its client waits for the answer."""

    name: str
    send: Callable[[httpx.Client, Target], httpx.Response]
    timeout: float = 3.0


def _feed(query: dict[str, str]) -> Callable[[httpx.Client, Target], httpx.Response]:
    return lambda c, t: c.get(t.root + "Users", params=query, headers={"X-ApiKey": t.key})


def _explorer(c: httpx.Client, t: Target) -> httpx.Response:
    query = f"$filter={HEAVY_FILTER}&$count=true"
    return c.get("/settings/connections/odata", params={"set": "Users", "query": query})


def _scim_search(terms: int) -> Callable[[httpx.Client, Target], httpx.Response]:
    """A SCIM search whose filter is ``terms`` userName comparisons joined by ``or`` (the review's was 20,000,
    about 500 KB); past the documented limits it is a quick 400 invalidFilter, at them it runs."""
    text_filter = " or ".join(f'userName eq "u{i}@hostile.example"' for i in range(terms))

    def send(c: httpx.Client, t: Target) -> httpx.Response:
        slug = t.root.rstrip("/").rsplit("/", 1)[-1]
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": text_filter}
        return c.post(f"/scim/v2/{slug}/Users/.search", json=body, headers={"Authorization": f"Bearer {t.key}"})

    return send


ATTACKS: list[Attack] = [
    Attack("giant SCIM filter", _scim_search(20_000)),
    Attack("SCIM filter of 999 terms", _scim_search(999)),
    Attack("SCIM filter at the term limit", _scim_search(100)),
    Attack("heavy feed query", _feed(HEAVY)),
    Attack("heavy feed query, client gone after 1 s", _feed(HEAVY), timeout=1.0),
    Attack("explorer try-it", _explorer),
    *(Attack(f"big feed query {i}", _feed(q)) for i, q in enumerate(big_queries())),
]


class Book:
    """What the clients and the probe were answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: collections.Counter[str] = collections.Counter()
        self.bad: list[str] = []
        self.probes: list[float] = []

    def note(self, attack: str, r: httpx.Response | None) -> None:
        with self.lock:
            if r is None:
                self.answers[f"{attack}: gave up"] += 1
                return
            self.answers[f"{attack}: {r.status_code}"] += 1
            budget_spent = r.status_code == 503 and "time budget" in r.text
            if r.status_code >= 500 and not budget_spent:
                self.bad.append(f"{attack}: {r.status_code} {r.text[:300]}")
            if attack in {"giant SCIM filter", "SCIM filter of 999 terms"} and (
                r.status_code != 400 or '"invalidFilter"' not in r.text
            ):
                self.bad.append(f"{attack}: {r.status_code} {r.text[:300]}, not a 400 invalidFilter")
            # The heavy query either finishes within the budget (a quiet machine, PostgreSQL) and the page shows its
            # answer, or the page says the budget was spent; never a page that shows neither.
            finished = '<strong id="try-status">200</strong>' in r.text
            if attack == "explorer try-it" and r.status_code == 200 and not finished and "time budget" not in r.text:
                self.bad.append(f"{attack}: the page shows neither the query's answer nor that the budget was spent")


def _client(n: int, target: Target, stop: threading.Event, book: Book) -> None:
    rnd = random.Random(n)
    clients: dict[float, httpx.Client] = {}  # one keep-alive client for each time-out
    try:
        while not stop.is_set():
            attack = rnd.choice(ATTACKS)
            if attack.timeout not in clients:
                clients[attack.timeout] = httpx.Client(
                    base_url=target.url, timeout=attack.timeout, cookies=target.cookies
                )
            try:
                r: httpx.Response | None = attack.send(clients[attack.timeout], target)
            except httpx.TimeoutException:
                r = None
            book.note(attack.name, r)
    finally:
        for c in clients.values():
            c.close()


def _probe(target: Target, stop: threading.Event, book: Book) -> None:
    with httpx.Client(base_url=target.url, timeout=10) as c:
        while not stop.is_set():
            for path, headers in (("/healthz", {}), ("/api/v1/me", {"X-ApiKey": target.key})):
                started = time.monotonic()
                r = c.get(path, headers=headers)
                took = time.monotonic() - started
                with book.lock:
                    book.probes.append(took)
                    if r.status_code != 200:
                        book.bad.append(f"probe {path}: {r.status_code} {r.text[:200]}")
            time.sleep(0.1)


def _rss(pid: int) -> int:
    """The process's resident memory in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _running_heavy(database_url: str) -> int:
    """PostgreSQL: heavy statements still running (SQLite's run inside the server, stopped with it)."""
    if database_url.startswith("sqlite"):
        return 0
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%no such text%'"
            return int(conn.execute(text(sql + " AND pid <> pg_backend_pid()")).scalar_one())
    finally:
        engine.dispose()


def _attack(target: Target, book: Book, seconds: float) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=_client, args=(n, target, stop, book)) for n in range(CLIENTS)]
    threads.append(threading.Thread(target=_probe, args=(target, stop, book)))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)


def test_hostile_clients_leave_the_server_answering(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "PAYROSTER_QUERY_BUDGET": str(BUDGET),
        "PAYROSTER_RATE_LIMIT_PER_KEY": "100000/second",
        "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "100000/second",
    }
    made = run_cli(env, "workspace", "create", "--name", "Hostile", "--admin-email", "admin@hostile.example",
                   "--admin-password", PASSWORD, "--json")  # fmt: skip
    assert made.code == 0, made.err
    slug, key = made.json()["workspaceSlug"], made.json()["apiKey"]
    with serve(env, tmp_path / "hostile.log") as live, httpx.Client(base_url=live.url, timeout=60) as c:
        r = c.post("/api/v1/users:bulk", json=heavy_rows(200, 25), headers={"X-ApiKey": key})
        assert r.status_code == 200, r.text
        assert http_login(c, "admin@hostile.example", PASSWORD).status_code in (200, 303)
        target = Target(live.url, key, f"/odata/{slug}/", c.cookies)
        _attack(target, Book(), 6)  # warm-up: every connection, thread and cache the attack will use
        time.sleep(BUDGET + 1)
        before = _rss(live.proc.pid)
        book = Book()
        _attack(target, book, SECONDS)
        time.sleep(BUDGET + 1)  # the last queries end within their budget
        after = _rss(live.proc.pid)
        assert _running_heavy(env["PAYROSTER_DATABASE_URL"]) == 0
        assert c.get("/healthz").status_code == 200
    probes = sorted(book.probes)
    p99 = probes[int(len(probes) * 0.99) - 1] if probes else float("inf")
    print(f"\nhostile: {sum(book.answers.values())} attacks in {SECONDS:.0f} s: {dict(sorted(book.answers.items()))}; "
          f"{len(probes)} probes, p99 {p99 * 1000:.0f} ms, max {probes[-1] * 1000:.0f} ms; "
          f"RSS {before} -> {after} KiB")  # fmt: skip
    assert not book.bad, book.bad[:10]
    assert len(probes) >= SECONDS * 2, len(probes)  # the probe ran all along
    assert p99 <= 1.0, p99
    assert any(k.endswith(": 503") for k in book.answers), "no query spent its budget: the attack was not heavy"
    assert after <= before * 1.2, (before, after)
