"""What every scenario needs: fresh databases of either kind, a real ``payroster serve``, raw driver
connections for the baselines, repetitions, and the machine's description."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from bench.peak_rss import status_kib, tree_kib
from payroster.app import COLLECTOR_THRESHOLD, SWITCH_INTERVAL
from payroster.config import Settings
from payroster.db.engine import SQLITE_CACHE_KIB, SQLITE_PRAGMAS

ROOT = Path(__file__).resolve().parent.parent  # the checkout: bench/ is importable from here

PG_URL = os.environ.get("PAYROSTER_BENCH_PG_URL") or os.environ.get(
    "PAYROSTER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# The server's processes and handler threads: the product's defaults unless these variables say otherwise.
PG_SETTINGS = ("autovacuum", "shared_buffers", "synchronous_commit")
# The product's default processes: PAYROSTER_WORKERS, else the CPU count (``payroster serve``).
WORKERS = int(os.environ.get("PAYROSTER_BENCH_WORKERS") or Settings().workers)
THREADS = int(os.environ.get("PAYROSTER_BENCH_THREADS", Settings.model_fields["threads"].default))
LIFTED = {
    "PAYROSTER_RATE_LIMIT_PER_KEY": "1000000/second",
    "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "1000000/second",
    "PAYROSTER_THREADS": str(THREADS),
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_peak_rss(env: dict[str, str], *args: str) -> float:
    """Run ``payroster ARGS`` in a process of its own (what a measurement times); that process's own peak
    resident memory in MiB (``bench/peak_rss.py`` says why it is read there)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peak"
        done = subprocess.run(
            [sys.executable, "-m", "bench.peak_rss", str(out), "payroster", *args],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"payroster {' '.join(args)} failed: {done.stderr[-2000:]}")
        return int(out.read_text()) / 1024


def setup(env: dict[str, str], *args: str) -> str:
    """Run ``payroster ARGS`` in this process, for preparations nobody times (migrations, workspaces,
    tokens): the same command without a Python start-up each, which was a third of the quick run."""
    from click.testing import CliRunner

    from payroster.cli import main

    payroster_env = {k: v for k, v in env.items() if k.startswith("PAYROSTER_")}
    cleared = {k: None for k in os.environ if k.startswith("PAYROSTER_") and k not in payroster_env}
    result = CliRunner().invoke(main, list(args), env={**cleared, **payroster_env}, catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"payroster {' '.join(args)} failed: {result.output[-2000:]}")
    return result.stdout


@dataclass
class Figure:
    """Repeated measurements: the median is reported, with min and max."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def text(self, fmt: str = ",.0f") -> str:
        if not self.values:
            return "—"
        if len(self.values) == 1:
            return f"{self.values[0]:{fmt}} (n=1)"
        return f"{self.median:{fmt}} [{min(self.values):{fmt}}–{max(self.values):{fmt}}]"

    def json(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.values), "max": max(self.values), "values": self.values}


def repeat(n: int, fn: Callable[[int], float]) -> Figure:
    """``fn(rep)`` ``n`` times."""
    return Figure([fn(rep) for rep in range(n)])


class Backend:
    """SQLite files or PostgreSQL schemas, fresh for each measurement."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    def available(self) -> bool:
        if self.is_sqlite:
            return True
        try:
            engine = create_engine(PG_URL)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return True
        except Exception:  # noqa: BLE001 - any failure means there is no PostgreSQL to measure
            return False

    def version(self) -> str:
        if self.is_sqlite:
            return sqlite3.sqlite_version
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar_one())
            # The server's own settings that move the figures: this machine's runs with autovacuum off and the
            # default 128 MB of shared buffers.
            shown = {name: conn.execute(text(f"SHOW {name}")).scalar_one() for name in PG_SETTINGS}
        engine.dispose()
        return f"{version} ({', '.join(f'{k} {v}' for k, v in shown.items())})"

    def settle(self, env: dict[str, str]) -> None:
        """What a server does on its own after a large load, done now: on PostgreSQL ``VACUUM (ANALYZE)`` of the
        written tables (the visibility map and hint bits autovacuum would set; the machine's server has
        autovacuum off) and a ``CHECKPOINT`` (the load's dirty pages written now, not during the next
        measurement); on SQLite a WAL checkpoint."""
        conn = self.connect(env)
        try:
            if self.is_sqlite:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    print("bench: SQLite's WAL checkpoint was blocked; measuring without it", file=sys.stderr)
                return
            import psycopg

            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) users, user_tags, user_aliases, audit_events")
            # A role without pg_checkpoint leaves it to the server's own timer.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute("CHECKPOINT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def database(self, migrate: bool = True) -> Iterator[dict[str, str]]:
        """A migrated, empty database (``migrate=False``: with no tables at all); the environment of a PayRoster
        process on it."""
        with tempfile.TemporaryDirectory(prefix="payroster-bench-") as tmp:
            base = {k: v for k, v in os.environ.items() if not k.startswith("PAYROSTER_")}
            if self.is_sqlite:
                env = {**base, **LIFTED, "PAYROSTER_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}"}
                if migrate:
                    setup(env, "db", "upgrade")
                yield env
                return
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in PG_URL else "?"
            env = {
                **base, **LIFTED, "PAYROSTER_SECRET_KEY": "bench-secret",
                "PAYROSTER_DATABASE_URL": f"{PG_URL}{sep}options=-csearch_path%3D{schema}",
            }  # fmt: skip
            try:
                if migrate:
                    setup(env, "db", "upgrade")
                yield env
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

    def connect(self, env: dict[str, str]) -> Any:
        """A raw driver connection (sqlite3 or psycopg), for the baselines."""
        url = env["PAYROSTER_DATABASE_URL"]
        if self.is_sqlite:
            # With the settings PayRoster's own connections get; the driver's own transactions are kept
            # (``executemany`` in one transaction, as the baseline should).
            conn = sqlite3.connect(url.split(":///", 1)[1])
            for pragma in SQLITE_PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            return conn
        import psycopg

        parsed = make_url(url)
        options = parsed.query.get("options")
        return psycopg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database,
            password=parsed.password, options=options if isinstance(options, str) else None,
        )  # fmt: skip

    def sql(self, statement: str) -> str:
        """Placeholders for this driver."""
        return statement if self.is_sqlite else statement.replace("?", "%s")

    def uid(self, value: uuid.UUID) -> Any:
        """A UUID as this database stores it through SQLAlchemy's Uuid type."""
        return value.hex if self.is_sqlite else value


