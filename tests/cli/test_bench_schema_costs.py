"""The schema-cost measurement (``bench/schema_costs.py``): each variant is PayRoster's migrated SQLite schema
less exactly the parts it names, keeps the rows already there, and takes the raw inserts; the run prints a line
per variant."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from bench.__main__ import MINIMAL_KEYS, raw_seconds
from bench.harness import Backend, setup
from bench.schema_costs import index_pages, main, parts, remove

SQLITE = Backend("sqlite")


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in MINIMAL_KEYS}


def test_each_variant_removes_only_its_part_and_keeps_the_rows(tmp_path: Path) -> None:
    with SQLITE.database() as env:
        setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        template = Path(env["PAYROSTER_DATABASE_URL"].split(":///", 1)[1])
        SQLITE.settle(env)
        conn = sqlite3.connect(template)
        found, counts = parts(conn), _counts(conn)
        conn.close()
        kinds = {(p.table, p.kind) for p in found}
        assert ("users", "unique") in kinds and ("user_tags", "foreign key") in kinds
        assert ("audit_events", "index") in kinds
        assert "uq_users_workspace_id_email_key" in {p.name for p in found}
        assert not any(p.name.startswith("pk_") for p in found)  # the primary keys stay
        for gone in [*([p] for p in found), found]:
            copy = tmp_path / "copy.db"
            source = sqlite3.connect(template)
            source.execute("VACUUM INTO ?", (str(copy),))
            source.close()
            remove(copy, gone)
            conn = sqlite3.connect(copy)
            try:
                assert parts(conn) == [p for p in found if p not in gone]
                assert _counts(conn) == counts
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            finally:
                conn.close()
            seconds = raw_seconds(SQLITE, {"PAYROSTER_DATABASE_URL": f"sqlite:///{copy}"}, 30, "x")
            assert seconds > 0
            conn = sqlite3.connect(copy)
            try:
                assert _counts(conn)["users"] == counts["users"] + 30
            finally:
                conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)


def test_index_pages_names_each_index_by_its_constraint(tmp_path: Path) -> None:
    with SQLITE.database() as env:
        setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        raw_seconds(SQLITE, env, 50, "x")
        conn = SQLITE.connect(env)
        try:
            pages = index_pages(conn)
            names = {p.name for p in parts(conn) if p.kind != "foreign key"}
        finally:
            conn.close()
    assert names | {f"{t} primary key" for t in MINIMAL_KEYS} | {f"{t} (table)" for t in MINIMAL_KEYS} == set(pages)
    assert all(n >= 1 for n in pages.values())


@pytest.mark.slow
def test_a_small_run_prints_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--rows", "20", "--rounds", "1"])
    out = capsys.readouterr().out
    for label in ("PayRoster's schema", "- uq_users_workspace_id_email_key", "- every secondary part",
                  "minimal schema", "pages (dbstat)"):  # fmt: skip
        assert label in out
