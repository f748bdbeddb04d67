"""``python -m bench [--quick] [--only SCENARIO ...] [--backend sqlite|postgresql] [--json PATH]``

Every scenario of bench/README.md on SQLite and on PostgreSQL, each figure beside a baseline measured in
the same run (medians of 3 repetitions, min and max shown), with its target and whether it is met. The
figures go to ``var/bench.json`` (outside version control). Nothing here asserts speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from bench import changes as change_bench
from bench import load, openloop, spreadsheets, webpages
from bench.harness import (
    WORKERS,
    AsgiServer,
    Backend,
    Figure,
    Server,
    asgi_server,
    cli_peak_rss,
    machine,
    repeat,
    server_mb,
    setup,
)  # fmt: skip
from bench.timelines import timelines as timeline_pages
from bench.webhooks import webhooks as webhook_latency
from payroster import ids

REPS = 3


@dataclass
class Size:
    """The sizes of one mode."""

    duration: float
    bulk: int
    big: int
    growth: tuple[int, ...]
    scim: int
    scim_large: int  # the SCIM mix again over this many users, beside the first size's
    timelines: tuple[int, int] = (2_000, 20)  # users (three periods each) and teams of the timelines scenario
    changes: int = 5_000  # users among which the change-flow scenario changes 1,000
    # `GET /healthz` beside `GET /me`: a reference, not a target's baseline; three loads of its own per database,
    # which `--quick` leaves out to stay within its two minutes.
    healthz: bool = True
    webhooks: float = 60.0  # seconds of changes at 100 a second, delivered to a webhook receiver
    open_seconds: float = 30.0  # the open-loop upsert load's length, at OPEN_RATE
    # Repetitions of the raw inserts against the minimal schema, each into two fresh databases (three of them
    # migrated on PostgreSQL took 30 s of `--quick`, which runs them once).
    raw_reps: int = REPS
    web_users: int = 5_000  # users in the workspace whose Users page is timed (the web app's issue's size)
    web_requests: int = 30  # requests of each page a repetition


QUICK = Size(
    duration=0.5, bulk=2_000, big=5_000, growth=(1_000, 10_000), scim=200, scim_large=1_000, healthz=False,
    webhooks=5.0, open_seconds=1.0, raw_reps=1, web_requests=5,
)  # fmt: skip
FULL = Size(
    duration=10.0, bulk=100_000, big=1_000_000, growth=(10_000, 100_000, 1_000_000), scim=10_000,
    scim_large=100_000,
    timelines=(1_000_000, 1_000), changes=1_000_000,
)  # fmt: skip


class Table:
    """The printed table and the JSON report."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        print(f"{'scenario':<44}{'db':<11}{'ours':>26}{'baseline':>26}{'ratio':>8}  {'target':<26}met")

    def row(
        self, scenario: str, db: str, ours: Figure, base: Figure | None, ratio: float | None, target: str,
        met: bool | None, fmt: str = ",.0f", **extra: Any,
    ) -> None:  # fmt: skip
        verdict = "—" if met is None else ("yes" if met else "NO")
        ratio_text = f"{ratio:.2f}" if ratio is not None else ""
        base_text = base.text(fmt) if base is not None else ""
        print(f"{scenario:<44}{db:<11}{ours.text(fmt):>26}{base_text:>26}{ratio_text:>8}  {target:<26}{verdict}")
        self.report.setdefault("rows", []).append(
            {
                "scenario": scenario,
                "db": db,
                "ours": ours.json(),
                "baseline": base.json() if base else None,
                "ratio": ratio,
                "target": target,
                "met": met,
                **extra,
            }  # fmt: skip
        )

    def note(self, text: str) -> None:
        print(f"  {text}")
        self.report.setdefault("notes", []).append(text)


class Ahead:
    """Servers later scenarios will need, started beside one a scenario starts anyway.

    A server's start is mostly imports, one core's work: servers started side by side take about half the time
    of starting them one after another on two cores (2.6–3.5 s each here). Each has a fresh database of its own,
    and every server is up (``ready``) before anything is measured, so a start never shares the CPU with a
    measurement; a server then idles, taking no CPU, until its scenario takes it. What a scenario measures is
    the same as on a server it started itself.
    """

    def __init__(self) -> None:
        self.wanted: set[str] = set()  # the scenarios this run will get to
        self.backends: list[Backend] = []
        self.waiting: dict[tuple[str, str], tuple[contextlib.ExitStack, Server]] = {}

    def start(self, scenario: str, backends: list[Backend]) -> None:
        """Servers for ``scenario`` on ``backends``, if the run will get to it; returns without waiting."""
        for backend in backends:
            if scenario not in self.wanted or (scenario, backend.name) in self.waiting:
                continue
            stack = contextlib.ExitStack()
            with stack:
                server = stack.enter_context(Server(stack.enter_context(backend.database()), wait=False))
                self.waiting[scenario, backend.name] = (stack.pop_all(), server)

    def later(self, backend: Backend) -> list[Backend]:
        """The backends the run measures after ``backend``, when it is the first (else none: started already)."""
        return self.backends[1:] if self.backends and backend is self.backends[0] else []

    def ready(self) -> None:
        """Until every server started ahead answers."""
        for _, server in self.waiting.values():
            server.wait()

    @contextlib.contextmanager
    def take(self, scenario: str, backend: Backend) -> Iterator[Server]:
        """The server started ahead for ``scenario`` on ``backend``, else a new one (neither waited for: call
        ``wait``); stopped and its database dropped afterwards."""
        found = self.waiting.pop((scenario, backend.name), None)
        if found is None:
            with backend.database() as env, Server(env, wait=False) as server:
                yield server
            return
        stack, server = found
        with stack:
            yield server

    def close(self) -> None:
        """Stop whatever a scenario did not take (a run cut short)."""
        with contextlib.ExitStack() as all_:  # each closed even if one before it fails
            while self.waiting:
                all_.push(self.waiting.popitem()[1][0])


