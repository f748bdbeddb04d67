"""A read's time budget (db.engine.Budget): its statements stop when the budget is spent or stopped, on SQLite
(the connection interrupted) and PostgreSQL (the query cancelled, and ``statement_timeout`` set for its
transaction), and the connection serves the next read as if nothing had happened."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from payroster.db.engine import Budget, Database
from payroster.domain.errors import BudgetSpent
from tests.conftest import BACKENDS

# A statement that runs for minutes on either database unless something stops it.
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000000) SELECT count(*) FROM n"


def test_a_spent_budget_stops_the_statement_and_says_so(db: Database) -> None:
    started = time.monotonic()
    with pytest.raises(BudgetSpent) as caught, db.read(Budget(0.3)) as s:
        s.execute(text(ENDLESS)).scalar_one()
    assert time.monotonic() - started < 3
    assert caught.value.status == 503 and caught.value.retry_after is None
    assert "time budget of 0.3 s" in caught.value.message
    with db.read() as s:  # the connection went back to the pool in order: no interrupt or cancel left behind
        assert s.execute(text("SELECT 1")).scalar_one() == 1
    with db.read(Budget(5)) as s:
        assert s.execute(text("SELECT 2")).scalar_one() == 2


def test_a_stopped_budget_ends_the_statement_its_client_no_longer_waits_for(db: Database) -> None:
    budget = Budget(60)
    threading.Timer(0.3, budget.stop).start()
    started = time.monotonic()
    with pytest.raises(BudgetSpent) as caught, db.read(budget) as s:
        s.execute(text(ENDLESS)).scalar_one()
    assert time.monotonic() - started < 3
    assert "went away" in caught.value.message


def test_a_budget_stopped_before_its_first_statement_runs_none(db: Database) -> None:
    budget = Budget(60)
    budget.stop()
    with pytest.raises(BudgetSpent), db.read(budget) as s:
        s.execute(text("SELECT 1"))


# PostgreSQL only: SQLite has no statement_timeout (its connection is interrupted, tested above).
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgres"], indirect=True)
def test_postgresql_carries_the_budget_as_the_transaction_statement_timeout(db: Database) -> None:
    with db.read(Budget(2.5)) as s:
        assert s.execute(text("SHOW statement_timeout")).scalar_one() == "2500ms"
    with db.read() as s:  # SET LOCAL ended with the budget's transaction
        assert s.execute(text("SHOW statement_timeout")).scalar_one() == "0"


def test_other_reads_and_errors_are_left_alone(db: Database) -> None:
    with pytest.raises(Exception, match="no such|does not exist") as caught, db.read(Budget(5)) as s:
        s.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(caught.value, BudgetSpent)
