"""Collections written by the database (json_object / json_build_object) say exactly what the Python writer
says: every entity set, read both ways, compared entity by entity."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import WS

FULL = {"$format": "application/json;odata.metadata=full"}  # full metadata keeps the Python writer


def _plain(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if "@" not in k}


def test_database_json_equals_the_python_writer(client: httpx.Client, ws: WS) -> None:
    h = ws.headers
    made = []
    for i, (tags, aliases) in enumerate([(["AE", "SouthEast"], ["ID-1"]), (["SE"], []), ([], ["Z-9", "Z-1"])]):
        body = {"emailAddress": f"p{i}@example.com", "role": "Participant", "firstName": f"Zoë {i}",
                "lastName": "O'Brien \"q\" \\", "tags": tags, "aliases": aliases}  # fmt: skip
        r = client.post("/api/v1/users", headers=h, json=body)
        made.append(r.json()["id"])
    client.post("/api/v1/users", headers=h, json={"emailAddress": "p1@example.com", "role": "Deactivated"})
    team = client.post(
        "/api/v1/teams", headers=h, json={"name": "Reds", "managerId": made[0], "managerCanViewCredits": True}
    ).json()
    client.post("/api/v1/team-members", headers=h, json={"systemUserId": made[0], "teamId": team["id"]})
    client.put(f"/api/v1/custom-variables/{made[0]}", headers=h,
               json=[{"name": "Region", "value": "West", "startDate": "2026-01-01", "endDate": None}])  # fmt: skip
    root = f"/odata/{ws.slug}/"
    for entity_set in ("Users", "Teams", "TeamMembers", "CustomVariables", "AuditEvents"):
        fast = client.get(root + entity_set, headers=h)
        slow = client.get(root + entity_set, headers=h, params=FULL)
        assert fast.status_code == slow.status_code == 200
        got, want = fast.json()["value"], [_plain(e) for e in slow.json()["value"]]
        assert got == want, entity_set
        assert got, entity_set
    users = {u["emailAddress"]: u for u in client.get(root + "Users", headers=h).json()["value"]}
    assert users["p0@example.com"]["tags"] == ["AE", "SouthEast"] and users["p1@example.com"]["tags"] == ["SE"]
    assert users["p2@example.com"]["aliases"] == ["Z-9", "Z-1"] and users["p1@example.com"]["role"] == "Deactivated"
    picked = client.get(
        root + "Users",
        headers=h,
        params={"$select": "tags,emailAddress", "$filter": "emailAddress eq 'p0@example.com'"},
    )
    assert picked.json()["value"] == [{"emailAddress": "p0@example.com", "tags": ["AE", "SouthEast"]}]