AHEAD = Ahead()


def user_rows(n: int, start: int = 0, prefix: str = "bulk") -> list[dict[str, Any]]:
    """Import rows: e-mail, names, role, two tags (as the seed articles' CSVs look)."""
    return [
        {"emailAddress": f"{prefix}{i}@bench.example", "role": "Participant", "firstName": f"F{i % 97}",
         "lastName": f"L{(i * 7919) % 1_000_003:07d}", "tags": f"T{i % 10}|All"}
        for i in range(start, start + n)
    ]  # fmt: skip


# -- single upsert --------------------------------------------------------------------------------------------


UPSERT_EXISTING = 2_000  # users the single-upsert load updates


# The load generator's ceiling: the same wrk load against an application that answers from memory.
CEILING_APP = ("bench.ceiling_app:app", "--lifespan", "off")
CEILING_ROW = "  wrk vs an empty app req/s (ceiling_app)"


def upsert(backend: Backend, size: Size, table: Table) -> None:
    # The generator's ceiling is a property of the generator and the machine, not of a database: measured with
    # the first backend's loads (in the same rounds), printed once.
    ceiling = all(r["scenario"] != CEILING_ROW for r in table.report.get("rows", []))
    empty_app = asgi_server(*CEILING_APP, "--workers", str(WORKERS)) if ceiling else contextlib.nullcontext("")
    with AHEAD.take("upsert", backend) as server, empty_app as ceiling_url:
        AHEAD.start("upsert", AHEAD.later(backend))  # beside this one and the empty application
        server.wait()
        AHEAD.ready()
        # The users the updates change, created before the clock starts.
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=600) as client:
            client.post(
                "/api/v1/users:bulk", content=json.dumps(user_rows(UPSERT_EXISTING, 0, "seeded"))
            ).raise_for_status()
        mix = {"existing": UPSERT_EXISTING, "seeded": "seeded"}
        generator, health, me, ups = Figure(), Figure(), Figure(), Figure()
        p99, p50 = Figure(), Figure()
        for rep in range(REPS):
            if ceiling:
                generator.values.append(load.run(ceiling_url, size.duration, "healthz")["rps"])
            if size.healthz:
                health.values.append(load.run(server.url, size.duration, "healthz")["rps"])
            me.values.append(load.run(server.url, size.duration, "me", headers=server.headers)["rps"])
            got = load.run(server.url, size.duration, "upsert", {**mix, "prefix": f"r{rep}u"}, server.headers)
            if got["errors"]:
                raise RuntimeError(f"{got['errors']:,} of {got['requests']:,} upserts failed")
            ups.values.append(got["rps"])
            p99.values.append(got["p99_ms"])
            p50.values.append(got["p50_ms"])
    ratio = ups.median / me.median
    table.row("single upsert req/s vs GET /me", backend.name, ups, me, ratio, ">= 0.60 of baseline", ratio >= 0.6)
    # The closed loop's latency is printed as it is: 16 connections that wait for each answer measure the queue
    # they make themselves; the latency target is the open loop's (``upsert_open``).
    table.row("  upsert p99 ms, closed loop (p50 " + p50.text(".0f") + ")", backend.name, p99, None, None, "", None,
              ".1f")  # fmt: skip
    if size.healthz:
        table.row("  GET /healthz req/s (no key; a SELECT 1)", backend.name, health, None, None, "", None)
    if ceiling:
        table.row(CEILING_ROW, "any", generator, None, None, "", None)


# -- request overhead -----------------------------------------------------------------------------------------


