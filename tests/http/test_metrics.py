"""``/metrics`` through the real server: Prometheus text that moves with known requests, labelled by door and
route template (never a path's ids, slugs or tokens), and closed without its token (docs/operations.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS, make_workspace
from tests.procs import cli_env, serve

TOKEN = "metrics-test-token"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def served(http_server: Any, settings: Settings, db: Database, **changes: Any) -> str:
    """The live server's URL, serving an app with ``/metrics`` open to ``TOKEN``."""
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN), **changes}), db)
    return str(url)


def scrape(client: httpx.Client) -> Samples:
    """Every sample of a scrape, parsed by prometheus-client's own parser."""
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much the samples of ``name`` whose labels include ``labels`` grew between two scrapes."""
    want = set(labels.items())
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == name and want <= k[1])


@pytest.fixture
def metrics_client(http_server: Any, settings: Settings, db: Database) -> Iterator[httpx.Client]:
    """A client of a server whose ``/metrics`` is open to ``TOKEN``."""
    with httpx.Client(base_url=served(http_server, settings, db), timeout=30) as c:
        yield c


def test_requests_counted_by_door_route_template_and_status(metrics_client: httpx.Client, db: Database) -> None:
    """A request of each door moves its counter and its latency histogram, under the route's template."""
    ws: WS = make_workspace(db, "Acme")
    client = metrics_client
    unknown = uuid.uuid4()
    before = scrape(client)
    assert client.get(f"/api/v1/users/{unknown}", headers=ws.headers).status_code == 404
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
    assert client.get(f"/odata/{ws.slug}/Users", headers=ws.headers).status_code == 200
    assert client.get(f"/scim/v2/{ws.slug}/Users", headers={"Authorization": f"Bearer {ws.key}"}).status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get(f"/no-such-page/{unknown}").status_code == 404
    after = scrape(client)

    total = "payroster_http_requests_total"
    assert moved(before, after, total, door="api", route="/api/v1/users/{user_id}", status="404", method="GET") == 1
    assert moved(before, after, total, door="api", route="/api/v1/me", status="200") == 2
    assert moved(before, after, total, door="odata", route="/odata/{slug}/{path:path}", status="200") == 1
    assert moved(before, after, total, door="scim", route="/scim/v2/{slug}/{path:path}", status="200") == 1
    assert moved(before, after, total, door="web", route="/login", status="200") == 1
    assert moved(before, after, total, door="other", route="unmatched", status="404") == 1
    assert moved(before, after, "payroster_http_request_duration_seconds_count", door="api", route="/api/v1/me") == 2
    assert moved(before, after, "payroster_http_request_duration_seconds_bucket", route="/api/v1/me", le="+Inf") == 2
    # No label carries what identifies a request: ids, slugs, keys.
    values = {v for (_, labels) in after for _, v in labels}
    for secret in (str(unknown), ws.slug, ws.key, TOKEN):
        assert not [v for v in values if secret in v.replace("{slug}", "")], secret


def test_pool_rate_limit_refusals_and_imported_rows(
    http_server: Any, settings: Settings, db: Database, backend: str
) -> None:
    """The pool's connections, refusals by a key's rate limit, and users:bulk rows by result."""
    ws = make_workspace(db, "Acme")
    url = served(http_server, settings, db, rate_limit_per_key="3/minute")  # bursts of 6
    with httpx.Client(base_url=url, timeout=30) as client:
        before = scrape(client)
        rows = [{"emailAddress": f"rep{i}@example.com", "role": "Participant"} for i in range(3)]
        assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
        rows[0]["firstName"] = "Ada"
        assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
        statuses = [client.get("/api/v1/me", headers=ws.headers).status_code for _ in range(6)]
        assert statuses.count(429) == 2, statuses
        after = scrape(client)

    assert moved(before, after, "payroster_import_rows_total", channel="api", result="created") == 3
    assert moved(before, after, "payroster_import_rows_total", channel="api", result="updated") == 1
    assert moved(before, after, "payroster_import_rows_total", channel="api", result="unchanged") == 2
    assert moved(before, after, "payroster_rate_limit_refusals_total", budget="key") == 2
    assert moved(before, after, "payroster_http_requests_total", route="/api/v1/me", status="429") == 2
    dialect = "sqlite" if backend == "sqlite" else "postgresql"
    assert ("payroster_db_connections", frozenset({("database", dialect), ("state", "in_use")})) in after
    idle = after[("payroster_db_connections", frozenset({("database", dialect), ("state", "idle")}))]
    assert idle >= 1  # the requests above returned their connections to the pool
    size = after[("payroster_db_pool_size", frozenset({("database", dialect)}))]
    if backend != "sqlite":
        assert size == settings.db_pool_size


def test_metrics_closed_without_the_token(http_server: Any, settings: Settings, db: Database, client: Any) -> None:
    """Unset, ``/metrics`` is an unknown path (404); set, a missing or wrong token is 401."""
    assert client.get("/metrics").status_code == 404  # `client` serves the test's settings: no token
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    with httpx.Client(base_url=served(http_server, settings, db), timeout=30) as open_client:
        wrong = ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"}, {"X-ApiKey": TOKEN})
        for headers in wrong:
            answer = open_client.get("/metrics", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "payroster_" not in answer.text
        assert open_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.slow
def test_workers_share_counters_through_the_multiprocess_directory(tmp_path: Path) -> None:
    """``serve --workers 2`` with ``PROMETHEUS_MULTIPROC_DIR``: whichever worker answers a scrape reports the
    requests of both, and a previous run's files are cleared at start."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = cli_env(
        f"sqlite:///{tmp_path / 'p.db'}", PAYROSTER_METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(directory)
    )
    with serve(env, tmp_path / "serve.log", workers=2) as served:
        for _ in range(30):  # a connection each, so that both workers take some
            assert httpx.get(f"{served.url}/nowhere", timeout=30).status_code == 404
        seen = set()
        for _ in range(6):
            with httpx.Client(base_url=served.url, timeout=30) as client:
                samples = scrape(client)
            seen.add(moved({}, samples, "payroster_http_requests_total", door="other", route="unmatched"))
    assert seen == {30.0}
    assert not (directory / "counter_999999.db").exists()
