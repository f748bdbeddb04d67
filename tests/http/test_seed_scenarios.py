"""The help articles' scenarios (../shared/seeds/), end to end over HTTP."""

from __future__ import annotations

import httpx

from tests.conftest import WS

# The exact body of "How Can I Programmatically Create Or Update Users?", Step 2.
ARTICLE_USER = (
    '{"emailAddress": "test@example.com", "role": "FullAdmin", "firstName": "Bob", "lastName": "Smith", '
    '"tags": "AE|SouthEast", "aliases": "ID-123"}'
)


def test_article_body_creates_user(client: httpx.Client, ws: WS) -> None:
    """The article's JSON creates a user (201) with split tags and aliases."""
    r = client.post("/api/v1/users", content=ARTICLE_USER, headers={**ws.headers, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["emailAddress"] == "test@example.com"
    assert body["role"] == "FullAdmin" and body["active"] is True
    assert (body["firstName"], body["lastName"]) == ("Bob", "Smith")
    assert body["tags"] == ["AE", "SouthEast"]
    assert body["aliases"] == ["ID-123"]


def test_same_email_other_case_updates_and_adds_tags(client: httpx.Client, ws: WS) -> None:
    """Posting the same e-mail in other case with tags 'West' updates the same user; tags are additive."""
    first = client.post("/api/v1/users", content=ARTICLE_USER, headers=ws.headers).json()
    r = client.post("/api/v1/users", json={"emailAddress": "TEST@Example.COM", "tags": "West"}, headers=ws.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"]
    assert r.json()["tags"] == ["AE", "SouthEast", "West"]
    assert r.json()["aliases"] == ["ID-123"]


def test_deactivated_keeps_user_readable(client: httpx.Client, ws: WS) -> None:
    """role 'Deactivated' deactivates; the user stays readable with its stored role kept."""
    created = client.post(
        "/api/v1/users", json={"emailAddress": "p@example.com", "role": "LimitedAdmin"}, headers=ws.headers
    ).json()
    r = client.post("/api/v1/users", json={"emailAddress": "p@example.com", "role": "Deactivated"}, headers=ws.headers)
    assert r.status_code == 200
    assert r.json()["role"] == "Deactivated" and r.json()["active"] is False
    again = client.get(f"/api/v1/users/{created['id']}", headers=ws.headers)
    assert again.status_code == 200 and again.json()["active"] is False
    back = client.post("/api/v1/users", json={"emailAddress": "p@example.com", "firstName": "P"}, headers=ws.headers)
    assert back.json()["active"] is False  # no role given: stays deactivated
    react = client.post(
        "/api/v1/users", json={"emailAddress": "p@example.com", "role": "participant"}, headers=ws.headers
    )
    assert react.json()["role"] == "Participant" and react.json()["active"] is True


def test_membership_add_twice_and_remove_missing(client: httpx.Client, ws: WS) -> None:
    """Adding a user to a team twice gives one membership and no error; removing a missing one is no error."""
    user = client.post("/api/v1/users", content=ARTICLE_USER, headers=ws.headers).json()
    team = client.post("/api/v1/teams", json={"name": "West"}, headers=ws.headers).json()
    pair = {"systemUserId": user["id"], "teamId": team["id"]}
    one = client.post("/api/v1/team-members", json=pair, headers=ws.headers)
    two = client.post("/api/v1/team-members", json=pair, headers=ws.headers)
    assert (one.status_code, one.json()["created"]) == (201, True)
    assert (two.status_code, two.json()["created"]) == (200, False)
    gone = client.post("/api/v1/team-members:delete", json=pair, headers=ws.headers)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    again = client.post("/api/v1/team-members:delete", json=pair, headers=ws.headers)
    assert again.status_code == 200 and again.json()["deleted"] is False


def test_foreign_ids_refused_like_unknown(client: httpx.Client, ws: WS, ws_b: WS) -> None:
    """Ids from another workspace are refused exactly like unknown ids."""
    client.headers["X-Request-ID"] = "same-for-both"  # the one part of an error body that is the request's own
    foreign_user = client.post("/api/v1/users", content=ARTICLE_USER, headers=ws_b.headers).json()
    foreign_team = client.post("/api/v1/teams", json={"name": "B-team"}, headers=ws_b.headers).json()
    own_team = client.post("/api/v1/teams", json={"name": "A-team"}, headers=ws.headers).json()
    unknown = "00000000-0000-7000-8000-000000000000"
    r_foreign = client.get(f"/api/v1/users/{foreign_user['id']}", headers=ws.headers)
    r_unknown = client.get(f"/api/v1/users/{unknown}", headers=ws.headers)
    assert r_foreign.status_code == r_unknown.status_code == 404
    assert r_foreign.json() == r_unknown.json()
    m_foreign = client.post(
        "/api/v1/team-members", json={"systemUserId": foreign_user["id"], "teamId": own_team["id"]}, headers=ws.headers
    )
    m_unknown = client.post(
        "/api/v1/team-members", json={"systemUserId": unknown, "teamId": own_team["id"]}, headers=ws.headers
    )
    assert m_foreign.status_code == m_unknown.status_code == 404
    assert m_foreign.json() == m_unknown.json()
    t_foreign = client.get(f"/api/v1/teams/{foreign_team['id']}", headers=ws.headers)
    assert t_foreign.status_code == 404