def overhead(backend: Backend, size: Size, table: Table) -> None:
    """``GET /api/v1/me`` against a trivial endpoint of the same application in the same server processes
    (``bench/overhead_app.py``): what the key check and the answer cost over the stack itself."""
    with backend.database() as env:
        made = json.loads(setup(env, "workspace", "create", "--name", "Bench", "--admin-email", "b@x.com", "--json"))
        with Server(env, made["apiKey"], made["workspaceSlug"], command=("bench.overhead_app",)) as server:
            trivial, me = Figure(), Figure()
            for _ in range(REPS):  # alternating, so both see the same minutes
                trivial.values.append(load.run(server.url, size.duration, "trivial")["rps"])
                me.values.append(load.run(server.url, size.duration, "me", headers=server.headers)["rps"])
    ratio = me.median / trivial.median
    table.row("GET /me req/s vs a trivial endpoint", backend.name, me, trivial, ratio, ">= 0.60 of baseline",
              ratio >= 0.6)  # fmt: skip


# -- upsert latency, open loop --------------------------------------------------------------------------------

OPEN_RATE = 200.0  # arrivals per second: 8 x the rate Entra ID asks of a provisioning target


def upsert_open(backend: Backend, size: Size, table: Table) -> None:
    """Single upserts (the upsert scenario's mix) arriving at ``OPEN_RATE`` per second whatever the answers,
    latency from each request's due time (``bench/openloop.py``); absolute, no baseline."""
    with AHEAD.take("upsert_open", backend) as server:
        server.wait()
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=600) as client:
            client.post(
                "/api/v1/users:bulk", content=json.dumps(user_rows(UPSERT_EXISTING, 0, "seeded"))
            ).raise_for_status()
        p99, p50, achieved, late = Figure(), Figure(), Figure(), Figure()
        spread: list[str] = []
        for rep in range(REPS):
            mix = {"existing": UPSERT_EXISTING, "seeded": "seeded", "prefix": f"o{rep}u"}
            got = openloop.run(server.url, OPEN_RATE, size.open_seconds, "upsert", mix, server.headers)
            if got["errors"]:
                table.note(f"open-loop upserts ({backend.name}): {got['errors']:,} of {got['requests']:,} failed"
                           f" {got['failures']}; their latencies are left out")  # fmt: skip
            p99.values.append(got["p99_ms"])
            p50.values.append(got["p50_ms"])
            achieved.values.append(got["achieved_rps"])
            late.values.append(got["send_lag_p99_ms"])
            spread.append(f"{got['per_second_min']}–{got['per_second_max']}")
    name = f"upsert p99 ms, open loop {OPEN_RATE:.0f}/s for {size.open_seconds:g} s (p50 {p50.text('.1f')})"
    table.row(name, backend.name, p99, None, None, "<= 25 ms", p99.median <= 25, ".1f")
    table.row(f"  generator: achieved arrivals/s (per-second counts {', '.join(spread)})", backend.name, achieved,
              None, None, f"= {OPEN_RATE:.0f}", None, ".1f")  # fmt: skip
    table.row("  generator: p99 ms a request left after its due time", backend.name, late, None, None, "", None, ".2f")


# -- bulk -----------------------------------------------------------------------------------------------------

