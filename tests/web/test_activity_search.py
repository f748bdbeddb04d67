"""The Activity Log's search over HTTP on SQLite and PostgreSQL (README: Web app): a person by name with the teams
they joined, a team by its exact name, an action from the list. The browser journey is in
test_spreadsheet_flows.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from payroster.db.engine import Database
from payroster.services import memberships, teams, users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user
from tests.conftest import WS
from tests.web.conftest import http_login, make_user


@pytest.fixture
def admin(base_url: str, ws: WS, db: Database) -> Iterator[httpx.Client]:
    """A signed-in FullAdmin's client."""
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert http_login(c, "chief@example.com").status_code == 303
        yield c


def test_a_person_by_name_a_team_by_exact_name(admin: httpx.Client, ws: WS, db: Database) -> None:
    actor = Actor(ws.id, None, "cli", "cli")
    with db.write() as s:
        made = {}
        for name in ("West", "East", "SouthEast"):
            made[name] = teams.upsert(s, actor, parse_team({"name": name}, field_pointer())[0])[0].id
        for first, last in (("Ann", "Lee"), ("Bo", "Chen")):
            raw = {
                "emailAddress": f"{first.lower()}@example.com",
                "firstName": first,
                "lastName": last,
                "role": "Participant",
            }
            uid = users.upsert(s, actor, parse_user(raw, field_pointer())[0])[0].user.id
            memberships.add(s, actor, uid, made["West"])
    page = admin.get("/settings/activity", params={"target": "Ann Lee"}).text
    assert "Ann Lee joined team West" in page and "Ann Lee was added" in page
    assert "Bo Chen" not in page  # the same team's other member is another story
    east = admin.get("/settings/activity", params={"target": "east"}).text
    assert "Team East created" in east and "SouthEast" not in east.split("<table", 1)[-1]
    joined = admin.get("/settings/activity", params={"action": "membership.added"}).text
    assert joined.count("joined team West") == 2 and "was added" not in joined
