"""The audit log records each change of the article scenarios with before/after, and nothing for no-ops."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, table
from tests.conftest import WS
from tests.http.test_seed_scenarios import ARTICLE_USER


def events(db: Database, ws: WS) -> list[dict[str, Any]]:
    t = table(AuditEvent)
    with db.read() as s:
        rows = s.execute(sa.select(t).where(t.c.workspace_id == ws.id).order_by(t.c.id)).mappings().all()
    return [dict(r) | {"changes": json.loads(r["changes"])} for r in rows]


def change(event: dict[str, Any], field: str) -> tuple[Any, Any]:
    found = [c for c in event["changes"] if c["field"] == field]
    assert found, (field, event["changes"])
    return found[0]["before"], found[0]["after"]


def test_audit_of_the_scenarios(client: httpx.Client, ws: WS, db: Database) -> None:
    """Create, additive tags, deactivation, membership add; no event for duplicate add, missing remove, no-op."""
    start = len(events(db, ws))
    user = client.post("/api/v1/users", content=ARTICLE_USER, headers=ws.headers).json()
    created = events(db, ws)[start]
    assert created["action"] == "user.created"
    assert (created["actor_kind"], created["channel"]) == ("apiKey", "api")
    assert created["actor_user_id"] == uuid.UUID(ws.admin_id)
    assert (created["target_type"], created["target_id"]) == ("user", uuid.UUID(user["id"])) or created[
        "target_id"
    ] == uuid.UUID(user["id"])
    assert change(created, "emailAddress") == (None, "test@example.com")
    assert change(created, "tags") == (None, ["AE", "SouthEast"]) or change(created, "tags")[1] == ["AE", "SouthEast"]

    client.post("/api/v1/users", json={"emailAddress": "TEST@example.com", "tags": "West"}, headers=ws.headers)
    updated = events(db, ws)[-1]
    assert updated["action"] == "user.updated"
    assert change(updated, "tags") == (["AE", "SouthEast"], ["AE", "SouthEast", "West"])

    n = len(events(db, ws))
    client.post("/api/v1/users", json={"emailAddress": "test@example.com", "tags": "ae"}, headers=ws.headers)
    assert len(events(db, ws)) == n  # tag already present: no event

    client.post("/api/v1/users", json={"emailAddress": "test@example.com", "role": "Deactivated"}, headers=ws.headers)
    deactivated = events(db, ws)[-1]
    assert change(deactivated, "active") == (True, False)

    team = client.post("/api/v1/teams", json={"name": "West"}, headers=ws.headers).json()
    assert events(db, ws)[-1]["action"] == "team.created"
    pair = {"systemUserId": user["id"], "teamId": team["id"]}
    client.post("/api/v1/team-members", json=pair, headers=ws.headers)
    added = events(db, ws)[-1]
    assert added["action"] == "membership.added"
    n = len(events(db, ws))
    client.post("/api/v1/team-members", json=pair, headers=ws.headers)
    assert len(events(db, ws)) == n  # duplicate add: no event
    client.post("/api/v1/team-members:delete", json=pair, headers=ws.headers)
    assert events(db, ws)[-1]["action"] == "membership.removed"
    n = len(events(db, ws))
    client.post("/api/v1/team-members:delete", json=pair, headers=ws.headers)
    assert len(events(db, ws)) == n  # missing remove: no event
