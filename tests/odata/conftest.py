"""Seed data for the OData tests: a workspace with users, teams, memberships and variables, made through the
JSON API of the live server (so the feed reads what the services wrote)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import WS


def oasis_dir() -> Path:
    """The OASIS test data (schemas, ABNF cases) the project is given beside its checkout, not vendored."""
    candidates = [Path(os.environ["PAYROSTER_OASIS_DIR"])] if os.environ.get("PAYROSTER_OASIS_DIR") else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "testdata" / "oasis-odata" for p in here.parents]
    candidates.append(Path("/work/shared/testdata/oasis-odata"))
    for candidate in candidates:
        if (candidate / "edm.xsd").exists():
            return candidate
    raise FileNotFoundError("OASIS OData test data not found; set PAYROSTER_OASIS_DIR")


TAGS = ["AE", "SE", "West", "East", "50%_off", "a_b", "O'Brien", "back\\slash", "Été"]


@dataclass
class Seeded:
    """What was written, for expectations."""

    ws: WS
    users: list[dict[str, Any]]
    teams: list[dict[str, Any]]
    members: list[tuple[str, str]]

    @property
    def root(self) -> str:
        """The service root path."""
        return f"/odata/{self.ws.slug}/"


def user_rows(n: int) -> list[dict[str, Any]]:
    """``n`` users with varied names, roles, tags (some with % _ ' \\), and some nulls."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "emailAddress": f"person{i:05d}@example.com",
            "role": ["Participant", "LimitedAdmin", "FullAdmin"][i % 3] if i % 11 else "Deactivated",
            "tags": [TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]],
        }
        if i % 4:
            row["lastName"] = ["Smith", "smith", "Nguyen", "O'Neil", "50%", "x_y", "Zed"][i % 7]
        if i % 5:
            row["firstName"] = f"Name{i % 13}"
        if i % 6 == 0:
            row["aliases"] = [f"ID-{i}"]
        rows.append(row)
    return rows


def seed(client: httpx.Client, ws: WS, users: int = 60, teams: int = 4, detailed: bool = True) -> Seeded:
    """Write the seed through the API and return it as the API answered.

    ``detailed=False`` (large seeds) keeps only ids and e-mails and gives memberships to the first 60 users.
    """
    r = client.post("/api/v1/users:bulk", json=user_rows(users), headers=ws.headers)
    assert r.status_code == 200, r.text
    made = []
    for i in range(teams):
        body: dict[str, Any] = {"name": f"Team {i}", "description": None if i % 2 else f"desc {i}"}
        if i:
            body["parentTeamId"] = made[0]["id"]
        t = client.post("/api/v1/teams", json=body, headers=ws.headers)
        assert t.status_code == 201, t.text
        made.append(t.json())
    ids = [u["id"] for u in r.json()["users"]]
    members = []
    for i, uid in enumerate(ids if detailed else ids[:60]):
        for j, team in enumerate(made):
            if (i + j) % 3 == 0:
                m = client.post(
                    "/api/v1/team-members", json={"systemUserId": uid, "teamId": team["id"]}, headers=ws.headers
                )
                assert m.status_code == 201, m.text
                members.append((team["id"], uid))
    for uid, value in ((ids[0], "1.1"), (ids[1], "12345678901234567890.123456789"), (ids[2], '"text %_"')):
        entries = f'[{{"name": "Quota", "value": {value}, "startDate": "2024-01-01", "endDate": "2025-01-01"}}]'
        v = client.put(f"/api/v1/custom-variables/{uid}", content=entries, headers=ws.headers)
        assert v.status_code == 200, v.text
    if not detailed:
        brief = [{"id": u["id"], "emailAddress": u["emailAddress"]} for u in r.json()["users"]]
        return Seeded(ws, [{"id": ws.admin_id, "emailAddress": "admin@example.com"}, *brief], made, members)
    full = [client.get(f"/api/v1/users/{uid}", headers=ws.headers).json() for uid in [ws.admin_id, *ids]]
    return Seeded(ws, full, made, members)


@pytest.fixture
def feed(ws: WS) -> Seeded:
    """Workspace A with only its admin: for tests of errors and headers."""
    return Seeded(ws, [], [], [])


@pytest.fixture
def seeded(client: httpx.Client, ws: WS) -> Seeded:
    """Workspace A with 60 users, 4 teams, memberships and variables."""
    return seed(client, ws)
