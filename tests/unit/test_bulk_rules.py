"""The bulk path's set-level refusals (docs/rules.md, "Batches"), against real SQLite and PostgreSQL without HTTP:
each refused batch reports its row and field and writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, User
from payroster.domain.errors import Detail, Invalid
from payroster.services import bulk
from payroster.services.context import Actor
from tests.conftest import WS


def actor(ws: WS) -> Actor:
    return Actor(ws.id, None, "apiKey", "api")


def run(db: Database, ws: WS, rows: list[dict[str, Any]]) -> bulk.BulkResult:
    """Parse and apply ``rows`` as one batch in one write transaction."""
    inputs = bulk.parse_rows(rows)
    with db.write(ws.id) as session:
        return bulk.apply(session, actor(ws), inputs)


def refused(db: Database, ws: WS, rows: list[dict[str, Any]]) -> list[Detail]:
    """The problems of a refused batch, after checking that it wrote nothing."""
    with db.read() as session:
        before = (
            session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )
    with pytest.raises(Invalid) as caught:
        run(db, ws, rows)
    with db.read() as session:
        after = (
            session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )
    assert after == before
    return caught.value.details


def test_last_full_admin_refused(db: Database, ws: WS) -> None:
    """Demoting the only active FullAdmin in a batch is refused at the row that demotes it."""
    details = refused(db, ws, [{"emailAddress": "new@x.com", "role": "Participant"},
                               {"emailAddress": "ADMIN@example.com", "role": "Participant"}])  # fmt: skip
    assert [(d.code, d.target) for d in details] == [("lastFullAdmin", "/1/role")]
    assert "last active FullAdmin" in details[0].message


def test_last_full_admin_kept_when_the_batch_promotes_another(db: Database, ws: WS) -> None:
    """The rule reads the batch as it leaves the workspace: a new FullAdmin in the same batch lets the old one go."""
    result = run(db, ws, [{"emailAddress": "admin@example.com", "role": "Deactivated"},
                          {"emailAddress": "heir@x.com", "role": "FullAdmin"}])  # fmt: skip
    assert (result.created, result.updated) == (1, 1)


def test_alias_taken_refused(db: Database, ws: WS) -> None:
    """An alias another user holds (stored, or given by an earlier row) is refused at its row, naming the holder."""
    run(db, ws, [{"emailAddress": "holder@x.com", "role": "Participant", "aliases": ["ID-1"]}])
    details = refused(db, ws, [{"emailAddress": "b@x.com", "role": "Participant", "aliases": ["id-1"]},
                               {"emailAddress": "c@x.com", "role": "Participant", "aliases": ["two"]},
                               {"emailAddress": "d@x.com", "role": "Participant", "aliases": ["TWO"]}])  # fmt: skip
    assert [(d.code, d.target) for d in details] == [("aliasTaken", "/0/aliases"), ("aliasTaken", "/2/aliases")]
    assert "holder@x.com" in details[0].message and "c@x.com" in details[1].message


def test_manager_cycle_refused(db: Database, ws: WS) -> None:
    """A row that closes a management cycle (with a stored link or another row) is refused, naming the date."""
    done = run(db, ws, [{"emailAddress": "boss@x.com", "role": "Participant"}])
    boss = done.rows[0][0]
    done = run(db, ws, [{"emailAddress": "report@x.com", "role": "Participant", "directManagerId": str(boss)}])
    report = done.rows[0][0]
    details = refused(db, ws, [{"emailAddress": "boss@x.com", "directManagerId": str(report)}])
    assert [(d.code, d.target) for d in details] == [("cycle", "/0/directManagerId")]
    assert "management cycle on" in details[0].message


def test_manager_cycle_within_the_batch_refused(db: Database, ws: WS) -> None:
    """Two rows pointing at each other's users close a cycle that neither stored link has."""
    made = run(
        db, ws, [{"emailAddress": "a@x.com", "role": "Participant"}, {"emailAddress": "b@x.com", "role": "Participant"}]
    )
    a, b = (uid for uid, _, _ in made.rows)
    details = refused(db, ws, [{"emailAddress": "a@x.com", "directManagerId": str(b)},
                               {"emailAddress": "b@x.com", "directManagerId": str(a)}])  # fmt: skip
    assert {d.code for d in details} == {"cycle"}
    assert {d.target for d in details} <= {"/0/directManagerId", "/1/directManagerId"} and details


def test_role_required_on_create(db: Database, ws: WS) -> None:
    """A row that would create a user without a role is refused at its role; an existing user needs none."""
    details = refused(db, ws, [{"emailAddress": "admin@example.com", "firstName": "Ada"},
                               {"emailAddress": "new@x.com", "firstName": "New"}])  # fmt: skip
    assert [(d.code, d.target) for d in details] == [("required", "/1/role")]
    assert details[0].message == "role is required to create a user"


def test_unknown_manager_refused(db: Database, ws: WS) -> None:
    """A manager id that is no user of this workspace is refused at its row."""
    details = refused(
        db, ws, [{"emailAddress": "x@x.com", "role": "Participant", "directManagerId": str(uuid.uuid4())}]
    )
    assert [(d.code, d.target) for d in details] == [("unknownId", "/0/directManagerId")]


def test_item_limit_refused(db: Database, ws: WS) -> None:
    """Tags added over several rows beyond the limit are refused at the row that passes it."""
    tags = [f"t{i}" for i in range(1000)]
    details = refused(db, ws, [{"emailAddress": "x@x.com", "role": "Participant", "tags": tags[:600]},
                               {"emailAddress": "x@x.com", "tags": [*tags[600:], "one-more"]}])  # fmt: skip
    assert [d.code for d in details] == ["tooMany"] and details[0].target.startswith("/1")
