"""An identity provider's lookups (``userName eq``, ``emails eq``, ``externalId eq``) over a populated
workspace: the right users, found by index rather than by walking the workspace (both databases)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from payroster.db.engine import Database
from payroster.scim.filters import KEY_LOOKUPS
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


@contextlib.contextmanager
def _listing_plans(db: Database) -> Iterator[list[str]]:
    """The plans of the listing statements the engine runs meanwhile (a listing ends in ``LIMIT``)."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.startswith("SELECT users.workspace_id, users.id") and "LIMIT" in statement:
            plans.append(_plan(db, cursor.connection, statement, parameters))

    event.listen(db.engine, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(db.engine, "before_cursor_execute", explain)


def _plan(db: Database, driver: Any, statement: str, parameters: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    rows = driver.execute(prefix + statement, parameters).fetchall()
    return "\n".join(str(r[-1] if db.is_sqlite else r[0]) for r in rows)


def _assert_by_index(db: Database, plan: str) -> None:
    if db.is_sqlite:
        # The page by primary key (workspace and id), its ids from the key's own index.
        assert "(workspace_id=? AND id=?)" in plan, plan
        assert any(f"(workspace_id=? AND {k}=?)" in plan for k in ("user_name_key", "email_key", "external_id")), plan
        assert "SCAN users" not in plan, plan
    else:
        assert "Seq Scan on users" not in plan, plan
        conds = [line for line in plan.splitlines() if "Index Cond" in line]
        assert any(k in c for c in conds for k in ("user_name_key", "email_key", "external_id")), plan


@pytest.mark.parametrize("filter_", ['externalId eq "EXT-42"', 'userName eq "jo.named" and active eq true'])
def test_a_listing_reads_its_users_by_index(scim: Scim, db: Database, populated: dict[str, str], filter_: str) -> None:
    """The listing's ``ORDER BY id LIMIT`` once made SQLite walk the whole workspace in id order for each
    lookup (5 ms at 10,000 users, growing with it): the plan must reach the user through a key's index."""
    with _listing_plans(db) as plans:
        assert len(found(scim, filter_)) == 1
    assert len(plans) == 1
    _assert_by_index(db, plans[0])


@pytest.mark.parametrize(
    ("filter_", "index"),
    [('userName eq "api1234@x.com"', "userName"), ('userName eq "jo.named"', "userName"),
     ('emails eq "api77@x.com"', "emails"), ('emails.value eq "API77@x.com"', "emails")],
)  # fmt: skip
def test_a_unique_key_lookup_runs_its_prepared_statement_by_index(
    scim: Scim, db: Database, ws: WS, populated: dict[str, str], filter_: str, index: str
) -> None:
    """``userName eq`` and ``emails eq`` skip the listing's statement: no listing goes through the engine, and the
    statement that runs instead reaches the user through the key's index."""
    with _listing_plans(db) as plans:
        assert len(found(scim, filter_)) == 1
    assert plans == []
    _assert_from_key_indexes(db, _lookup_plan(db, ws, index, filter_.split('"')[1].lower()))


def _lookup_plan(db: Database, ws: WS, index: str, key: str) -> str:
    """The plan of a :data:`KEY_LOOKUPS` statement as the server runs it: on PostgreSQL the generic plan it keeps
    for a prepared statement (psycopg prepares a statement at its fifth execution on a connection)."""
    compiled = KEY_LOOKUPS[index].statement.compile(dialect=db.engine.dialect)
    with db.engine.connect() as conn:
        driver = conn.connection.driver_connection
        if db.is_sqlite:
            values = {"ws": ws.id.hex, "key": key}  # as SQLAlchemy's Uuid stores it
            return _plan(db, driver, compiled.string, tuple(values[k] for k in compiled.positiontup or ()))
        driver.execute("SET plan_cache_mode = force_generic_plan")
        driver.execute("PREPARE lookup AS " + compiled.string.replace("%(ws)s", "$1").replace("%(key)s", "$2"))
        try:
            rows = driver.execute(f"EXPLAIN EXECUTE lookup('{ws.id}', '{key}')").fetchall()
        finally:
            driver.execute("DEALLOCATE lookup")
            driver.execute("RESET plan_cache_mode")
        return "\n".join(r[0] for r in rows)


def _assert_from_key_indexes(db: Database, plan: str) -> None:
    """Every read of ``users`` in a lookup's plan searches a unique key's index, none walks the workspace."""
    reads = [line for line in plan.splitlines() if "users" in line and ("SEARCH" in line or "SCAN" in line
             or "Scan" in line)]  # fmt: skip
    assert reads, plan
    if db.is_sqlite:
        assert all(re.search(r"\(workspace_id=\? AND (user_name_key|email_key)=\?\)", r) for r in reads), plan
    else:
        conds = [line for line in plan.splitlines() if "Index Cond" in line]
        assert len(conds) == len(reads), plan
        assert all("user_name_key" in c or "email_key" in c for c in conds), plan


@pytest.mark.parametrize("index", ["userName", "emails"])
def test_a_lookup_reads_by_key_on_a_table_never_analysed(scim: Scim, db: Database, ws: WS, index: str) -> None:
    """A workspace an identity provider has just filled, before any ANALYZE (PostgreSQL's autovacuum comes round
    later; this machine's runs without it): the planner knows nothing of the table's size. The lookup's plan, as
    PostgreSQL keeps it for a prepared statement (generic), still reads only the key's indexes; the earlier
    ``id IN (...)`` shape walked the whole workspace for every user there."""
    for i in range(300):
        scim.create_user(f"p{i}@x.com")
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass").scalar() < 0
    _assert_from_key_indexes(db, _lookup_plan(db, ws, index, "p7@x.com"))
    assert len(found(scim, f'{index} eq "P7@x.com"')) == 1


def test_a_unique_key_lookup_answers_as_the_listing_does(scim: Scim, db: Database, populated: dict[str, str]) -> None:
    """The same bodies as the general listing (forced here by ``sortBy=id``, which orders as the lookup does):
    found, not found, a userName hiding its user's e-mail, a userName that is an address (the user's e-mail, its
    listed ones aside), and pages."""
    twin = scim.create_user("shared@x.com", emails=[{"value": "twin@x.com", "primary": True}])
    cases = ['userName eq "jo.named"', 'userName eq "JO@x.com"', 'userName eq "api1234@X.com"',
             'emails eq "jo@x.com"', 'emails.value eq "nobody@x.com"', 'userName eq "shared@x.com"',
             'emails eq "TWIN@x.com"', 'emails eq "shared@x.com"', 'userName eq "twin@x.com"']  # fmt: skip
    seen = []
    for filter_ in cases:
        for page in ({}, {"count": "1"}, {"startIndex": "2"}, {"count": "0"}):
            with _listing_plans(db) as plans:
                fast = scim.get("Users", filter=filter_, **page)
            assert plans == [], filter_  # the lookup, not the general listing
            general = scim.get("Users", filter=filter_, sortBy="id", **page)
            assert fast.status_code == general.status_code == 200, (fast.text, general.text)
            assert fast.json() == general.json(), (filter_, page)
        seen.append(found(scim, filter_))
    assert seen == [[populated["named"]], [], [populated["api"]], [populated["named"]], [], [twin["id"]],
                    [], [twin["id"]], []]  # fmt: skip


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
