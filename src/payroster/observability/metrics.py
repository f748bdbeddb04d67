"""Prometheus metrics: requests by door, route and status, their latency, the database pool, rate-limit
refusals and imported rows; served at ``/metrics`` to a scraper holding ``PAYROSTER_METRICS_TOKEN``
(docs/operations.md).

The counters are the process's (prometheus-client's default registry, beside its process and GC figures);
the pool is read from the application's own database at each scrape. Under ``PROMETHEUS_MULTIPROC_DIR``
prometheus-client keeps the counters in files there and a scrape adds up every worker's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "payroster_http_requests",
    "HTTP requests answered, by door, route template, method and status",
    ["door", "route", "method", "status"],
)
LATENCY = Histogram(
    "payroster_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by door, route template and method",
    ["door", "route", "method"],
)
RATE_LIMITED = Counter(
    "payroster_rate_limit_refusals",
    "Requests and log-ins refused by a rate limit, by budget (key, workspace, login); the door of a refused "
    "request is in payroster_http_requests_total's status 429",
    ["budget"],
)
IMPORT_ROWS = Counter(
    "payroster_import_rows",
    "Rows applied by imports (users:bulk, the bulk page's CSV or pasted rows, the CLI), by channel and result",
    ["channel", "result"],
)

# The doors by path prefix (docs/architecture.md); a path no route matched is ``other`` with route
# ``unmatched``, so a scanner's random paths never become label values.
_DOORS = (("/api/", "api"), ("/app/Api/", "api"), ("/odata/", "odata"), ("/scim/", "scim"))
_MACHINE = ("/healthz", "/metrics")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def door_and_route(scope: Any) -> tuple[str, str]:
    """The door a request came through and the template of the route that answered it (never its path)."""
    route = scope.get("route")
    template = getattr(route, "path", None) if route is not None else None
    path: str = scope["path"]
    door = next((name for prefix, name in _DOORS if path.startswith(prefix)), None)
    if template is None:
        return door or "other", "unmatched"
    if door is None:
        door = "other" if template in _MACHINE else "web"
    return door, template


def observe_request(scope: Any, status: int, seconds: float) -> None:
    """Count one answered request and its latency."""
    door, route = door_and_route(scope)
    method = scope["method"] if scope["method"] in _METHODS else "other"
    REQUESTS.labels(door, route, method, str(status)).inc()
    LATENCY.labels(door, route, method).observe(seconds)


def rate_limited(budget: str) -> None:
    """Count a refusal by a rate limit."""
    RATE_LIMITED.labels(budget).inc()


def imported(channel: str, created: int, updated: int, unchanged: int) -> None:
    """Count the rows of an applied import."""
    for result, count in (("created", created), ("updated", updated), ("unchanged", unchanged)):
        if count:
            IMPORT_ROWS.labels(channel, result).inc(count)


class PoolCollector(Collector):
    """The application's database connections, read at each scrape: the pool's steady size (PostgreSQL's
    ``PAYROSTER_DB_POOL_SIZE``; SQLAlchemy's default for an SQLite file) and its connections in use and idle.
    An in-memory SQLite database keeps no pool and reports nothing."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.pool
        if not hasattr(pool, "checkedout"):
            return
        size = GaugeMetricFamily("payroster_db_pool_size", "Connections the pool keeps open", labels=["database"])
        size.add_metric([self.engine.dialect.name], pool.size())
        conns = GaugeMetricFamily(
            "payroster_db_connections", "Open database connections, in use or idle", labels=["database", "state"]
        )
        conns.add_metric([self.engine.dialect.name, "in_use"], pool.checkedout())
        conns.add_metric([self.engine.dialect.name, "idle"], pool.checkedin())
        yield size
        yield conns


def counters() -> CollectorRegistry:
    """The process's counters, or under ``PROMETHEUS_MULTIPROC_DIR`` every worker's added up."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def clear_multiprocess_dir() -> None:
    """Empty ``PROMETHEUS_MULTIPROC_DIR`` before the workers start: the files of a previous run would add its
    counts to this one's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))
