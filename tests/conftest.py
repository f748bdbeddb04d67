"""Shared fixtures: real SQLite (a migrated template copied per test) and real PostgreSQL (a schema per
run, truncated per test), a real uvicorn server on 127.0.0.1, and workspace factories."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from payroster.app import create_app
from payroster.config import Settings
from payroster.db import migrate
from payroster.db.engine import Database
from payroster.db.models import Base
from payroster.services import workspaces
from tests.procs import cli_env, pg_schema, run_cli

PG_URL = os.environ.get("PAYROSTER_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])
# Rate limits are tested on their own (tests/http/test_ratelimit.py); elsewhere they would only add noise.
TEST_SETTINGS: dict[str, Any] = {
    "secret_key": "test-secret",
    "rate_limit_per_key": "1000000/second",
    "rate_limit_per_workspace": "1000000/second",
}
TABLES = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))


def pytest_sessionstart(session: pytest.Session) -> None:
    """On CI a missing PostgreSQL is a failure, never a silent skip."""
    if os.environ.get("CI") == "true" and not PG_URL:
        raise pytest.UsageError("CI=true but PAYROSTER_TEST_DATABASE_URL is not set: PostgreSQL tests cannot run")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(Settings(database_url=f"sqlite:///{path}", secret_key="test"))
    migrate.upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL schema private to this test run, migrated once, dropped at the end."""
    assert PG_URL is not None
    schema = f"pr_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database kind under test: every test using ``db`` runs on SQLite and on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh database of ``backend``."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "payroster.db"
        shutil.copyfile(template, path)
        return Settings(database_url=f"sqlite:///{path}", **TEST_SETTINGS)
    url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))
    engine.dispose()
    return Settings(database_url=url, **TEST_SETTINGS)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """An open database for the test."""
    database = Database(settings)
    yield database
    database.dispose()


class _Switch:
    """An ASGI app that forwards to the current test's app, so one real server serves the whole run."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def http_server() -> Iterator[tuple[_Switch, str]]:
    """A real uvicorn server on 127.0.0.1 for the whole run."""
    switch = _Switch()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `payroster serve` runs it: forwarded headers are the application's business, never uvicorn's.
    server = uvicorn.Server(uvicorn.Config(switch, log_level="warning", access_log=False, proxy_headers=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "test server did not start"
    yield switch, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def base_url(http_server: tuple[_Switch, str], settings: Settings, db: Database) -> str:
    """The live server's URL, now serving an app over this test's database."""
    switch, url = http_server
    switch.app = create_app(settings, db)
    return url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the live server (no credentials)."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@dataclass
class WS:
    """A workspace made for a test: its ids and its admin's API key."""

    id: uuid.UUID
    slug: str
    admin_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """``X-ApiKey`` headers for this workspace's admin."""
        return {"X-ApiKey": self.key}


def make_workspace(db: Database, name: str, admin_email: str = "admin@example.com") -> WS:
    """Create a workspace with its first FullAdmin and an API key."""
    with db.write() as s:
        made = workspaces.create(s, name, admin_email, None)
        return WS(made.workspace.id, made.workspace.slug, made.admin_user_id, made.api_key)


@pytest.fixture
def ws(db: Database) -> WS:
    """Workspace A."""
    return make_workspace(db, "Acme")


@pytest.fixture
def ws_b(db: Database) -> WS:
    """Workspace B, for isolation tests."""
    return make_workspace(db, "Bravo", "boss@bravo.example")


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A CLI environment over a fresh database: an SQLite file, or a PostgreSQL schema brought up by
    ``db upgrade`` (the only way PostgreSQL is migrated)."""
    if request.param == "sqlite":
        yield cli_env(f"sqlite:///{tmp_path / 'var' / 'payroster.db'}")
        return
    assert PG_URL is not None
    with pg_schema(PG_URL) as url:
        environment = cli_env(url)
        upgraded = run_cli(environment, "db", "upgrade")
        assert upgraded.code == 0, upgraded.err
        yield environment


def create_workspace(env: dict[str, str], name: str = "Acme Corp", email: str = "owner@acme.example") -> dict[str, str]:
    """``workspace create --json``, asserted to succeed with exactly one JSON object on stdout."""
    made = run_cli(env, "workspace", "create", "--name", name, "--admin-email", email, "--json")
    assert made.code == 0, made.err
    data: dict[str, str] = made.json()
    return data


def refused_within_key_ttl(client: httpx.Client, path: str, headers: dict[str, str], status: int = 403) -> None:
    """A key used just before its owner was demoted (or it was revoked) is believed for at most ``KEY_TTL`` more
    seconds (auth/apikey.py): ``path`` must answer ``status`` within that bound, and ``status`` from then on."""
    from payroster.auth.apikey import KEY_TTL

    changed = time.monotonic()
    while True:
        sent = time.monotonic()  # a request sent within the bound may be answered after it (a slow export)
        answer = client.get(path, headers=headers)
        if answer.status_code == status:
            break
        assert answer.status_code == 200 and sent - changed <= KEY_TTL, (path, answer.status_code, sent - changed)
    assert client.get(path, headers=headers).status_code == status
