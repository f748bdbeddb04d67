"""The health probe's question: does the database answer, with PayRoster's schema at this release's revision?

``SELECT 1`` said ok for any database that answered, one restored from something else included, while every door
answered 503 ``no such table``. Reading the schema's revision costs the probe the same one-row statement; the
revision the code expects is computed once per process (load balancers probe every few seconds).
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import text

from payroster.db import migrate
from payroster.db.engine import Database

log = logging.getLogger("payroster")

OK = {"status": "ok", "database": "ok"}
UNREACHABLE = {"status": "unavailable", "database": "unreachable"}
WRONG_SCHEMA = {"status": "unavailable", "database": "unexpected schema"}


@functools.cache
def _head() -> str | None:
    return migrate.head_revision()


def check(db: Database) -> tuple[int, dict[str, str]]:
    """200 and ``OK``, or 503 with what is wrong: the database unreachable, or not at the expected revision."""
    try:
        with db.read() as s:
            revision = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # unreachable, or reachable without PayRoster's tables: which, one more statement tells
        try:
            with db.read() as s:
                s.execute(text("SELECT 1"))
        except Exception:
            log.warning("health check: database unreachable", exc_info=True)
            return 503, UNREACHABLE
        log.warning("health check: the database has no PayRoster schema")
        return 503, WRONG_SCHEMA
    if revision != _head():
        log.warning("health check: the database schema is at %s, this release needs %s", revision, _head())
        return 503, WRONG_SCHEMA
    return 200, OK
