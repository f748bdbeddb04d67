"""The drop-in /app/Api paths as a C# WebClient.UploadString client uses them: no Content-Type, Windows-1252."""

from __future__ import annotations

import httpx

from tests.conftest import WS
from tests.http.test_seed_scenarios import ARTICLE_USER

VOLATILE = {"id", "createdAt", "updatedAt"}


def raw_post(client: httpx.Client, path: str, body: bytes, ws: WS, **params: str) -> httpx.Response:
    """A POST carrying no Content-Type header at all."""
    request = client.build_request("POST", path, content=body, headers=ws.headers, params=params or None)
    request.headers.pop("Content-Type", None)
    assert "content-type" not in request.headers
    return client.send(request)


def test_setuser_without_content_type_matches_v1(client: httpx.Client, ws: WS, ws_b: WS) -> None:
    """The article's exact body to /app/Api/SetUser with no Content-Type = the same result as /api/v1/users."""
    compat = raw_post(client, "/app/Api/SetUser", ARTICLE_USER.encode(), ws)
    native = client.post(
        "/api/v1/users", content=ARTICLE_USER, headers={**ws_b.headers, "Content-Type": "application/json"}
    )
    assert compat.status_code == native.status_code == 201
    strip = lambda b: {k: v for k, v in b.items() if k not in VOLATILE}  # noqa: E731
    assert strip(compat.json()) == strip(native.json())
    again = raw_post(client, "/app/Api/SetUser", b'{"EmailAddress": "TEST@example.com", "Tags": "West"}', ws)
    assert again.status_code == 200
    assert again.json()["id"] == compat.json()["id"]
    assert again.json()["tags"] == ["AE", "SouthEast", "West"]


def test_windows_1252_and_text_plain(client: httpx.Client, ws: WS) -> None:
    """A non-UTF-8 body is read as Windows-1252; text/plain is JSON too."""
    body = '{"emailAddress": "jose@example.com", "role": "Participant", "firstName": "José"}'.encode("cp1252")
    r = raw_post(client, "/app/Api/SetUser", body, ws)
    assert r.status_code == 201 and r.json()["firstName"] == "José"
    plain = client.post(
        "/app/Api/SetUser",
        content=b'{"emailAddress": "p@example.com", "role": "Participant"}',
        headers={**ws.headers, "Content-Type": "text/plain"},
    )
    assert plain.status_code == 201


def test_team_member_paths(client: httpx.Client, ws: WS) -> None:
    """CreateTeamMember / DeleteTeamMember without Content-Type behave as the v1 paths, no-ops included."""
    user = raw_post(client, "/app/Api/SetUser", ARTICLE_USER.encode(), ws).json()
    team = raw_post(client, "/app/Api/SetTeam", b'{"name": "West"}', ws)
    assert team.status_code == 201
    pair = f'{{"systemUserId": "{user["id"]}", "teamId": "{team.json()["id"]}"}}'.encode()
    one, two = (raw_post(client, "/app/Api/CreateTeamMember", pair, ws) for _ in range(2))
    assert (one.status_code, one.json()["created"]) == (201, True)
    assert (two.status_code, two.json()["created"]) == (200, False)
    gone, again = (raw_post(client, "/app/Api/DeleteTeamMember", pair, ws) for _ in range(2))
    assert gone.json()["deleted"] is True and again.json()["deleted"] is False
    assert again.status_code == 200


def test_custom_properties_json_string_and_exact_decimals(client: httpx.Client, ws: WS) -> None:
    """SetCustomProperties takes the array or the array as a JSON string; decimals keep their digits."""
    user = raw_post(client, "/app/Api/SetUser", ARTICLE_USER.encode(), ws).json()
    entries = '[{"name": "Rate", "value": 12345678901234567890.123456789, "startDate": "2024-01-01"}]'
    as_string = ('"' + entries.replace('"', '\\"') + '"').encode()
    r = raw_post(client, "/app/Api/SetCustomProperties", as_string, ws, id=user["id"])
    assert r.status_code == 200, r.text
    got = client.get("/app/Api/GetCustomProperties", params={"id": user["id"]}, headers=ws.headers)
    assert "12345678901234567890.123456789" in got.text
    assert '"startDate": "2024-01-01T00:00:00"' in got.text or '"startDate":"2024-01-01T00:00:00"' in got.text
    r = raw_post(client, "/app/Api/SetCustomProperties", b'[{"name": "Rate", "value": 1.1}]', ws, id=user["id"])
    assert r.status_code == 200
    assert "1.1" in client.get(f"/api/v1/custom-variables/{user['id']}", headers=ws.headers).text
