"""One rule, one place (services/userkernel.py): N single upserts in a row leave a workspace as one batch of the
same N rows does, on real SQLite and PostgreSQL: the same users, timelines and problems, and, where each row
names a user of its own, the same audit events."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, ManagerPeriod, User, UserAlias, UserTag
from payroster.domain.errors import DomainError, Invalid
from payroster.services import bulk, users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_user
from tests.conftest import make_workspace

SEEDS = ["s0@x.com", "s1@x.com", "s2@x.com"]
EMAILS = ["admin@example.com", *SEEDS, "n0@x.com", "n1@x.com", "n2@x.com"]
UNKNOWN = "unknown"  # a manager id that is no user of the workspace
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _row(email: str) -> st.SearchStrategy[dict[str, Any]]:
    """A row for ``email``: any of the fields, each from a few values that collide on purpose."""
    fields = {
        "role": st.sampled_from(["FullAdmin", "LimitedAdmin", "Participant", "Deactivated"]),
        "firstName": st.sampled_from(["Ann", "Bob"]),
        "directManagerId": st.sampled_from(["admin@example.com", *SEEDS, UNKNOWN, None]),
        "tags": st.lists(st.sampled_from(["a", "A", "b", "c"]), max_size=3),
        "aliases": st.lists(st.sampled_from(["x", "X", "y", "z"]), max_size=2),
        "effectiveDate": st.sampled_from([-5, 5]),
    }
    return st.fixed_dictionaries({"emailAddress": st.sampled_from([email, email.upper()])}, optional=fields)


def batches(distinct: bool) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Up to six rows; ``distinct``: each for a user of its own."""
    if distinct:
        chosen = st.lists(st.sampled_from(EMAILS), max_size=6, unique=True)
    else:
        chosen = st.lists(st.sampled_from(EMAILS), max_size=6)
    return chosen.flatmap(lambda emails: st.tuples(*(_row(e) for e in emails)).map(list))