class Server:
    """A real ``payroster serve`` (``WORKERS`` processes) on a database, with a workspace and its admin's key."""

    def __init__(
        self, env: dict[str, str], key: str | None = None, slug: str = "bench", wait: bool = True,
        command: tuple[str, ...] = ("payroster", "serve"),
    ) -> None:  # fmt: skip
        self.env = env
        if key is None:
            made = json.loads(
                setup(env, "workspace", "create", "--name", "Bench", "--admin-email", "b@x.com", "--json")
            )
            key, slug = made["apiKey"], made["workspaceSlug"]
        self.key, self.slug = key, slug
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *command, "--port", str(self.port), "--workers", str(WORKERS)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if wait:
            self.wait()

    def wait(self) -> None:
        """Until the server answers (servers started with ``wait=False`` start side by side: a start is mostly
        imports, one core's work, so two of them on two cores take the time of one)."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    @property
    def headers(self) -> dict[str, str]:
        return {"X-ApiKey": self.key}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsgiServer:
    """``uvicorn TARGET`` (an ASGI application of this folder) on a free port, as PayRoster's server runs it but
    without its access log; started at once, ``wait`` until ``ready`` answers 200 (an application that prepares
    itself before it serves, such as a seeded peer, takes its time: ``timeout``)."""

    def __init__(self, target: str, *args: str, ready: str = "/", env: dict[str, str] | None = None) -> None:
        self.target, self.ready = target, ready
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning", *args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"

    def wait(self, timeout: float = 60) -> str:
        """The URL, once the application answers."""
        deadline = time.monotonic() + timeout
        while not _answers(self.url + self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.target} did not start")
            time.sleep(0.1)
        return self.url

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def __enter__(self) -> AsgiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def asgi_server(target: str, *args: str, ready: str = "/") -> Iterator[str]:
    """An :class:`AsgiServer`; yields its URL once ``ready`` answers 200."""
    with AsgiServer(target, *args, ready=ready) as server:
        yield server.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def memory_mb(pid: int, name: str) -> float:
    """A process's ``VmRSS`` (now) or ``VmHWM`` (peak) in MiB."""
    kib = status_kib(pid, name)
    return float("nan") if kib is None else kib / 1024


def server_mb(server: Server, name: str) -> float:
    """A server's ``VmRSS`` or ``VmHWM`` in MiB: its largest worker process's (``peak_rss.tree_kib`` says why)."""
    kib = tree_kib(server.proc.pid, name)
    return float("nan") if kib is None else kib / 1024


def machine(backends: list[Backend]) -> dict[str, Any]:
    """Cores, memory, Python, database versions, worker count and settings of this run."""
    mem = next(
        (ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), "0"
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{f"{b.name}_version": b.version() for b in backends},
        "server_workers": WORKERS,
        "settings": (
            f"rate limits lifted; {THREADS} handler threads; after start-up the collector frozen with threshold"
            f" {COLLECTOR_THRESHOLD:,} and a {SWITCH_INTERVAL * 1000:g} ms GIL switch interval;"
            f" SQLite WAL, synchronous=NORMAL, {SQLITE_CACHE_KIB // 1024} MiB page cache per connection (the"
            " baselines' too); PostgreSQL pool 10"
        ),
    }
