"""``X-Request-ID`` on every response, named by every error body of every door and by the log lines
(docs/operations.md, "Request ids")."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.observability.logs import JsonFormatter, RequestIdFilter
from tests.conftest import WS
from tests.procs import cli_env, run_cli, serve

FRESH = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/me", "/login", "/static/app.css", "/nowhere"])
def test_a_valid_id_is_kept_and_a_missing_one_made(client: httpx.Client, path: str) -> None:
    """The client's id comes back as it was sent; without one, each response gets its own."""
    kept = "trace.4f2a:b_9-Z"
    assert client.get(path, headers={"X-Request-ID": kept}).headers["x-request-id"] == kept
    first, second = (client.get(path).headers["x-request-id"] for _ in range(2))
    assert FRESH.fullmatch(first) and FRESH.fullmatch(second) and first != second


@pytest.mark.parametrize("sent", ["", "a" * 129, "has space", "<script>", "é", "a,b", "x/y"])
def test_an_invalid_id_is_replaced(client: httpx.Client, sent: str) -> None:
    """An id that is empty, longer than 128 characters or outside ``[A-Za-z0-9._:-]`` is not repeated."""
    answer = client.get("/healthz", headers={"X-Request-ID": sent.encode()})
    assert FRESH.fullmatch(answer.headers["x-request-id"]), answer.headers["x-request-id"]
    assert client.get("/healthz", headers={"X-Request-ID": "a" * 128}).headers["x-request-id"] == "a" * 128


def test_every_door_names_the_id_in_its_error_body(client: httpx.Client, ws: WS) -> None:
    """The JSON API's error, the feed's OData error, SCIM's Error detail and an error page all carry the
    response's ``X-Request-ID``."""
    scim = {"Authorization": f"Bearer {ws.key}"}
    missing = uuid.uuid4()
    answer = client.get(f"/api/v1/users/{missing}", headers={**ws.headers, "X-Request-ID": "api-1"})
    assert answer.status_code == 404
    assert answer.json()["error"]["requestId"] == answer.headers["x-request-id"] == "api-1"
    answer = client.get("/api/v1/me")  # 401, with a fresh id
    assert answer.json()["error"]["requestId"] == answer.headers["x-request-id"]

    answer = client.get(f"/odata/{ws.slug}/Nope", headers=ws.headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["innererror"]["requestId"] == answer.headers["x-request-id"]

    answer = client.get(f"/scim/v2/{ws.slug}/Users/{missing}", headers=scim)
    assert answer.status_code == 404
    assert answer.json()["detail"].endswith(f"(request id {answer.headers['x-request-id']})")

    answer = client.get(f"/teams/{missing}", headers={"X-Request-ID": "page-1"})  # signed out: a redirect
    assert answer.headers["x-request-id"] == "page-1"
    answer = client.get(f"/no-such-page/{missing}", headers={"X-Request-ID": "page-2"})
    assert answer.status_code == 404
    assert "page-2" in answer.text


def test_an_unexpected_error_names_the_same_id_in_its_body_header_and_log(
    http_server: Any, settings: Settings, db: Database
) -> None:
    """A 500 says "internal error; request id X" with X the header's id, and its log line names X too."""
    app = create_app(settings, db)

    @app.get("/api/v1/failing")
    def failing() -> None:
        raise RuntimeError("a bug")

    switch, url = http_server
    switch.app = app
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("payroster.api")
    logger.addHandler(handler)
    try:
        # A connection each: after a 500 the server closes the connection the request came on.
        answer = httpx.get(f"{url}/api/v1/failing", headers={"X-Request-ID": "boom-7"}, timeout=30)
        fresh = httpx.get(f"{url}/api/v1/failing", timeout=30)
    finally:
        logger.removeHandler(handler)
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "boom-7"
    assert answer.json()["error"]["message"] == "internal error; request id boom-7"
    assert "a bug" not in answer.text and "Traceback" not in answer.text
    rid = fresh.headers["x-request-id"]
    assert fresh.json()["error"]["message"] == f"internal error; request id {rid}"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["boom-7", rid]
    assert all(line["level"] == "ERROR" and "Traceback" in line["exc_info"] for line in lines)


@pytest.mark.slow
def test_json_logs_of_a_served_process_name_each_request(tmp_path: Path) -> None:
    """``payroster serve`` with ``PAYROSTER_LOG_FORMAT=json`` writes one JSON object per line, with time,
    level, logger, message and request_id; a request's lines carry its id."""
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}", PAYROSTER_LOG_FORMAT="json")
    made = run_cli(env, "workspace", "create", "--name", "Acme", "--admin-email", "a@example.com", "--json")
    assert made.code == 0, made.err
    assert all(json.loads(line)["logger"] for line in made.err.splitlines())  # the CLI's lines too
    key = made.json()["apiKey"]
    with serve(env, tmp_path / "serve.log") as served, httpx.Client(base_url=served.url, timeout=30) as client:
        assert client.get("/api/v1/me", headers={"X-ApiKey": key, "X-Request-ID": "json-1"}).status_code == 200
        assert client.get("/api/v1/me", headers={"X-Request-ID": "json-2"}).status_code == 401
    lines = [json.loads(line) for line in served.log.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    by_id = {line["request_id"]: line for line in lines if line["logger"] == "uvicorn.access"}
    assert '"GET /api/v1/me HTTP/1.1" 200' in by_id["json-1"]["message"]
    assert '"GET /api/v1/me HTTP/1.1" 401' in by_id["json-2"]["message"]
    assert any(line["message"].startswith("Uvicorn running on") and line["request_id"] is None for line in lines)
