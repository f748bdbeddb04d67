"""Every JSON API route with workspace B's key against workspace A's ids: the answer of an unknown id, and
A's data untouched."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from payroster.app import create_app
from payroster.config import Settings
from payroster.services import exports
from tests.conftest import WS

UNKNOWN = "00000000-0000-7000-8000-000000000000"

# (method, path template, body template, expected status); {user}/{team} are workspace A's ids.
MATRIX: list[tuple[str, str, Any, int]] = [
    ("GET", "/api/v1/users/{user}", None, 404),
    ("PATCH", "/api/v1/users/{user}", {"firstName": "Hacked"}, 404),
    ("DELETE", "/api/v1/users/{user}/tags?value=AE", None, 404),
    ("DELETE", "/api/v1/users/{user}/aliases?value=ID-123", None, 404),
    ("POST", "/api/v1/users", {"emailAddress": "x@b.com", "role": "Participant", "directManagerId": "{user}"}, 422),
    (
        "POST",
        "/api/v1/users:bulk",
        [{"emailAddress": "y@b.com", "role": "Participant", "directManagerId": "{user}"}],
        422,
    ),
    ("GET", "/api/v1/teams/{team}", None, 404),
    ("PATCH", "/api/v1/teams/{team}", {"name": "Hacked"}, 404),
    ("DELETE", "/api/v1/teams/{team}", None, 404),
    ("POST", "/api/v1/teams", {"name": "B team", "parentTeamId": "{team}"}, 422),
    ("POST", "/api/v1/team-members", {"systemUserId": "{user}", "teamId": "{team}"}, 404),
    ("POST", "/api/v1/team-members:delete", {"systemUserId": "{user}", "teamId": "{team}"}, 404),
    ("DELETE", "/api/v1/teams/{team}/members/{user}", None, 404),
    ("DELETE", "/api/v1/teams/{team}/members/{user}?validTo=2026-03-01", None, 404),
    ("POST", "/api/v1/team-members", {"systemUserId": "{user}", "teamId": "{team}", "validFrom": "2026-01-01"}, 404),
    (
        "POST",
        "/api/v1/team-members:delete",
        {"systemUserId": "{user}", "teamId": "{team}", "validTo": "2026-03-01"},
        404,
    ),
    ("DELETE", "/api/v1/team-members/{period}", None, 404),
    ("GET", "/api/v1/teams/{team}/members", None, 404),
    ("GET", "/api/v1/teams/{team}/members?asOf=2026-02-28", None, 404),
    ("GET", "/api/v1/teams/{team}/timeline", None, 404),
    ("GET", "/api/v1/users/{user}/timeline", None, 404),
    ("GET", "/api/v1/users/{user}?asOf=2026-02-28", None, 404),
    ("GET", "/api/v1/teams/{team}?asOf=2026-02-28", None, 404),
    ("PATCH", "/api/v1/users/{user}", {"directManagerId": None, "effectiveDate": "2020-01-01"}, 404),
    ("PATCH", "/api/v1/teams/{team}", {"parentTeamId": None, "effectiveDate": "2020-01-01"}, 404),
    ("POST", "/api/v1/teams", {"name": "D team", "parentTeamId": "{team}", "effectiveDate": "2020-01-01"}, 422),
    ("GET", "/api/v1/custom-variables/{user}", None, 404),
    ("PUT", "/api/v1/custom-variables/{user}", [{"name": "Q", "value": 9}], 404),
    ("POST", "/api/v1/custom-variables/{user}", [{"name": "Q", "value": 9}], 404),
    ("POST", "/app/Api/SetUser", {"emailAddress": "z@b.com", "role": "Participant", "directManagerId": "{user}"}, 422),
    ("POST", "/app/Api/SetTeam", {"name": "C team", "managerId": "{user}"}, 422),
    ("POST", "/app/Api/CreateTeamMember", {"systemUserId": "{user}", "teamId": "{team}"}, 404),
    ("POST", "/app/Api/DeleteTeamMember", {"systemUserId": "{user}", "teamId": "{team}"}, 404),
    ("GET", "/app/Api/GetCustomProperties?id={user}", None, 404),
    ("POST", "/app/Api/SetCustomProperties?id={user}", [{"name": "Q", "value": 9}], 404),
]
# The change feed takes no id: its cursors are bound to their workspace (tests/http/test_changes.py).
NOT_ID_ROUTES = {"/api/v1/me", "/api/v1/openapi.json", "/api/docs", "/api/docs/oauth2-redirect", "/api/v1/changes"}


def fill(template: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(template)
    for k, v in ids.items():
        text = text.replace("{" + k + "}", v)
    return json.loads(text)


# The exports take ids and names only as filters, which select nothing of another workspace: an answer of its
# own kind (a file), tested in tests/http/test_exports.py::test_another_workspace_never_sees_a_row.
EXPORTS = {f"/api/v1/exports/{kind}.{{fmt}}" for kind in exports.KINDS}
# The import door takes names and e-mails, found in the key's workspace only: another workspace's rows are left
# untouched (tests/http/test_import_door.py::test_roles_and_workspaces).
IMPORTS = {"/api/v1/imports/{kind}"}


def test_matrix_covers_every_route() -> None:
    """Adding a route without adding it here fails this test."""
    app = create_app(Settings(database_url="sqlite:///:memory:", secret_key="x"))
    routes = {
        (m, r.path)
        for r in app.routes
        if isinstance(r, APIRoute)
        and r.path.startswith(("/api/v1", "/app/Api"))
        and r.path not in NOT_ID_ROUTES | EXPORTS | IMPORTS
        for m in r.methods
    }
    covered = {
        (m, p.split("?")[0].replace("{user}", "{x}").replace("{team}", "{x}").replace("{period}", "{x}"))
        for m, p, _, _ in MATRIX
    }
    normalised = {
        (m, p.replace("{user_id}", "{x}").replace("{team_id}", "{x}").replace("{target_id}", "{x}")
         .replace("{period_id}", "{x}"))
        for m, p in routes
    }  # fmt: skip
    missing = normalised - covered - {("GET", "/api/v1/users"), ("GET", "/api/v1/teams")}
    assert not missing, missing


@pytest.fixture
def a_data(client: httpx.Client, ws: WS) -> dict[str, str]:
    """Workspace A's user (tag, alias, variables) and team with a membership."""
    user = client.post(
        "/api/v1/users",
        json={
            "emailAddress": "secret@a.com",
            "role": "Participant",
            "firstName": "Alice",
            "tags": "AE",
            "aliases": "ID-123",
        },
        headers=ws.headers,
    ).json()
    team = client.post("/api/v1/teams", json={"name": "A team"}, headers=ws.headers).json()
    pair = {"systemUserId": user["id"], "teamId": team["id"]}
    client.post("/api/v1/team-members", json={**pair, "validFrom": "2025-01-01", "validTo": "2025-02-01"},
                headers=ws.headers)  # fmt: skip
    period = client.post("/api/v1/team-members", json=pair, headers=ws.headers).json()["periodId"]
    client.put(f"/api/v1/custom-variables/{user['id']}", json=[{"name": "Q", "value": 1}], headers=ws.headers)
    return {"user": user["id"], "team": team["id"], "period": period}