RAW_USERS = (
    "INSERT INTO users (workspace_id, id, email, email_key, role, active, first_name, last_name, created_at,"
    " updated_at, scim_hidden) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
RAW_TAGS = "INSERT INTO user_tags (workspace_id, user_id, value_key, value, position) VALUES (?,?,?,?,?)"
RAW_EVENTS = (
    "INSERT INTO audit_events (workspace_id, id, occurred_at, actor_user_id, actor_kind, channel, action,"
    " target_type, target_id, changes) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


# The minimal schema the raw inserts are also made into: the same three tables with only the columns the raw
# inserts write, each column of PayRoster's own type, and their primary keys (time-ordered ids, so every insert
# appends); no unique constraint, secondary index or foreign key. What PayRoster's schema costs beyond it is
# printed as a ratio (target <= 1.3 x): a heavy schema must not hide behind a baseline made of itself.
MINIMAL_KEYS = {"users": ("workspace_id", "id"), "user_tags": ("workspace_id", "user_id", "value_key"),
                "audit_events": ("workspace_id", "id")}  # fmt: skip
MINIMAL_WORKSPACE = uuid.UUID(int=1)


def minimal_schema(env: dict[str, str]) -> None:
    """The minimal schema's three tables, created in the empty database of ``env``."""
    from payroster.db import models

    inserted = {"users": RAW_USERS, "user_tags": RAW_TAGS, "audit_events": RAW_EVENTS}
    meta = sqlalchemy.MetaData()
    for name, statement in inserted.items():
        source = models.Base.metadata.tables[name]
        columns = statement.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(",")
        sqlalchemy.Table(
            name, meta, *(sqlalchemy.Column(c, source.c[c].type, nullable=source.c[c].nullable) for c in columns),
            sqlalchemy.PrimaryKeyConstraint(*MINIMAL_KEYS[name]),
        )  # fmt: skip
    engine = sqlalchemy.create_engine(env["PAYROSTER_DATABASE_URL"])
    try:
        meta.create_all(engine)
    finally:
        engine.dispose()


def raw_import(backend: Backend, env: dict[str, str], rows: list[dict[str, Any]], minimal: bool = False) -> float:
    """The same rows into users, user_tags and audit_events with the driver's executemany: rows/s. ``minimal``:
    into the tables of :func:`minimal_schema` (no workspaces table: a fixed workspace id)."""
    conn = backend.connect(env)
    ws = backend.uid(MINIMAL_WORKSPACE) if minimal else conn.execute("SELECT id FROM workspaces").fetchone()[0]
    now = dt.datetime(2026, 1, 1)
    stamp = now.isoformat(" ") if backend.is_sqlite else now
    true = 1 if backend.is_sqlite else True
    false = 0 if backend.is_sqlite else False
    started = time.perf_counter()
    users, tags, events = [], [], []
    for r in rows:
        uid = backend.uid(ids.new_id())
        email = r["emailAddress"]
        users.append(
            (ws, uid, email, email.casefold(), "Participant", true, r["firstName"], r["lastName"], stamp, stamp, false)
        )
        for pos, tag in enumerate(r["tags"].split("|")):
            tags.append((ws, uid, tag.casefold(), tag, pos))
        changes = json.dumps([{"field": "emailAddress", "before": None, "after": email}])
        events.append(
            (ws, backend.uid(ids.new_id()), stamp, None, "cli", "import", "user.created", "user", uid, changes)
        )
    with conn:
        cur = conn.cursor()
        cur.executemany(backend.sql(RAW_USERS), users)
        cur.executemany(backend.sql(RAW_TAGS), tags)
        cur.executemany(backend.sql(RAW_EVENTS), events)
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def bulk(backend: Backend, size: Size, table: Table) -> None:
    """One ``users:bulk`` request of new users per repetition, beside the raw import of the same rows."""
    with AHEAD.take("bulk", backend) as server:
        AHEAD.start("bulk", AHEAD.later(backend))  # beside this one, with the next scenario's
        AHEAD.start("import", AHEAD.backends)
        server.wait()
        AHEAD.ready()

        def ours(rep: int) -> float:
            body = json.dumps(user_rows(size.bulk, prefix=f"o{rep}-"))
            started = time.perf_counter()
            r = httpx.post(server.url + "/api/v1/users:bulk", content=body, headers=server.headers, timeout=3600)
            elapsed = time.perf_counter() - started
            r.raise_for_status()
            return size.bulk / elapsed

        mine = repeat(REPS, ours)
    with backend.database() as env:
        setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        theirs = repeat(REPS, lambda rep: raw_import(backend, env, user_rows(size.bulk, prefix=f"w{rep}-")))
    ratio = mine.median / theirs.median
    table.row(
        f"bulk rows/s, 1 request of {size.bulk:,}", backend.name, mine, theirs, ratio, ">= 0.50 of raw", ratio >= 0.5
    )


def big_import(backend: Backend, size: Size, table: Table) -> None:
    """``size.big`` rows as 10 ``users:bulk`` requests, and through ``payroster import users``: seconds."""
    per = size.big // 10
    command_rss: list[float] = []  # the command's peak resident memory, each repetition

    def requests(server: Server, rep: int) -> float:
        # The bodies are encoded before the clock starts: the client's JSON encoding is not PayRoster's work.
        bodies = [json.dumps(user_rows(per, k * per, prefix=f"r{rep}-")) for k in range(10)]
        with httpx.Client(timeout=3600) as client:
            started = time.perf_counter()
            for body in bodies:
                client.post(server.url + "/api/v1/users:bulk", content=body, headers=server.headers).raise_for_status()
            return time.perf_counter() - started

    def command(env: dict[str, str], slug: str, rep: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "users.csv"
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(user_rows(1)[0]))
                writer.writeheader()
                for k in range(10):
                    writer.writerows(user_rows(per, k * per, prefix=f"c{rep}-"))
            started = time.perf_counter()
            args = ("import", "users", "--workspace", slug, str(path))
            peak = cli_peak_rss(env, *args)
            seconds = time.perf_counter() - started
            command_rss.append(peak)
            return seconds

    full = size.big == FULL.big
    for label, fn in ((f"{size.big:,} rows as 10 users:bulk requests, s", requests),
                      (f"{size.big:,} rows by payroster import users, s", command)):  # fmt: skip
        if fn is command:  # no server: the command writes to the database itself
            with backend.database() as env:  # each repetition adds new users
                made = setup(env, "workspace", "create", "--name", "Bench", "--admin-email", "b@x.com", "--json")
                slug = json.loads(made)["workspaceSlug"]
                seconds = repeat(REPS, lambda rep, env=env, slug=slug: command(env, slug, rep))
        else:
            with AHEAD.take("import", backend) as server:  # a fresh database; each repetition adds new users
                server.wait()
                seconds = repeat(REPS, lambda rep, server=server: requests(server, rep))
        target = "<= 30 s (SQLite, 1M)" if backend.is_sqlite else "(SQLite target only)"
        met = (seconds.median <= 30) if (full and backend.is_sqlite) else None
        table.row(label, backend.name, seconds, None, None, target, met, ".1f", rows_per_s=size.big / seconds.median)
        if fn is command:
            table.row("  the command's peak RSS MiB", backend.name, Figure(command_rss), None, None, "", None, ".0f")
    raw_baselines(backend, size, table)


RAW_TRANSACTION = 100_000  # rows a transaction of the import scenarios' raw baselines


def raw_seconds(backend: Backend, env: dict[str, str], n: int, prefix: str, minimal: bool = False) -> float:
    """Seconds of the raw inserts of ``n`` rows (:func:`raw_import`, ``RAW_TRANSACTION`` to a transaction)
    into the database of ``env``."""
    spent = 0.0
    for start in range(0, n, RAW_TRANSACTION):
        chunk = min(RAW_TRANSACTION, n - start)
        spent += chunk / raw_import(backend, env, user_rows(chunk, start, prefix), minimal)
    return spent


def _raw_seconds(backend: Backend, n: int, minimal: bool, rep: int) -> float:
    """Seconds of the raw inserts of ``n`` rows (the import scenarios' raw baseline) into a fresh database of
    PayRoster's schema or of the minimal one."""
    with backend.database(migrate=not minimal) as env:
        if minimal:
            minimal_schema(env)
        else:
            setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        return raw_seconds(backend, env, n, f"m{rep}-", minimal)


def raw_baselines(backend: Backend, size: Size, table: Table) -> None:
    """The raw baseline of the 1,000,000-row import beside the same inserts into a minimal schema (users, tags,
    audit; primary keys only): each repetition a fresh database of each, alternating which goes first."""
    ours, minimal = Figure(), Figure()
    for rep in range(size.raw_reps):
        for is_minimal in (False, True) if rep % 2 == 0 else (True, False):
            (minimal if is_minimal else ours).values.append(_raw_seconds(backend, size.big, is_minimal, rep))
    ratio = ours.median / minimal.median
    table.row(f"raw inserts of {size.big:,} rows vs minimal schema, s", backend.name, ours, minimal, ratio,
              "<= 1.30x minimal schema", ratio <= 1.3, ".1f")  # fmt: skip


# -- growth and OData -----------------------------------------------------------------------------------------

FIRST_PAGE = {"$filter": "tags/any(t: t eq 'T3')", "$orderby": "lastName,id", "$top": "100",
              "$select": "id,emailAddress,lastName"}  # fmt: skip
FIRST_PAGE_SQL = (
    "SELECT u.id, u.email, u.last_name FROM users u WHERE u.workspace_id = ? AND EXISTS (SELECT 1 FROM user_tags t"
    " WHERE t.workspace_id = u.workspace_id AND t.user_id = u.id AND t.value = 'T3')"
    " ORDER BY u.last_name NULLS FIRST, u.id LIMIT 100"  # OData's order: nulls first ascending
)
AT_DAY = "2026-02-28"  # the growth scenario's page on a day (OData's Temporal $at): the users' managers then
EXPORT_SQL = (
    "SELECT id, email, role, active, first_name, last_name, direct_manager_id, created_at, updated_at"
    " FROM users WHERE workspace_id = ? ORDER BY id"
)


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """The cyclic collector off while a baseline runs in this process: the export's client runs with it off
    (``bench/export_client.py``), and so does the raw export it is compared with."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _median_ms(fn: Any, times: int = 21) -> float:
    fn()
    spent = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent) * 1000


def _one_upsert_ms(client: httpx.Client, n: int, rep: int) -> float:
    """Median of 40 sequential upserts: half updates of existing users, half creates."""
    spent = []
    for i in range(40):
        email = f"p{(i * 7919) % n}@bench.example" if i % 2 else f"g{n}-{rep}-{i}@bench.example"
        t0 = time.perf_counter()
        client.post("/api/v1/users", json={"emailAddress": email, "role": "Participant",
                                           "tags": [f"G{rep}"]}).raise_for_status()  # fmt: skip
        spent.append(time.perf_counter() - t0)
    return statistics.median(spent) * 1000


def growth_and_odata(backend: Backend, size: Size, table: Table) -> None:
    """Each size is a database of its own, seeded and settled first; then the sizes are measured in turns
    (the order reversed every round), so the machine's drift over the run falls on every size alike."""
    with contextlib.ExitStack() as stack:
        sized: dict[int, tuple[dict[str, str], Server, httpx.Client]] = {}
        servers = {n: stack.enter_context(Server(stack.enter_context(backend.database()), wait=False))
                   for n in size.growth}  # fmt: skip
        largest = servers[size.growth[-1]]
        # The export's server is a process of its own (its peak memory is the export's), started now beside the
        # others on the largest database; it idles until the export.
        exporter = stack.enter_context(Server(largest.env, key=largest.key, slug=largest.slug, wait=False))
        for n, server in servers.items():
            server.wait()
            env = server.env
            client = stack.enter_context(httpx.Client(base_url=server.url, headers=server.headers, timeout=3600))
            for seeded in range(0, n, 100_000):
                chunk = min(100_000, n - seeded)
                client.post("/api/v1/users:bulk", content=json.dumps(user_rows(chunk, seeded, "p"))).raise_for_status()
            backend.settle(env)  # measured as a settled database, not in the seeding's wake
            sized[n] = (env, server, client)
        exporter.wait()  # up before anything is measured
        latency = {n: Figure() for n in size.growth}
        page = {n: Figure() for n in size.growth}
        dated = {n: Figure() for n in size.growth}  # the same page as it stood on a day (time travel's $at)
        for rep in range(REPS):
            for n in size.growth if rep % 2 == 0 else size.growth[::-1]:
                _, server, client = sized[n]
                latency[n].values.append(_one_upsert_ms(client, n, rep))
                for fig, params in ((page, FIRST_PAGE), (dated, FIRST_PAGE | {"$at": AT_DAY})):
                    fig[n].values.append(
                        _median_ms(
                            lambda: client.get(f"/odata/{server.slug}/Users", params=params).raise_for_status()  # noqa: B023 - called now
                        )
                    )
        small, big = size.growth[0], size.growth[-1]
        figures = (("single-upsert latency ms", latency), ("OData first page ms", page),
                   (f"OData first page ms, $at={AT_DAY}", dated))  # fmt: skip
        for label, fig in figures:
            ratio = fig[big].median / fig[small].median
            for n in size.growth:
                if n == small:
                    continue
                r = fig[n].median / fig[small].median
                table.row(f"growth: {label} at {n:,}", backend.name, fig[n], fig[small], r,
                          f"<= 1.5x itself at {small:,}", r <= 1.5, ".1f")  # fmt: skip
            table.report.setdefault("growth", {}).setdefault(backend.name, {})[label] = {
                str(n): fig[n].json() for n in size.growth
            } | {"ratio": ratio}
        env, server, _ = sized[big]
        key, slug = server.key, server.slug
        for n in size.growth:  # the export's server is a fresh process; the other databases are done with
            sized[n][1].stop()
        conn = backend.connect(env)
        stack.callback(conn.close)  # before its database is dropped, whatever happens below (closing twice is a no-op)
        ws = conn.execute("SELECT id FROM workspaces").fetchone()[0]
        raw_page = repeat(
            REPS, lambda rep: _median_ms(lambda: conn.execute(backend.sql(FIRST_PAGE_SQL), (ws,)).fetchall())
        )
        target = 2 * raw_page.median + 5
        ours = page[big]
        table.row(f"OData first page ms, {big:,} users", backend.name, ours, raw_page, ours.median / raw_page.median,
                  f"<= 2x raw + 5 = {target:.1f} ms", ours.median <= target, ".1f")  # fmt: skip

        def raw_export(rep: int) -> float:
            started = time.perf_counter()
            count = 0
            cur = conn.cursor(name=f"export{rep}") if not backend.is_sqlite else conn.cursor()
            cur.execute(backend.sql(EXPORT_SQL), (ws,))
            while batch := cur.fetchmany(1000):
                count += len(batch)
            cur.close()
            for side in ("user_tags", "user_aliases"):
                c2 = conn.cursor(name=f"{side}{rep}") if not backend.is_sqlite else conn.cursor()
                c2.execute(
                    backend.sql(f"SELECT user_id, value FROM {side} WHERE workspace_id = ? ORDER BY user_id"), (ws,)
                )
                while c2.fetchmany(1000):
                    pass
                c2.close()
            if not backend.is_sqlite:
                conn.rollback()
            return count / (time.perf_counter() - started)

        with quiet_collector():
            raw_rate = repeat(REPS, raw_export)
        conn.close()
        server = exporter
        parse_rate = Figure()
        try:

            def export(rep: int) -> float:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.export_client", f"{server.url}/odata/{slug}/Users", key],
                    capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
                )  # fmt: skip
                got = json.loads(done.stdout)
                parse_rate.values.append(got["rows"] / got["parse_seconds"])
                return float(got["rows"] / got["seconds"])

            rate = repeat(REPS, export)
            peak = server_mb(server, "VmHWM")
        finally:
            server.stop()
        ratio = rate.median / raw_rate.median
        table.row(
            f"OData export rows/s, {big:,} users", backend.name, rate, raw_rate, ratio, ">= 0.30 of raw", ratio >= 0.3
        )
        table.row("  export client's own parse, rows/s", backend.name, parse_rate, None, None, "", None)
        table.row(
            "  server peak RSS MiB during export",
            backend.name,
            Figure([peak]),
            None,
            None,
            "<= 300 MiB",
            peak <= 300,
            ".0f",
        )


# -- SCIM -----------------------------------------------------------------------------------------------------


async def _seed_scim(url: str, headers: dict[str, str], names: list[str]) -> list[str]:
    out: list[str] = []
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120, headers=headers) as client:
        for start in range(0, len(names), 128):
            answers = await asyncio.gather(
                *(client.post("/Users", json=load.scim_user(n)) for n in names[start : start + 128])
            )
            for r in answers:
                r.raise_for_status()
                out.append(r.json()["id"])
    return out


