"""Independent OData clients against the live server: python-odata reflects $metadata and reads every set;
sqlalchemy-odata (a BI-style SQL client, Basic auth) counts and joins. Truth comes from the database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from odata import ODataService

from payroster.db.engine import Database
from payroster.db.models import MembershipPeriod, TeamMember, User, table
from tests.conftest import WS
from tests.odata.conftest import Seeded, seed


@pytest.fixture
def big(client: httpx.Client, ws: WS) -> Seeded:
    """Workspace A with 1,200 users over several pages."""
    return seed(client, ws, users=1199, teams=3, detailed=False)


def db_users(db: Database, ws: WS) -> list[Any]:
    users = table(User)
    with db.read() as s:
        return list(s.execute(sa.select(users).where(users.c.workspace_id == ws.id)).all())


def test_python_odata_reads_everything(base_url: str, big: Seeded, db: Database) -> None:
    """Reflection of $metadata, iteration of every set across pages, filter and order equal to the database."""
    service = ODataService(f"{base_url}{big.root}", reflect_entities=True, auth=("bi", big.ws.key), quiet_progress=True)
    user_type = service.entities["Users"]
    everyone = list(service.query(user_type))
    truth = db_users(db, big.ws)
    assert len(everyone) == len(truth) == 1200
    assert {str(u.id) for u in everyone} == {str(r.id) for r in truth}
    assert set(service.entities) == {
        "Users",
        "Teams",
        "TeamMembers",
        "CustomVariables",
        "AuditEvents",
        "MembershipPeriods",
        "ManagerPeriods",
        "TeamPeriods",
    }
    teams = list(service.query(service.entities["Teams"]))
    assert sorted(t.name for t in teams) == sorted(t["name"] for t in big.teams)
    members = list(service.query(service.entities["TeamMembers"]))
    with db.read() as s:
        tm = table(TeamMember)
        count = s.execute(sa.select(sa.func.count()).where(tm.c.workspace_id == big.ws.id)).scalar_one()
    assert len(members) == count
    periods = list(service.query(service.entities["MembershipPeriods"]))
    with db.read() as s:
        mp = table(MembershipPeriod)
        stored = s.execute(sa.select(mp.c.id, mp.c.valid_from).where(mp.c.workspace_id == big.ws.id)).all()
    assert {(str(p.id), str(p.validFrom)[:10]) for p in periods} == {(str(i), str(d)) for i, d in stored}
    smiths = list(service.query(user_type).filter(user_type.lastName == "Smith"))
    assert {u.emailAddress for u in smiths} == {r.email for r in truth if r.last_name == "Smith"}
    starts = list(service.query(user_type).filter(user_type.emailAddress.startswith("person001")))
    assert {u.emailAddress for u in starts} == {r.email for r in truth if r.email.startswith("person001")}
    ordered = list(service.query(user_type).order_by(user_type.emailAddress.desc()).limit(5))
    assert [u.emailAddress for u in ordered] == sorted((r.email for r in truth), reverse=True)[:5]


# The client's dialect still uses the pre-2.0 ``dbapi()`` hook; its deprecation warning is not ours.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_sqlalchemy_odata_counts_and_joins(base_url: str, big: Seeded, db: Database) -> None:
    """COUNT(*) and TeamMembers JOIN Users through odata://anyname:<key>@127.0.0.1:<port>/odata/<slug>."""
    host = base_url.removeprefix("http://")
    engine = sa.create_engine(f"odata://anyname:{big.ws.key}@{host}/odata/{big.ws.slug}")
    truth = db_users(db, big.ws)
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) >= {"Users", "Teams", "TeamMembers"}
        total = conn.execute(sa.text('SELECT COUNT(*) FROM "Users"')).scalar_one()
        pairs = conn.execute(
            sa.text(
                'SELECT m."teamId", u."emailAddress" FROM "TeamMembers" m JOIN "Users" u ON u."id" = m."systemUserId"'
            )
        ).all()
    engine.dispose()
    assert total == len(truth)
    by_id = {str(r.id): r.email for r in truth}
    assert sorted((t, e) for t, e in pairs) == sorted((t, by_id[u]) for t, u in big.members)