@pytest.mark.parametrize(("method", "path", "body", "status"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_foreign_ids_answer_like_unknown(
    client: httpx.Client, ws: WS, ws_b: WS, a_data: dict[str, str], method: str, path: str, body: Any, status: int
) -> None:
    """B's key on A's ids = B's key on unknown ids; A's data unchanged; nothing of A in the answer."""
    client.headers["X-Request-ID"] = "same-for-both"  # the one part of an error body that is the request's own
    before = client.get(f"/api/v1/users/{a_data['user']}", headers=ws.headers).json()
    foreign = client.request(method, fill(path, a_data), json=fill(body, a_data), headers=ws_b.headers)
    unknown = client.request(
        method,
        fill(path, {"user": UNKNOWN, "team": UNKNOWN, "period": UNKNOWN}),
        json=fill(body, {"user": UNKNOWN, "team": UNKNOWN, "period": UNKNOWN}),
        headers=ws_b.headers,
    )
    assert foreign.status_code == unknown.status_code == status, foreign.text
    assert foreign.json() == unknown.json()
    assert "secret@a.com" not in foreign.text and "Alice" not in foreign.text
    after = client.get(f"/api/v1/users/{a_data['user']}", headers=ws.headers).json()
    assert after == before
    assert client.get(f"/api/v1/teams/{a_data['team']}", headers=ws.headers).json()["name"] == "A team"
    variables = client.get(f"/api/v1/custom-variables/{a_data['user']}", headers=ws.headers).json()
    assert [v["value"] for v in variables] == [1]
    member = client.post(
        "/api/v1/team-members", json={"systemUserId": a_data["user"], "teamId": a_data["team"]}, headers=ws.headers
    )
    assert member.json()["created"] is False
    timeline = client.get(f"/api/v1/users/{a_data['user']}/timeline", headers=ws.headers).json()
    assert [(t["validFrom"], t["periodId"] == a_data["period"]) for t in timeline["teams"]] == [
        ("2025-01-01", False), (member.json()["validFrom"], True)]  # fmt: skip