def _scim_mix(
    root: str, seconds: float, names: list[str], ids_: list[str], tag: str, headers: dict[str, str] | None = None,
    who: str = "",
) -> tuple[Figure, Figure, list[str]]:  # fmt: skip
    """The Entra-like mix over ``names`` (their ids for the PATCHes), REPS loads: req/s, p95 ms, failures.

    One lookup first, untimed: a server that has run a while has made what its first lookup makes (the peer
    indexes every user's userName on its first ``userName eq`` search: its whole first load at 100,000 users on
    2026-12-06, 0 requests answered in 10 s)."""
    warm = httpx.get(f"{root}/Users", params={"filter": f'userName eq "{names[0]}"'}, headers=headers, timeout=3600)
    warm.raise_for_status()
    rate, p95, failed = Figure(), Figure(), []
    for rep in range(REPS):
        got = load.run(root, seconds, "scim_mix", {"names": names, "ids": ids_, "tag": f"{tag}{rep}"}, headers)
        rate.values.append(got["rps"])
        p95.values.append(got["p95_ms"])
        if got["errors"]:
            failed.append(f"SCIM mix on {who}: {got['errors']:,} of {got['requests']:,} failed")
    return rate, p95, failed


SCIM_PEER_START = 1_800  # seconds a peer may take to hold its seeded users before it answers


