"""The observability pieces wired into the application: the outermost middleware and ``/metrics``."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from payroster.config import Settings
from payroster.db.engine import Database
from payroster.observability import metrics
from payroster.observability.requests import Observed


def install(app: FastAPI, settings: Settings, db: Database) -> None:
    """Wrap the application in the request-id and metrics middleware, and serve ``/metrics`` when a token
    is set (unset, the path is unknown: 404)."""
    if settings.metrics_token is not None:
        app.include_router(router(settings.metrics_token.get_secret_value(), db.engine))
    build = app.build_middleware_stack

    # Outside Starlette's error middleware, which answers an unexpected exception itself: inside it, that
    # answer would carry no X-Request-ID and go uncounted.
    def build_observed() -> Observed:
        return Observed(build())

    app.build_middleware_stack = build_observed  # type: ignore[method-assign]


def router(token: str, engine: Any) -> APIRouter:
    """``GET /metrics`` for a scraper presenting ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()
    pool = CollectorRegistry(auto_describe=True)
    pool.register(metrics.PoolCollector(engine))
    routes = APIRouter(include_in_schema=False)

    @routes.get("/metrics")
    async def scrape(request: Request) -> Response:
        """The metrics in Prometheus's text format."""
        presented = request.headers.get("authorization", "").encode("latin-1")
        if not hmac.compare_digest(presented, expected):
            return Response("a valid Bearer token is required\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(generate_latest(metrics.counters()) + generate_latest(pool), media_type=CONTENT_TYPE_LATEST)

    return routes
