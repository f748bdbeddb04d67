"""An identity provider's lookups (``userName eq``, ``emails eq``, ``externalId eq``) over a populated
workspace: the right users, found by index rather than by walking the workspace (both databases)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from payroster.db.engine import Database
from payroster.services import bulk
from payroster.services.context import Actor
from tests.conftest import WS
from tests.scim.conftest import EXT, Scim

POPULATION = 3_000  # users made by the JSON API's bulk: no userName, so their e-mail is their userName


@pytest.fixture
def populated(scim: Scim, db: Database, ws: WS) -> dict[str, str]:
    """A workspace of 3,000 API users and three SCIM ones; their ids by name."""
    rows = [{"emailAddress": f"api{i}@x.com", "role": "Participant"} for i in range(POPULATION)]
    bulk.run(db, Actor(ws.id, None, "cli", "import"), bulk.parse_rows(rows))
    ids = {
        "named": scim.create_user("Jo.Named", emails=[{"value": "jo@x.com", "primary": True}])["id"],
        "external": scim.create_user("ext@x.com", externalId="EXT-42")["id"],
        "plain": scim.create_user("plain@x.com")["id"],
    }
    listed = scim.get("Users", filter='userName eq "api1234@x.com"').json()["Resources"]
    ids["api"] = listed[0]["id"]
    return ids


def found(scim: Scim, filter_: str) -> list[str]:
    r = scim.get("Users", filter=filter_, count="50")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalResults"] == len(body["Resources"])
    return sorted(u["id"] for u in body["Resources"])


def test_lookups_find_the_right_users(scim: Scim, populated: dict[str, str]) -> None:
    assert found(scim, 'userName eq "jo.named"') == [populated["named"]]  # caseExact false
    assert found(scim, 'userName eq "jo@x.com"') == []  # a stored userName hides the e-mail
    assert found(scim, 'emails eq "JO@x.com"') == [populated["named"]]
    assert found(scim, 'emails[type eq "work"].value eq "jo@x.com"') == [populated["named"]]
    assert found(scim, 'userName eq "API1234@x.com"') == [populated["api"]]  # no userName: the e-mail
    assert found(scim, 'externalId eq "EXT-42"') == [populated["external"]]
    assert found(scim, 'externalId eq "ext-42"') == []  # externalId is caseExact
    either = 'userName eq "plain@x.com" or externalId eq "EXT-42"'
    assert found(scim, either) == sorted([populated["plain"], populated["external"]])
    assert found(scim, 'userName eq "plain@x.com" and active eq false') == []
    assert found(scim, 'userName eq "nobody@x.com"') == []
    not_named = scim.get("Users", filter='not (userName eq "jo.named")', count="0").json()
    assert not_named["totalResults"] == POPULATION + 1 + 2  # the admin, the other two SCIM users


@pytest.mark.parametrize(
    "filter_",
    ['userName eq "api1234@x.com"', 'userName eq "jo.named"', 'emails eq "api77@x.com"', 'externalId eq "EXT-42"'],
)
def test_a_lookup_reads_its_users_by_index(scim: Scim, db: Database, populated: dict[str, str], filter_: str) -> None:
    """The listing's ``ORDER BY id LIMIT`` once made SQLite walk the whole workspace in id order for each
    lookup (5 ms at 10,000 users, growing with it): the plan must reach the user through a key's index."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("SELECT users.workspace_id, users.id") and "LIMIT" in statement:
            prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
            rows = cursor.connection.execute(prefix + statement, parameters).fetchall()
            plans.append("\n".join(str(r[-1] if db.is_sqlite else r[0]) for r in rows))

    event.listen(db.engine, "before_cursor_execute", explain)
    try:
        assert len(found(scim, filter_)) == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", explain)
    assert len(plans) == 1
    plan = plans[0]
    if db.is_sqlite:
        # The page by primary key (workspace and id), its ids from the key's own index.
        assert "(workspace_id=? AND id=?)" in plan, plan
        assert any(f"(workspace_id=? AND {k}=?)" in plan for k in ("user_name_key", "email_key", "external_id")), plan
        assert "SCAN users" not in plan, plan
    else:
        assert "Seq Scan on users" not in plan, plan
        conds = [line for line in plan.splitlines() if "Index Cond" in line]
        assert any(k in c for c in conds for k in ("user_name_key", "email_key", "external_id")), plan


def test_a_user_resource_carries_its_tags_aliases_and_groups_in_order(scim: Scim) -> None:
    """Tags and aliases in the order they were given, groups by name with their ids and references, read
    together for a single user and for a page of users."""
    ext = {"tags": ["Zulu", "alpha", "Mike"], "aliases": ["J-2", "J-1"]}
    made = scim.create_user("lists@x.com", **{EXT: ext})
    other = scim.create_user("other@x.com", **{EXT: {"tags": ["Solo"]}})
    bravo = scim.create_group("Bravo", [made["id"]])
    alpha = scim.create_group("Alpha", [made["id"], other["id"]])
    one = scim.get(f"Users/{made['id']}").json()
    page = {u["id"]: u for u in scim.get("Users", filter='userName sw "" and active eq true').json()["Resources"]}
    for user in (one, page[made["id"]]):
        assert user[EXT]["tags"] == ["Zulu", "alpha", "Mike"] and user[EXT]["aliases"] == ["J-2", "J-1"]
        assert [(g["value"], g["display"]) for g in user["groups"]] == [(alpha["id"], "Alpha"), (bravo["id"], "Bravo")]
        assert all(g["$ref"].endswith(f"/Groups/{g['value']}") for g in user["groups"])
    assert page[other["id"]][EXT]["tags"] == ["Solo"] and "aliases" not in page[other["id"]][EXT]
    assert [g["display"] for g in page[other["id"]]["groups"]] == ["Alpha"]
