"""Rate limits (docs/operations.md, "Rate limits"): 429 with ``Retry-After`` in each door's error format, per key
and per workspace, in-process by default and shared through Redis across server processes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS, _Switch
from tests.procs import cli_env, run_cli, serve

REDIS_URL = "redis://127.0.0.1:6379/0"


def limited(http_server: tuple[_Switch, str], settings: Settings, db: Database, **limits: str) -> str:
    """The live server now serving an app with these limits."""
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update=limits), db)
    return url


def test_per_key_limit_allows_the_burst_then_answers_429_with_retry_after(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS
) -> None:
    url = limited(http_server, settings, db, rate_limit_per_key="5/minute", rate_limit_per_workspace="1000/minute")
    with httpx.Client(base_url=url) as c:
        codes = [c.get("/api/v1/me", headers=ws.headers).status_code for _ in range(10)]
        assert codes == [200] * 10  # a burst of twice the rate
        refused = c.get("/api/v1/me", headers=ws.headers)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 120
        assert refused.json()["error"]["code"] == "rateLimited" and refused.json()["error"]["message"]
        # Writes are limited too, and nothing is written when refused.
        user = {"emailAddress": "x@acme.example", "role": "Participant"}
        write = c.post("/api/v1/users", headers=ws.headers, json=user)
        assert write.status_code == 429
        # Another key of the same workspace has its own budget.
        with db.write() as s:
            from payroster.services import apikeys
            from payroster.services.context import Actor

            other, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(ws.admin_id), "second")
        found = c.get("/api/v1/users", params={"emailAddress": "x@acme.example"}, headers={"X-ApiKey": other})
        assert found.status_code == 404


def test_odata_door_answers_429_in_odata_format(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS
) -> None:
    url = limited(http_server, settings, db, rate_limit_per_key="2/minute")
    with httpx.Client(base_url=url) as c:
        for _ in range(4):
            assert c.get(f"/odata/{ws.slug}/Users", headers=ws.headers).status_code == 200
        refused = c.get(f"/odata/{ws.slug}/Users", headers=ws.headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["OData-Version"] == "4.0"
    body = refused.json()["error"]
    assert body["code"] and body["message"] and set(body) <= {"code", "message", "target", "details", "innererror"}


def test_per_workspace_limit_spans_keys_and_spares_other_workspaces(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS, ws_b: WS
) -> None:
    url = limited(http_server, settings, db, rate_limit_per_key="1000/minute", rate_limit_per_workspace="6/minute")
    from payroster.services import apikeys
    from payroster.services.context import Actor

    with db.write() as s:
        second, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(ws.admin_id), "second")
    with httpx.Client(base_url=url) as c:
        codes = [c.get("/api/v1/me", headers={"X-ApiKey": k}).status_code for k in [ws.key, second] * 3]
        assert codes == [200] * 6
        assert c.get("/api/v1/me", headers={"X-ApiKey": second}).status_code == 429
        assert c.get("/api/v1/me", headers=ws.headers).status_code == 429
        assert c.get("/api/v1/me", headers=ws_b.headers).status_code == 200


def test_unknown_keys_are_401_not_counted_against_a_workspace(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS
) -> None:
    url = limited(http_server, settings, db, rate_limit_per_key="2/minute", rate_limit_per_workspace="2/minute")
    with httpx.Client(base_url=url) as c:
        for _ in range(10):
            assert c.get("/api/v1/me", headers={"X-ApiKey": "pr_AAAAAAAA_" + "x" * 40}).status_code == 401
        assert c.get("/api/v1/me", headers=ws.headers).status_code == 200


@pytest.fixture
def redis_db() -> Any:
    """The machine's Redis, or a failure on CI."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis at 127.0.0.1:6379 is required for the shared rate-limit test")
    yield client
    client.close()


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process"])
def test_two_server_processes_share_one_budget_through_redis(tmp_path: Path, redis_db: Any, shared: bool) -> None:
    extra = {"PAYROSTER_RATE_LIMIT_PER_KEY": "10/minute", "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "1000/minute"}
    if shared:
        extra["PAYROSTER_REDIS_URL"] = REDIS_URL
    env = cli_env(f"sqlite:///{tmp_path / 'shared.db'}", **extra)
    made = run_cli(env, "workspace", "create", "--name", "Acme", "--admin-email", "a@acme.example", "--json")
    assert made.code == 0, made.err
    headers = {"X-ApiKey": made.json()["apiKey"]}
    with serve(env, tmp_path / "one.log") as one, serve(env, tmp_path / "two.log") as two:
        codes = [httpx.get(s.url + "/api/v1/me", headers=headers).status_code for _ in range(20) for s in (one, two)]
    print(f"\nrate limit over two processes ({'Redis' if shared else 'in-process'}): "
          f"{codes.count(200)} passed, {codes.count(429)} limited of {len(codes)}")  # fmt: skip
    if shared:
        # One budget of 20 (10/minute with its burst) across both processes.
        assert codes.count(200) == 20 and codes[20:] == [429] * 20
    else:
        # Without Redis each process counts alone: everything passes.
        assert codes == [200] * 40


def test_scim_door_answers_429_as_a_scim_error(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS
) -> None:
    from payroster.services import apikeys
    from payroster.services.context import Actor

    url = limited(http_server, settings, db, rate_limit_per_key="2/minute")
    with db.write() as s:
        token, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), None, "IdP", "scim")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url) as c:
        for _ in range(4):
            assert c.get(f"/scim/v2/{ws.slug}/Users", headers=headers).status_code == 200
        refused = c.get(f"/scim/v2/{ws.slug}/Users", headers=headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    body = refused.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "429"