class Side:
    """One workspace of the comparison, seeded alike: s1 reports to s0."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.ws = make_workspace(db, f"{name} {uuid.uuid4().hex[:8]}").id
        self.actor = Actor(self.ws, None, "apiKey", "api")
        with db.write(self.ws) as s:
            made = bulk.apply(s, self.actor, bulk.parse_rows({"emailAddress": e, "role": "Participant"} for e in SEEDS))
        self.ids = {e: r[0] for e, r in zip(SEEDS, made.rows, strict=True)}
        self.ids["admin@example.com"] = self._id("admin@example.com")
        with db.write(self.ws) as s:
            bulk.apply(
                s,
                self.actor,
                bulk.parse_rows([{"emailAddress": "s1@x.com", "directManagerId": str(self.ids["s0@x.com"])}]),
            )
        # The seeds' events, by id: what came after is what the compared writes did (a SELECT's order is not
        # the insertion order on PostgreSQL, so a count of rows would not mark the place).
        self.seeded = self._event_ids()

    def _id(self, email: str) -> uuid.UUID:
        with self.db.read() as s:
            return s.scalar(select(User.id).where(User.workspace_id == self.ws, User.email == email))  # type: ignore[return-value]

    def raw(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as this workspace's client sends it: manager e-mails as ids, day offsets as dates."""
        out = dict(row)
        if "directManagerId" in row and row["directManagerId"] is not None:
            m = row["directManagerId"]
            out["directManagerId"] = str(uuid.UUID(int=1) if m == UNKNOWN else self.ids[m])
        if "effectiveDate" in row:
            out["effectiveDate"] = (clock.today() + dt.timedelta(days=row["effectiveDate"])).isoformat()
        return out

    def singles(self, rows: list[dict[str, Any]]) -> tuple[list[bool], list[tuple[int, str, str, str | None]]]:
        """Each row as its own upsert: who was created, and each refused row's problem."""
        created, problems = [], []
        for n, row in enumerate(rows):
            inp, found = parse_user(self.raw(row), field_pointer(""))
            assert not found
            try:
                with self.db.write(self.ws) as s:
                    created.append(users.upsert(s, self.actor, inp)[1])
            except DomainError as e:
                problems.append((n, e.code if not isinstance(e, Invalid) else e.details[0].code, e.message, e.target))
        return created, problems

    def batch(self, rows: list[dict[str, Any]]) -> tuple[list[bool], list[tuple[int, str, str, str | None]]]:
        """The rows as one batch: who was created, or every problem."""
        try:
            with self.db.write(self.ws, exclusive=True) as s:
                result = bulk.apply(s, self.actor, bulk.parse_rows([self.raw(r) for r in rows]))
        except Invalid as e:
            found = []
            for d in e.details:
                assert d.target is not None
                _, n, target = d.target.split("/", 2)
                found.append((int(n), d.code, d.message, target))
            return [], found
        return [created for _, _, created in result.rows], []

    def names(self) -> dict[str, str]:
        """Every id of this workspace's users as its e-mail."""
        with self.db.read() as s:
            return {str(i): e for i, e in s.execute(select(User.id, User.email).where(User.workspace_id == self.ws))}

    def state(self) -> dict[str, Any]:
        """The users with their lists in order and their manager timelines, ids as e-mails."""
        names = self.names()
        out: dict[str, Any] = {}
        with self.db.read() as s:
            for u in s.scalars(select(User).where(User.workspace_id == self.ws)):
                lists = []
                for model in (UserTag, UserAlias):
                    stmt = select(model.value).where(model.workspace_id == self.ws, model.user_id == u.id)
                    lists.append(list(s.scalars(stmt.order_by(model.position))))
                periods = s.execute(
                    select(ManagerPeriod.valid_from, ManagerPeriod.valid_to, ManagerPeriod.manager_id)
                    .where(ManagerPeriod.workspace_id == self.ws, ManagerPeriod.user_id == u.id)
                    .order_by(ManagerPeriod.valid_from)
                ).all()
                manager = names.get(str(u.direct_manager_id))
                timeline = [(a, b, names[str(m)]) for a, b, m in periods]
                out[u.email] = (u.role, u.active, u.first_name, u.last_name, manager, *lists, timeline)
        return out

    def _event_ids(self) -> set[uuid.UUID]:
        with self.db.read() as s:
            return set(s.scalars(select(AuditEvent.id).where(AuditEvent.workspace_id == self.ws)))

    def events(self) -> list[tuple[str, str, str]]:
        """The audit events after the seeds' as (action, target, changes), ids as e-mails (a period's id as ``?``)."""
        names = self.names()
        with self.db.read() as s:
            rows = s.execute(
                select(AuditEvent.id, AuditEvent.action, AuditEvent.target_id, AuditEvent.changes).where(
                    AuditEvent.workspace_id == self.ws
                )
            ).all()

        def named(text: str) -> str:
            return UUID.sub(lambda m: names.get(m.group(0), "?"), text)

        return [
            (a, names.get(str(t), "?"), named(json.dumps(json.loads(c), sort_keys=True)))
            for i, a, t, c in rows
            if i not in self.seeded
        ]


def _compare(db: Database, rows: list[dict[str, Any]], distinct: bool) -> None:
    one, many = Side(db, "Singles"), Side(db, "Batch")
    created, refused = one.singles(rows)
    counted, problems = many.batch(rows)
    if not refused:
        # Every single upsert passed: the batch passes, with the same users, the same timelines and events.
        assert problems == [], problems
        assert counted == created
        assert many.state() == one.state()
        if distinct:
            assert sorted(many.events()) == sorted(one.events())
        return
    # Until the first refusal both saw the same workspace: a refusal of the row's own (not of the set) is
    # the batch's problem at that row, the same words; a refused batch writes nothing.
    first = refused[0]
    if first[1] not in ("lastFullAdmin", "cycle"):
        assert first in problems, (first, problems)
    if problems:
        assert many.events() == []


RUNS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@RUNS
@given(rows=batches(distinct=True))
def test_singles_equal_one_batch_distinct_users(db: Database, rows: list[dict[str, Any]]) -> None:
    """Rows each for a user of its own: same state, same problems, same audit events."""
    _compare(db, rows, distinct=True)


@RUNS
@given(rows=batches(distinct=False))
def test_singles_equal_one_batch_repeated_users(db: Database, rows: list[dict[str, Any]]) -> None:
    """Rows that name a user again: same state and problems (a batch audits each user's net change once)."""
    _compare(db, rows, distinct=False)
