"""What operators watch: request ids, Prometheus metrics and the log format (docs/operations.md)."""

from __future__ import annotations

from fastapi import FastAPI

from payroster.config import Settings
from payroster.db.engine import Database
from payroster.observability import metrics
from payroster.observability.requests import Observed, current

__all__ = ["current", "install"]


def install(app: FastAPI, settings: Settings, db: Database) -> None:
    """Wrap the application in the request-id and metrics middleware, and serve ``/metrics`` when a token
    is set (unset, the path is unknown: 404)."""
    if settings.metrics_token is not None:
        app.include_router(metrics.router(settings.metrics_token.get_secret_value(), db.engine))
    build = app.build_middleware_stack

    # Outside Starlette's error middleware, which answers an unexpected exception itself: inside it, that
    # answer would carry no X-Request-ID and go uncounted.
    def build_observed() -> Observed:
        return Observed(build())

    app.build_middleware_stack = build_observed  # type: ignore[method-assign]
