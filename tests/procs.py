"""Real ``payroster`` processes for tests: the CLI as a subprocess and ``payroster serve`` on a free port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a PayRoster process on ``database_url`` (never the developer's own settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYROSTER_")}
    env.update({"PAYROSTER_DATABASE_URL": database_url, "PAYROSTER_SECRET_KEY": "cli-test-secret", **extra})
    return env


@dataclass
class Run:
    """A finished CLI invocation."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON object."""
        return json.loads(self.out)


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> Run:
    """Run ``payroster ARGS`` the way a user does, with the console script's module."""
    proc = subprocess.run(
        [sys.executable, "-m", "payroster", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``payroster serve``."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path


@contextmanager
def serve(env: dict[str, str], log: Path, workers: int | None = 1, ready: bool = True) -> Iterator[Served]:
    """Start ``payroster serve`` (``workers`` None: as many as it starts by default) and wait until ``/healthz``
    answers; stop it with SIGTERM afterwards."""
    port = free_port()
    count = [] if workers is None else ["--workers", str(workers)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "payroster", "serve", "--port", str(port), *count],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        if ready:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    if httpx.get(served.url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def pg_schema(pg_url: str) -> Iterator[str]:
    """An empty PostgreSQL schema of its own (never migrated), as a URL whose search_path points at it."""
    schema = f"pr_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
