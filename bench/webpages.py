"""The web app's Users page at 5,000 users (bench/README.md, "Scenarios"): ``GET /users`` signed in as a full
admin, its first page, the last page sorted by e-mail descending, and a search, each timed by the server itself
(the mean of ``payroster_http_request_duration_seconds`` for the route ``/users``, read from ``/metrics`` before
and after each repetition) with the round trip the client saw printed beside it."""

from __future__ import annotations

import contextlib
import json
import re
import statistics
import tempfile
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Backend, Figure, Server, setup

REPS = 3
ADMIN, PASSWORD = "b@x.com", "bench password"
METRICS_TOKEN = "bench-metrics"
LATENCY = "payroster_http_request_duration_seconds"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def _users_route(scrape: str) -> tuple[float, float, float]:
    """Seconds spent, requests answered and those answered within 100 ms, for ``GET /users`` so far."""
    spent = count = within = 0.0
    for family in text_string_to_metric_families(scrape):
        if family.name != LATENCY:
            continue
        for sample in family.samples:
            if sample.labels.get("route") != "/users" or sample.labels.get("method") != "GET":
                continue
            if sample.name == LATENCY + "_sum":
                spent += sample.value
            elif sample.name == LATENCY + "_count":
                count += sample.value
            elif sample.name == LATENCY + "_bucket" and float(sample.labels["le"]) == 0.1:
                within += sample.value
    return spent, count, within


def _sign_in(client: httpx.Client) -> None:
    """The log-in form, as a browser sends it."""
    token = _CSRF.search(client.get("/login").text)
    assert token, "the log-in page has no CSRF token"
    answer = client.post("/login", data={"csrf_token": token.group(1), "email": ADMIN, "password": PASSWORD})
    assert answer.status_code == 303 and "/login" not in answer.headers["location"], answer.text[:300]


def users_page(backend: Backend, users: int, requests: int, table: Any, user_rows: Any) -> None:
    """Seed ``users`` users by ``users:bulk``, sign in through the form, then time each page ``requests`` times a
    repetition: the server's mean from its own histogram, the client's median beside it."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(backend.database())
        env = {
            **env, "PAYROSTER_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": stack.enter_context(tempfile.TemporaryDirectory(prefix="payroster-metrics-")),
        }  # fmt: skip
        made = json.loads(setup(env, "workspace", "create", "--name", "Bench", "--admin-email", ADMIN,
                                "--admin-password", PASSWORD, "--json"))  # fmt: skip
        server = stack.enter_context(Server(env, made["apiKey"], made["workspaceSlug"]))
        api = stack.enter_context(httpx.Client(base_url=server.url, headers=server.headers, timeout=600))
        for seeded in range(0, users, 100_000):
            rows = user_rows(min(100_000, users - seeded), seeded, "web")
            api.post("/api/v1/users:bulk", content=json.dumps(rows)).raise_for_status()
        backend.settle(env)
        web = stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
        _sign_in(web)
        last = -(-(users + 1) // 50)
        pages = (
            ("first page", "/users"),
            (f"p. {last} by e-mail desc", f"/users?sort=email&dir=desc&page={last}"),
            ("search a tag", "/users?q=T3"),  # one user in ten has it
        )
        scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}

        def scrape() -> tuple[float, float, float]:
            answer = httpx.get(server.url + "/metrics", headers=scraper)
            answer.raise_for_status()
            return _users_route(answer.text)

        for _, path in pages:  # both worker processes compile the templates and warm their caches
            for _ in range(4):
                assert web.get(path).status_code == 200, path
        table.note(f"web pages ({backend.name}): {users + 1:,} users, {requests} requests of each page a repetition")
        for label, path in pages:
            server_ms, client_ms, late = Figure(), Figure(), 0.0
            for _ in range(REPS):
                spent0, count0, within0 = scrape()
                took = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    answer = web.get(path)
                    took.append(time.perf_counter() - t0)
                    assert answer.status_code == 200 and 'id="user-count"' in answer.text, path
                spent1, count1, within1 = scrape()
                assert count1 - count0 == requests, (count0, count1)
                server_ms.values.append((spent1 - spent0) / requests * 1000)
                client_ms.values.append(statistics.median(took) * 1000)
                late += requests - (within1 - within0)
            table.row(f"web /users ms, {label}", backend.name, server_ms, None, None,
                      "<= 100 ms server time", server_ms.median <= 100, ".1f")  # fmt: skip
            table.note(f"{path} ({backend.name}): the client's median round trip {client_ms.text('.1f')} ms;"
                       f" {late:.0f} of {REPS * requests} answers took the server over 100 ms")  # fmt: skip