def _scim_names(n: int) -> list[str]:
    return [f"u{i}@bench.example" for i in range(n)]


def scim(backend: Backend, size: Size, table: Table) -> None:
    """The Entra-like mix at ``size.scim`` and ``size.scim_large`` users, PayRoster against scim2-server.

    PayRoster's smaller workspace is filled by SCIM creates, as an identity provider fills it; the larger one by
    ``users:bulk`` (users that existed before the identity provider was connected: its lookups find them by
    e-mail, as its first sync does). Each peer holds its users before it answers (``bench/peer_scim.py``: its own
    creation path without HTTP). Every server and peer is started, seeded and settled before anything is measured;
    each waits idle while another is measured."""
    sizes = (size.scim, size.scim_large)
    rates: dict[int, tuple[Figure, Figure, Figure, Figure]] = {}
    with contextlib.ExitStack() as stack:
        seeds = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="payroster-scim-")))
        started = time.monotonic()
        peers = {}
        for n in sizes:
            (seeds / str(n)).write_text("\n".join(_scim_names(n)) + "\n")
            peers[n] = stack.enter_context(
                AsgiServer("bench.peer_scim:app", ready="/v2/ServiceProviderConfig",
                           env={"BENCH_PEER_SEED": str(seeds / str(n))})
            )  # fmt: skip
        server = stack.enter_context(AHEAD.take("scim", backend))
        large = stack.enter_context(Server(stack.enter_context(backend.database()), wait=False))
        AHEAD.start("scim", AHEAD.later(backend))
        server.wait()
        large.wait()
        AHEAD.ready()
        roots, tokens, ids_ = {}, {}, {}
        for n, srv in ((size.scim, server), (size.scim_large, large)):
            token = json.loads(setup(srv.env, "scim-token", "create", "--workspace", srv.slug, "--json"))["token"]
            tokens[n] = {"Authorization": "Bearer " + token}
            roots[n] = f"{srv.url}/scim/v2/{srv.slug}"
        names = {n: _scim_names(n) for n in sizes}
        seeding = time.monotonic()
        ids_[size.scim] = asyncio.run(_seed_scim(roots[size.scim], tokens[size.scim], names[size.scim]))
        spent = {"PayRoster's SCIM creates": time.monotonic() - seeding}
        seeding = time.monotonic()
        ids_[size.scim_large] = []
        with httpx.Client(base_url=large.url, headers=large.headers, timeout=3600) as client:
            for start in range(0, size.scim_large, 100_000):
                rows = [
                    {"emailAddress": name, "role": "Participant", "firstName": "Bench", "lastName": name.split("@")[0]}
                    for name in names[size.scim_large][start : start + 100_000]
                ]
                made = client.post("/api/v1/users:bulk", content=json.dumps(rows))
                made.raise_for_status()
                ids_[size.scim_large] += [u["id"] for u in made.json()["users"]]
        spent["PayRoster's users:bulk"] = time.monotonic() - seeding
        for srv in (server, large):
            backend.settle(srv.env)  # measured as settled databases, not in the seeding's wake
        peer_ids = {}
        for n, peer in peers.items():
            peer.wait(SCIM_PEER_START)
            peer_ids[n] = (seeds / f"{n}.ids").read_text().split()
        spent["the peers ready (from their start)"] = time.monotonic() - started
        table.note(f"SCIM seeding ({backend.name}, {size.scim:,} and {size.scim_large:,} users): "
                   + ", ".join(f"{k} {v:.0f} s" for k, v in spent.items()))  # fmt: skip
        for n in sizes:
            ours, ours_p95, failed = _scim_mix(roots[n], size.duration, names[n], ids_[n], "p", tokens[n], "PayRoster")
            theirs, theirs_p95, failed_peer = _scim_mix(f"{peers[n].url}/v2", size.duration, names[n], peer_ids[n], "s",
                                                        who="scim2-server")  # fmt: skip
            for text in failed + failed_peer:
                table.note(f"{text} ({backend.name}, {n:,} users)")
            rates[n] = (ours, theirs, ours_p95, theirs_p95)
    ratios = {n: rates[n][0].median / rates[n][1].median for n in sizes}
    for n in sizes:
        ours, theirs, ours_p95, theirs_p95 = rates[n]
        small = n == size.scim
        table.row(f"SCIM Entra mix req/s, {n:,} users", backend.name, ours, theirs, ratios[n],
                  ">= 1.50x scim2-server" if small else f"(printed; {size.scim:,}'s target)",
                  ratios[n] >= 1.5 if small else None)  # fmt: skip
        table.row(f"  SCIM p95 ms, {n:,} users", backend.name, ours_p95, theirs_p95, None, "<= 50 ms",
                  ours_p95.median <= 50 if small else None, ".1f")  # fmt: skip
    table.note(
        f"SCIM ({backend.name}): PayRoster / scim2-server {ratios[size.scim]:.2f} at {size.scim:,} users,"
        f" {ratios[size.scim_large]:.2f} at {size.scim_large:,}"
    )
    table.report.setdefault("scim_ratios", {})[backend.name] = {str(n): r for n, r in ratios.items()}


