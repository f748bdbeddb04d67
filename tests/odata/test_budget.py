"""The feed's time budget over HTTP: a query past it answers 503 saying so (not "database unavailable"), a
query whose client went away is stopped, and the explorer's "try it" runs in threads under the same budget."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS
from tests.odata.hostile import HEAVY, HEAVY_FILTER, heavy_rows
from tests.web.conftest import http_login, make_user

BUDGET = 1.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's server spends at most a second of database time on a feed request."""
    return settings.model_copy(update={"query_budget": BUDGET})


@pytest.fixture
def heavy(client: httpx.Client, ws: WS) -> str:
    """A workspace where HEAVY runs for minutes; its feed's Users URL."""
    r = client.post("/api/v1/users:bulk", json=heavy_rows(200, 25), headers=ws.headers)
    assert r.status_code == 200, r.text
    return f"/odata/{ws.slug}/Users"


def test_a_query_past_its_budget_answers_503_saying_so(client: httpx.Client, ws: WS, heavy: str) -> None:
    started = time.monotonic()
    r = client.get(heavy, params=HEAVY, headers=ws.headers)
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "queryBudgetSpent"
    assert "time budget of 1 s" in error["message"] and "unavailable" not in error["message"]
    assert "Retry-After" not in r.headers and r.headers["OData-Version"] == "4.0"
    assert took < BUDGET + 3
    # The server is well: the same connection answers at once.
    assert client.get(heavy, params={"$top": "1"}, headers=ws.headers).status_code == 200


def test_a_query_whose_client_went_away_is_stopped(
    client: httpx.Client, ws: WS, heavy: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="payroster.odata")
    settings.query_budget = 60  # the app reads it per request: only the client's leaving can stop this one
    with pytest.raises(httpx.ReadTimeout):
        client.get(heavy, params=HEAVY, headers=ws.headers, timeout=0.5)
    left = time.monotonic()
    while "client went away" not in caplog.text and time.monotonic() - left < 5:
        time.sleep(0.05)
    assert "client went away" in caplog.text, caplog.text
    if not settings.is_sqlite:
        engine = create_engine(settings.database_url)
        try:
            with engine.connect() as conn:
                running = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%no such text%'"
                         " AND pid <> pg_backend_pid()")
                ).scalar_one()  # fmt: skip
        finally:
            engine.dispose()
        assert running == 0


@pytest.fixture
def limited_admin(base_url: str, db: Database, ws: WS) -> Iterator[httpx.Client]:
    """A browser session of a LimitedAdmin (who may use the explorer)."""
    make_user(db, ws.id, "limited@example.com", "LimitedAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert http_login(c, "limited@example.com").status_code in (200, 303)
        yield c


def test_the_explorer_runs_off_the_event_loop_under_the_budget(
    client: httpx.Client, ws: WS, heavy: str, limited_admin: httpx.Client
) -> None:
    explorer = "/settings/connections/odata"
    answers: list[httpx.Response] = []
    runs = [
        threading.Thread(
            target=lambda: answers.append(
                limited_admin.get(explorer, params={"set": "Users", "query": f"$filter={HEAVY_FILTER}&$count=true"})
            )
        )
        for _ in range(3)
    ]
    for run in runs:
        run.start()
    time.sleep(0.3)
    probes = []
    for _ in range(5):  # while three explorer queries run, the server answers everything else at once
        started = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/me", headers=ws.headers).status_code == 200
        probes.append(time.monotonic() - started)
        time.sleep(0.05)
    for run in runs:
        run.join(30)
    assert max(probes) < 0.5, probes
    assert [a.status_code for a in answers] == [200, 200, 200]
    for answer in answers:
        assert "time budget of 1 s" in answer.text


def test_a_snapshot_past_its_budget_answers_503_too(client: httpx.Client, ws: WS, heavy: str) -> None:
    """$at reads the period tables under the same budget (README.md, "Time travel in the feed")."""
    started = time.monotonic()
    r = client.get(heavy, params={**HEAVY, "$at": "2026-02-28"}, headers=ws.headers)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "queryBudgetSpent"
    assert time.monotonic() - started < BUDGET + 3
