"""The ASGI application: ``create_app(settings)`` mounts every door over one database."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import platform
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from payroster import __version__, logredact
from payroster.api import (
    errors,
    openapi,
    routes_changes,
    routes_exports,
    routes_imports,
    routes_teams,
    routes_timelines,
    routes_users,
    routes_webhooks,
    schemas,
)
from payroster.auth.apikey import KeyCache
from payroster.auth.ratelimit import RateLimiter
from payroster.config import Settings
from payroster.db import health, restore
from payroster.db.engine import Database
from payroster.db.migrate import prepare_database
from payroster.observability import asgi as observability
from payroster.odata import routes as odata_routes
from payroster.odata.model import SETS
from payroster.outbound import AllowList, Guard
from payroster.scim import routes as scim_routes
from payroster.services.delivery import Delivery
from payroster.urls import ForwardedHeaders
from payroster.web import core as web_core
from payroster.web import routes_auth, routes_settings, routes_sso
from payroster.web import routes_exports as web_exports
from payroster.web import routes_imports as web_imports
from payroster.web import routes_pickers as web_pickers
from payroster.web import routes_teams as web_teams
from payroster.web import routes_users as web_users
from payroster.web import routes_variables as web_variables
from payroster.web import routes_webhooks as web_webhooks
from payroster.web.headers import SecurityHeaders

log = logging.getLogger("payroster")


# The collector's first threshold: allocations between two young-generation collections (Python's is 700).
COLLECTOR_THRESHOLD = 10_000
# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms).
SWITCH_INTERVAL = 0.001
# glibc's malloc arenas: its default, eight per core, gives each of the request threads a heap of its own, and
# what a burst of large requests freed stayed in them (the hostile-client test: 193 -> 252 MiB after 15 s of
# attacks). With two, the server started at 166 MiB and ended within 4% of it (bench/JOURNAL.md).
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
_settled = False


def settle_interpreter() -> None:
    """Once per server process, after start-up: the interpreter tuned for many short requests on threads.

    - What start-up built (routes, models, compiled statements) is frozen out of the cyclic collector's
      reach, and young collections run every 10,000 allocations instead of 700. A request allocates a few
      thousand short-lived containers that reference counting frees; with Python's defaults the
      collector still ran every 700 allocations and now and then walked every object the process had
      built. Older generations keep their pace, so reference cycles are still collected.
    - Threads hand the GIL over after 1 ms instead of 5. A handler that waits on the database gives the
      GIL away, and then waited up to 5 ms behind another thread's Python to get it back, holding
      SQLite's write turn all the while.

    Measured on the single-upsert load (bench/JOURNAL.md): the collector settings +6% and +11% requests/s,
    the switch interval a further +15% (for ``GET /me`` too) and p99 71 → 59 ms.
    """
    global _settled
    if _settled:
        return
    _settled = True
    _limit_malloc_arenas()
    gc.collect()
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(young, COLLECTOR_THRESHOLD), older, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL)


def _limit_malloc_arenas() -> None:
    """At most ``MALLOC_ARENAS`` malloc arenas (glibc; elsewhere nothing), before the request threads start.

    Written by hand through ctypes: no maintained package exposes ``mallopt``, and ``MALLOC_ARENA_MAX`` in the
    environment would have to be set before the process starts, which ``payroster serve`` cannot do for itself."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None and platform.libc_ver()[0] == "glibc":
        mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def create_app(settings: Settings | None = None, db: Database | None = None, guard: Guard | None = None) -> FastAPI:
    """Build the application for these settings (and an already opened database, and in tests the network webhooks
    reach)."""
    settings = settings or Settings()
    threads = settings.threads

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Request handlers run in a thread pool. Many threads do not add CPU to one Python process; they
        # share its GIL, and a writer holding the database's write lock then waits behind every reader for
        # its turn (measured: bench/JOURNAL.md). A small pool queues requests instead.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        settle_interpreter()
        with restore.using(settings.sqlite_path):  # a restore refuses while the server runs (db/restore.py)
            # Webhook delivery threads, unless PAYROSTER_WEBHOOK_DELIVERY=false (then `payroster worker` sends).
            delivery = None
            if settings.webhook_delivery:
                state = _app.state
                delivery = Delivery(state.db, settings, state.webhook_guard, state.secret_key).start()
            try:
                yield
            finally:
                if delivery is not None:
                    delivery.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="PayRoster API",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    logredact.install()  # no link token, skip token or key in the access log
    # Required off SQLite (README.md, "Configuration"); on SQLite generated once beside the database file.
    app.state.secret_key = settings.resolved_secret()
    app.state.db = db or prepare_database(settings)
    app.state.limiter = RateLimiter(settings)
    app.state.webhook_guard = guard or Guard(AllowList.parse(settings.webhook_allow_hosts))
    app.state.key_cache = KeyCache()  # keys verified in the last second (auth/apikey.py)
    # The OData explorer's page runs feed queries: the pages get them from here, not by importing the OData door.
    app.state.feed = routes_settings.Feed(SETS, odata_routes.budgeted, odata_routes.explore)
    routers = [
        *(
            m.router
            for m in (
                routes_users,
                routes_teams,
                routes_timelines,
                routes_changes,
                routes_webhooks,
                odata_routes,
                scim_routes,
            )
        ),
        *(m.compat for m in (routes_users, routes_teams)),
        *(m.router for m in (routes_auth, web_users, web_teams, routes_settings, routes_sso, web_webhooks)),
        web_pickers.router,
        web_variables.router,
        routes_exports.router,
        routes_imports.router,
        web_exports.router,
        web_imports.router,
    ]
    errors.install(app, page=web_core.error_page, is_page=web_core.is_page, allowed=errors.method_table(routers))
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:  # the client and scheme a trusted proxy forwarded (docs/operations.md)
        app.add_middleware(ForwardedHeaders, proxies=settings.trusted_proxies)
    app.mount("/static", StaticFiles(directory=web_core.HERE / "static"), name="static")

    # The health probe first: load balancers call it every few seconds, and behind every other route it paid
    # for matching all of them (~0.25 ms of each probe).
    @app.get(
        "/healthz",
        response_model=schemas.Health,
        tags=["health"],
        operation_id="getHealth",
        responses={503: {"model": schemas.Health}},
        openapi_extra={"security": []},  # public: load balancers probe it without credentials
    )
    def healthz(request: Request) -> JSONResponse:
        """200 when the database answers with PayRoster's current schema, 503 when it does not."""
        status, body = health.check(request.app.state.db)
        return JSONResponse(body, status_code=status)

    observability.install(app, settings, app.state.db)

    # Routes are tried in order and no two doors share a path prefix (/odata, /scim/v2, /api/v1 and /app/Api,
    # the pages'), so the doors machines call come first: matching a feed request against every page's route
    # before its own cost ~0.25 ms of each request (an export page, a SCIM lookup; bench/JOURNAL.md).
    app.include_router(odata_routes.router)
    app.include_router(scim_routes.router)
    for module in (routes_users, routes_teams):
        app.include_router(module.router)
        app.include_router(module.compat)
    app.include_router(routes_timelines.router)
    app.include_router(routes_changes.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_exports.router)
    app.include_router(routes_imports.router)
    app.include_router(web_exports.router)
    app.include_router(web_imports.router)
    for web_module in (routes_auth, web_users, web_teams, routes_settings, routes_sso, web_webhooks):
        app.include_router(web_module.router)
    app.include_router(web_pickers.router)
    app.include_router(web_variables.router)

    app.openapi = lambda: _openapi(app, settings.base_url)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, base_url: str | None) -> dict[str, Any]:
    """FastAPI's document plus the request-body schemas our routes parse by hand, an example of each body,
    and the public URL as the server (clients generated from it call ``getUser``, ``upsertTeam``...)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        routes=app.routes,
        description="PayRoster JSON API. Authenticate with `X-ApiKey`, Bearer or Basic.",
        servers=[{"url": base_url.rstrip("/") if base_url else "/", "description": "this PayRoster"}],
        tags=openapi.TAGS,
    )
    openapi.add_examples(doc)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in schemas.REQUEST_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    doc["components"]["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-ApiKey"},
        "bearer": {"type": "http", "scheme": "bearer"},
        "basic": {"type": "http", "scheme": "basic"},
    }
    doc["security"] = [{"apiKey": []}, {"bearer": []}, {"basic": []}]
    app.openapi_schema = doc
    return doc


def factory() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (each worker builds its app from the environment)."""
    return create_app(Settings())