def timelines(backend: Backend, size: Size, table: Table) -> None:
    """The feed's $at and $from/$to first pages over the periods of many users (bench/timelines.py)."""
    timeline_pages(backend, *size.timelines, table, user_rows)


def exports(backend: Backend, size: Size, table: Table) -> None:
    """Users exported as CSV and XLSX (bench/spreadsheets.py), at the import scenario's size."""
    spreadsheets.exports(backend, size.big, REPS, table, user_rows)


def webhooks(backend: Backend, size: Size, table: Table) -> None:
    """Commit to verified webhook delivery at 100 changes a second (bench/webhooks.py)."""
    webhook_latency(backend, size.webhooks, table)


def change_flow(backend: Backend, size: Size, table: Table) -> None:
    """The OData delta of 1,000 changes and the change feed's read rate (bench/changes.py)."""
    change_bench.changes(backend, size.changes, table, user_rows)


def imports(backend: Backend, size: Size, table: Table) -> None:
    """``payroster import users`` at the import scenario's size and five times it (bench/spreadsheets.py)."""
    spreadsheets.imports(backend, size.big, table, user_rows, raw_import)


def web_pages(backend: Backend, size: Size, table: Table) -> None:
    """The web app's Users page at 5,000 users, timed by the server itself (bench/webpages.py)."""
    webpages.users_page(backend, size.web_users, size.web_requests, table, user_rows)


