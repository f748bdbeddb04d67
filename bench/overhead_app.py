"""PayRoster's application plus one trivial route, served as ``payroster serve`` serves PayRoster.

``GET /bench/trivial`` answers ``{}`` through the same server, middleware and router as ``GET /api/v1/me``,
and sits just before its router in the route table, so the two differ only by what ``/me`` does: the key check and
its answer. ``python -m bench.overhead_app --port N [--workers N]`` runs it (the ``overhead`` scenario).
"""

from __future__ import annotations

import argparse
import os

from fastapi import FastAPI

from payroster import app as payroster_app
from payroster.api import routes_users as users
from payroster.cli import run_server
from payroster.config import Settings
from payroster.observability import logs

TRIVIAL = "/bench/trivial"


async def trivial() -> dict[str, str]:
    """The cheapest FastAPI endpoint: no key, no database."""
    return {}


def factory() -> FastAPI:
    """PayRoster's application with ``GET /bench/trivial`` just before the router of ``GET /api/v1/me``."""
    app = payroster_app.factory()
    if os.environ.get("PAYROSTER_BENCH_NO_KEY_CACHE"):  # for side-by-side runs: every key checked in the database
        app.state.key_cache = None
    app.add_api_route(TRIVIAL, trivial, methods=["GET"], include_in_schema=False)
    routes = app.router.routes
    route = routes.pop()
    routes.insert(next(i for i, r in enumerate(routes) if getattr(r, "original_router", None) is users.router), route)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    workers = args.workers or Settings().workers
    run_server("bench.overhead_app:factory", "127.0.0.1", args.port, workers, logs.config(Settings().log_format))


if __name__ == "__main__":
    main()
