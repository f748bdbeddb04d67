"""Every error path of the JSON API (README.md, "JSON API", errors): the documented status and error body, never
a 500."""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import ApiKey
from payroster.services import apikeys
from payroster.services.context import Actor
from tests.conftest import TEST_SETTINGS, WS, refused_within_key_ttl
from tests.unit.test_sqlite_engine import hold_write_turn

UNKNOWN = "00000000-0000-7000-8000-000000000000"


def check(r: httpx.Response, status: int, target: str | None = None) -> dict[str, Any]:
    """The status and the JSON API's error body; returns the error object."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list)
    if target is not None:
        targets = [err["target"], *(d["target"] for d in err["details"])]
        assert any(t and target in t for t in targets), err
    return dict(err)


def user(client: httpx.Client, ws: WS, email: str, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/v1/users", json={"emailAddress": email, "role": "Participant", **fields}, headers=ws.headers)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def team(client: httpx.Client, ws: WS, name: str, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/v1/teams", json={"name": name, **fields}, headers=ws.headers)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_malformed_json_400(client: httpx.Client, ws: WS) -> None:
    """Malformed JSON -> 400."""
    check(client.post("/api/v1/users", content=b'{"emailAddress": ', headers=ws.headers), 400)


def test_wrong_content_type_415(client: httpx.Client, ws: WS) -> None:
    """A body that is not JSON (application/xml) -> 415."""
    r = client.post("/api/v1/users", content=b"<user/>", headers={**ws.headers, "Content-Type": "application/xml"})
    check(r, 415)


def test_unknown_field_422_names_it(client: httpx.Client, ws: WS) -> None:
    """Unknown fields -> 422 naming them."""
    r = client.post(
        "/api/v1/users", json={"emailAddress": "a@x.com", "role": "Participant", "shoeSize": 9}, headers=ws.headers
    )
    check(r, 422, "shoeSize")


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"emailAddress": "not-an-email", "role": "Participant"}, "emailAddress"),
        ({"emailAddress": ("x" * 250) + "@example.com", "role": "Participant"}, "emailAddress"),
        ({"emailAddress": "a@x.com", "role": "Boss"}, "role"),
        ({"emailAddress": "new@x.com"}, "role"),
        ({"emailAddress": "a@x.com", "role": "Participant", "firstName": "Bad\u0000Name"}, "firstName"),
        ({"emailAddress": "a@x.com", "role": "Participant", "tags": ["x" * 256]}, "tags"),
        ({"emailAddress": "a@x.com", "role": "Participant", "tags": [f"t{i}" for i in range(1001)]}, "tags"),
        ({"emailAddress": "a@x.com", "role": "Participant", "directManagerId": UNKNOWN}, "directManagerId"),
        ({"emailAddress": "a@x.com", "role": "Participant", "directManagerId": "nope"}, "directManagerId"),
    ],
)
def test_user_validation_422(client: httpx.Client, ws: WS, body: dict[str, Any], target: str) -> None:
    """Bad e-mail, bad or missing role, control characters, oversize tags, unknown manager -> 422 with target."""
    check(client.post("/api/v1/users", json=body, headers=ws.headers), 422, target)


def test_alias_taken_409_names_holder(client: httpx.Client, ws: WS) -> None:
    """An alias held by another user -> 409 naming the holder."""
    holder = user(client, ws, "holder@x.com", aliases="ID-1")
    err = check(
        client.post(
            "/api/v1/users",
            json={"emailAddress": "b@x.com", "role": "Participant", "aliases": "id-1"},
            headers=ws.headers,
        ),
        409,
    )
    assert holder["id"] in json.dumps(err) or "holder@x.com" in json.dumps(err)


def test_email_taken_on_patch_409(client: httpx.Client, ws: WS) -> None:
    """Changing an e-mail to one in use -> 409."""
    user(client, ws, "one@x.com")
    two = user(client, ws, "two@x.com")
    check(client.patch(f"/api/v1/users/{two['id']}", json={"emailAddress": "ONE@x.com"}, headers=ws.headers), 409)


def test_team_cycle_409(client: httpx.Client, ws: WS) -> None:
    """A parent chain that loops -> 409."""
    a = team(client, ws, "A")
    b = team(client, ws, "B", parentTeamId=a["id"])
    check(client.post("/api/v1/teams", json={"name": "A", "parentTeamId": b["id"]}, headers=ws.headers), 409)


def test_manager_cycle_409(client: httpx.Client, ws: WS) -> None:
    """A direct-manager chain that loops -> 409."""
    boss = user(client, ws, "boss@x.com")
    report = user(client, ws, "report@x.com", directManagerId=boss["id"])
    r = client.post(
        "/api/v1/users", json={"emailAddress": "boss@x.com", "directManagerId": report["id"]}, headers=ws.headers
    )
    check(r, 409)


@pytest.mark.parametrize("role", ["Participant", "LimitedAdmin", "Deactivated"])
def test_last_full_admin_409(client: httpx.Client, ws: WS, role: str) -> None:
    """Demoting or deactivating the last active FullAdmin -> 409."""
    r = client.post("/api/v1/users", json={"emailAddress": "admin@example.com", "role": role}, headers=ws.headers)
    check(r, 409)


def test_unknown_and_malformed_path_ids_404(client: httpx.Client, ws: WS) -> None:
    """Unknown or malformed ids in the path -> 404."""
    for path in (
        f"/api/v1/users/{UNKNOWN}",
        "/api/v1/users/not-a-guid",
        f"/api/v1/teams/{UNKNOWN}",
        "/api/v1/teams/zz",
    ):
        check(client.get(path, headers=ws.headers), 404)
    check(client.get("/api/v1/users", params={"emailAddress": "nobody@x.com"}, headers=ws.headers), 404)


def test_membership_ids(client: httpx.Client, ws: WS) -> None:
    """Malformed body ids -> 422; unknown ids -> 404 naming which."""
    u = user(client, ws, "m@x.com")
    t = team(client, ws, "T")
    check(
        client.post("/api/v1/team-members", json={"systemUserId": "nope", "teamId": t["id"]}, headers=ws.headers), 422
    )
    err = check(
        client.post("/api/v1/team-members", json={"systemUserId": UNKNOWN, "teamId": t["id"]}, headers=ws.headers), 404
    )
    assert "systemUserId" in json.dumps(err)
    err = check(
        client.post("/api/v1/team-members", json={"systemUserId": u["id"], "teamId": UNKNOWN}, headers=ws.headers), 404
    )
    assert "teamId" in json.dumps(err)


def test_team_refs_422(client: httpx.Client, ws: WS) -> None:
    """Unknown managerId / parentTeamId -> 422."""
    check(client.post("/api/v1/teams", json={"name": "X", "managerId": UNKNOWN}, headers=ws.headers), 422, "managerId")
    check(
        client.post("/api/v1/teams", json={"name": "X", "parentTeamId": UNKNOWN}, headers=ws.headers),
        422,
        "parentTeamId",
    )


@pytest.mark.parametrize(
    "entries",
    [
        [
            {"name": "Q", "value": 1, "startDate": "2024-01-01", "endDate": "2024-06-01"},
            {"name": "q", "value": 2, "startDate": "2024-05-01"},
        ],
        [{"name": "Q", "value": 1, "startDate": "2024-06-01", "endDate": "2024-06-01"}],
        [{"name": "", "value": 1}],
    ],
)
def test_variables_422(client: httpx.Client, ws: WS, entries: list[dict[str, Any]]) -> None:
    """Overlapping entries (case-insensitive names), endDate <= startDate, empty names -> 422."""
    u = user(client, ws, "v@x.com")
    check(client.put(f"/api/v1/custom-variables/{u['id']}", json=entries, headers=ws.headers), 422)


def test_oversize_413(client: httpx.Client, ws: WS) -> None:
    """Over 1 MiB on a single upsert, or over 100,000 rows in users:bulk -> 413."""
    big = json.dumps({"emailAddress": "a@x.com", "role": "Participant", "firstName": "x" * (1024 * 1024)})
    check(client.post("/api/v1/users", content=big, headers=ws.headers), 413)
    rows = "[" + ",".join(["{}"] * 100_001) + "]"
    check(client.post("/api/v1/users:bulk", content=rows, headers=ws.headers), 413)


def test_credentials_401_403(client: httpx.Client, ws: WS, db: Database) -> None:
    """Missing, unknown, revoked -> 401 with WWW-Authenticate; a non-admin owner -> 403, and back after re-promotion."""
    check(client.get("/api/v1/me"), 401)
    assert "Basic" in client.get("/api/v1/me").headers["WWW-Authenticate"]
    check(client.get("/api/v1/me", headers={"X-ApiKey": "pr_AAAAAAAA_" + "B" * 40}), 401)
    actor = Actor(ws.id, uuid.UUID(ws.admin_id), "cli", "cli")
    with db.write(ws.id) as s:
        extra, row = apikeys.issue(s, actor, uuid.UUID(ws.admin_id), "spare")
    assert client.get("/api/v1/me", headers={"X-ApiKey": extra}).status_code == 200
    with db.write(ws.id) as s:
        apikeys.revoke(s, actor, row.key_id)
    # A key just used is believed for at most KEY_TTL more, timed from each request's sending (tests/conftest.py).
    refused_within_key_ttl(client, "/api/v1/me", {"X-ApiKey": extra}, 401)
    check(client.get("/api/v1/me", headers={"X-ApiKey": extra}), 401)
    second = user(client, ws, "second@x.com", role="FullAdmin")
    with db.write(ws.id) as s:
        key2, _ = apikeys.issue(s, actor, uuid.UUID(second["id"]), "k2")
    client.post("/api/v1/users", json={"emailAddress": "second@x.com", "role": "LimitedAdmin"}, headers=ws.headers)
    check(client.get("/api/v1/me", headers={"X-ApiKey": key2}), 403)
    check(client.post("/api/v1/users", content=b"{bad", headers={"X-ApiKey": key2}), 403)
    client.post("/api/v1/users", json={"emailAddress": "second@x.com", "role": "FullAdmin"}, headers=ws.headers)
    assert client.get("/api/v1/me", headers={"X-ApiKey": key2}).status_code == 200


def test_credentials_before_body(client: httpx.Client) -> None:
    """No key and a malformed body -> 401, not 400."""
    check(client.post("/api/v1/users", content=b"{nope"), 401)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_write_without_its_turn_is_503_with_retry_after(
    client: httpx.Client, ws: WS, ws_b: WS, db: Database, settings: Settings
) -> None:
    """On SQLite, while another process holds the write turn for longer than a write waits (a large import beside
    the server), every door answers a write with 503 and ``Retry-After``, in its own error format, rather than a
    500 or a request held for the whole import. Reads go on, even those of a key whose use is due to be recorded:
    that waits for no turn, and a later request records it."""
    assert client.get("/api/v1/me", headers=ws.headers).status_code == 200  # the key's use recorded for a minute
    db.write_wait = 0.3
    assert settings.sqlite_path is not None
    holder = hold_write_turn(settings.sqlite_path)
    try:
        user = {"emailAddress": "late@x.com", "role": "Participant"}
        refused = client.post("/api/v1/users", json=user, headers=ws.headers)
        assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "5")
        assert refused.json()["error"]["code"] == "serviceUnavailable"

        scim = client.post(
            f"/scim/v2/{ws.slug}/Users", headers={"Authorization": f"Bearer {ws.key}"},
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "late@x.com"},
        )  # fmt: skip
        assert (scim.status_code, scim.headers.get("Retry-After")) == (503, "5")
        assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]

        assert client.get(f"/odata/{ws.slug}/Users", headers=ws.headers).status_code == 200
        started = time.monotonic()
        assert client.get(f"/odata/{ws_b.slug}/Users", headers=ws_b.headers).status_code == 200  # due, unrecorded
        assert time.monotonic() - started < db.write_wait  # it did not wait a write's wait for the turn
        assert _last_used(db, ws_b) is None
    finally:
        holder.kill()
        holder.wait()
    assert client.get(f"/odata/{ws_b.slug}/Users", headers=ws_b.headers).status_code == 200
    assert _last_used(db, ws_b) is not None  # recorded by the first request after the turn came back
    assert client.post("/api/v1/users", json=user, headers=ws.headers).status_code == 201


def test_a_database_that_does_not_answer_is_503_with_retry_after(
    http_server: tuple[Any, str],
    client: httpx.Client,
    ws: WS,
    backend: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database outage answers 503 with ``Retry-After`` in every door, in the door's own error format, and
    nothing of the driver's error reaches the client. The outage is real: the running application's database is
    swapped for one whose every connection fails (a PostgreSQL port nothing listens on; an SQLite file whose
    directory has been replaced by a file). Each door logs the outage as one line with the driver's reason, not a
    traceback per request."""
    if backend == "sqlite":
        folder = tmp_path / "gone"
        down = Database(Settings(database_url=f"sqlite:///{folder / 'payroster.db'}", **TEST_SETTINGS))
        shutil.rmtree(folder)
        folder.write_text("not a directory")
    else:
        down = Database(Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/test", **TEST_SETTINGS))
    app = http_server[0].app
    up, app.state.db = app.state.db, down
    caplog.set_level(logging.ERROR, logger="payroster")
    try:
        api = client.get("/api/v1/me", headers=ws.headers)
        assert check(api, 503)["code"] == "serviceUnavailable"
        odata = client.get(f"/odata/{ws.slug}/Users", headers=ws.headers)
        assert odata.status_code == 503 and odata.json()["error"]["code"] == "serviceUnavailable"
        assert odata.headers["OData-Version"] == "4.0"
        scim = client.get(f"/scim/v2/{ws.slug}/Users", headers={"Authorization": f"Bearer {ws.key}"})
        assert scim.status_code == 503
        assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert [r.headers.get("Retry-After") for r in (api, odata, scim)] == ["5", "5", "5"]
        health = client.get("/healthz")
        assert (health.status_code, health.json()) == (503, {"status": "unavailable", "database": "unreachable"})
        for r in (api, odata, scim, health):
            leaks = ("Traceback", "sqlite3", "psycopg", "127.0.0.1:1", "gone")
            assert not any(leak in r.text for leak in leaks), r.text
        logged = [r for r in caplog.records if "database unavailable" in r.getMessage()]
        assert len(logged) == 3 and all(r.exc_info is None and len(r.getMessage()) > 30 for r in logged), logged
    finally:
        app.state.db.dispose()
        app.state.db = up
    assert client.get(f"/odata/{ws.slug}/Users", headers=ws.headers).status_code == 200  # back with its database


def _last_used(db: Database, ws: WS) -> object:
    with db.read() as s:
        return s.scalar(select(ApiKey.last_used_at).where(ApiKey.workspace_id == ws.id))  # its one key