SCENARIOS = {
    "overhead": overhead,
    "upsert": upsert,
    "upsert_open": upsert_open,
    "bulk": bulk,
    "import": big_import,
    "growth": growth_and_odata,
    "scim": scim,
    "exports": exports,
    "imports": imports,
    "timelines": timelines,
    "webhooks": webhooks,
    "changes": change_flow,
    "web": web_pages,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario at a small size (CI)")
    parser.add_argument("--json", default="var/bench.json", help="where to write the figures")
    parser.add_argument("--only", choices=list(SCENARIOS), action="append", help="run only these (repeatable)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append", help="default: both")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    backends = [Backend(b) for b in dict.fromkeys(args.backend or ["sqlite", "postgresql"])]  # each once
    missing = [b.name for b in backends if not b.available()]
    backends = [b for b in backends if b.name not in missing]
    report: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "mode": "quick" if args.quick else "full", "machine": machine(backends)}  # fmt: skip
    print("machine:", json.dumps(report["machine"]))
    print(f"mode: {report['mode']}; {REPS} repetitions per figure unless n=1 is shown; load generator: "
          f"wrk ({load.THREADS} threads, 16 keep-alive connections), requests rendered before the clock")  # fmt: skip
    for name in missing:
        print(f"skipped: {name} (not reachable)")
    table = Table(report)
    started = time.monotonic()
    scenarios = args.only or list(SCENARIOS)
    AHEAD.backends = backends
    try:
        for i, scenario in enumerate(scenarios):
            AHEAD.wanted = set(scenarios[i:])  # what the run will still get to
            for backend in backends:
                t0 = time.monotonic()
                SCENARIOS[scenario](backend, size, table)
                report.setdefault("seconds", {})[f"{scenario}/{backend.name}"] = round(time.monotonic() - t0, 1)
    finally:
        AHEAD.close()
    report["total_seconds"] = round(time.monotonic() - started, 1)
    print(f"total {report['total_seconds']:.0f} s")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
