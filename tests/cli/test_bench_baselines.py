"""Two of the benchmark's baselines: the minimal schema the 1,000,000-row import's raw inserts are compared with
(``bench.__main__.minimal_schema``: PayRoster's three tables with only the inserted columns, of the same types, and
their primary keys, nothing else; the same rows go into both), and the SCIM peer seeded at start-up
(``bench/peer_scim.py``: the users it holds are the ones its ``POST /Users`` would have made)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from bench.__main__ import MINIMAL_KEYS, minimal_schema, raw_import, user_rows
from bench.harness import AsgiServer, Backend, setup
from bench.load import scim_user

from payroster.db import models

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("PAYROSTER_TEST_DATABASE_URL") else [])
PEER = "bench.peer_scim:app"
READY = "/v2/ServiceProviderConfig"


def _counts(backend: Backend, env: dict[str, str]) -> dict[str, int]:
    conn = backend.connect(env)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in MINIMAL_KEYS}
    finally:
        conn.close()


def _tags(backend: Backend, env: dict[str, str]) -> list[tuple[str, str, int]]:
    conn = backend.connect(env)
    try:
        rows = conn.execute(
            "SELECT u.email, t.value, t.position FROM users u JOIN user_tags t ON t.user_id = u.id"
            " WHERE u.email LIKE 'x%' ORDER BY u.email, t.position"
        ).fetchall()
        return [tuple(r) for r in rows]
    finally:
        conn.close()


@pytest.mark.parametrize("name", BACKENDS)
def test_the_minimal_schema_is_payroster_tables_keys_only_and_takes_the_same_rows(name: str) -> None:
    backend = Backend(name)
    with backend.database(migrate=False) as env:
        minimal_schema(env)
        engine = sqlalchemy.create_engine(env["PAYROSTER_DATABASE_URL"])
        try:
            seen = sqlalchemy.inspect(engine)
            assert set(seen.get_table_names()) == set(MINIMAL_KEYS)
            for table, key in MINIMAL_KEYS.items():
                ours = models.Base.metadata.tables[table]
                columns = seen.get_columns(table)
                assert columns, table
                for column in columns:  # each column PayRoster's own, of its type
                    theirs = ours.c[column["name"]].type.compile(engine.dialect)
                    assert column["type"].compile(engine.dialect) == theirs, (table, column["name"])
                assert len(columns) < len(ours.c) or table == "user_tags"  # only the inserted ones
                assert tuple(seen.get_pk_constraint(table)["constrained_columns"]) == key
                assert seen.get_indexes(table) == []  # nothing but the key
                assert seen.get_unique_constraints(table) == []
                assert seen.get_foreign_keys(table) == []
        finally:
            engine.dispose()
        assert raw_import(backend, env, user_rows(40, prefix="x"), minimal=True) > 0
        minimal_counts, minimal_tags = _counts(backend, env), _tags(backend, env)
    with backend.database() as env:
        setup(env, "workspace", "create", "--name", "Raw", "--admin-email", "r@x.com")
        before = _counts(backend, env)  # the workspace's admin and its creation's events
        assert raw_import(backend, env, user_rows(40, prefix="x")) > 0
        added = {t: n - before[t] for t, n in _counts(backend, env).items()}
        tags = _tags(backend, env)
    # The same rows in both: 40 users, two tags each, an audit event each.
    assert minimal_counts == added == {"users": 40, "user_tags": 80, "audit_events": 40}
    assert minimal_tags == tags
    assert len(tags) == 80


def _find(url: str, user_name: str) -> dict[str, object]:
    got = httpx.get(f"{url}/v2/Users", params={"filter": f'userName eq "{user_name}"'})
    got.raise_for_status()
    found = got.json()
    assert found["totalResults"] == 1, found
    return dict(found["Resources"][0])


def _without_identity(user: dict[str, object]) -> dict[str, object]:
    meta = dict(user["meta"])  # type: ignore[arg-type]
    kept = {k: v for k, v in user.items() if k not in ("id", "meta")}
    return kept | {"resourceType": meta["resourceType"]}


@pytest.mark.slow
def test_a_peer_seeded_at_start_holds_the_users_its_creates_would_make(tmp_path: Path) -> None:
    names = [f"s{i}@bench.example" for i in range(3)]
    seed = tmp_path / "names"
    seed.write_text("\n".join(names) + "\n")
    with (
        AsgiServer(PEER, ready=READY, env={"BENCH_PEER_SEED": str(seed)}) as seeded,
        AsgiServer(PEER, ready=READY) as empty,
    ):
        seeded.wait(120)
        empty.wait(120)
        ids = Path(f"{seed}.ids").read_text().split()
        assert len(set(ids)) == 3
        for user_name, user_id in zip(names, ids, strict=True):  # in order, each found by its name
            assert _find(seeded.url, user_name)["id"] == user_id
        # The same user created over HTTP on a peer that held nobody: the same resource but its id and dates.
        httpx.post(f"{empty.url}/v2/Users", json=scim_user(names[1])).raise_for_status()
        assert _without_identity(_find(seeded.url, names[1])) == _without_identity(_find(empty.url, names[1]))
        # The seeded names are taken: the peer's uniqueness index holds them.
        again = httpx.post(f"{seeded.url}/v2/Users", json=scim_user(names[2]))
        assert again.status_code == 409, again.text
        patched = httpx.patch(
            f"{seeded.url}/v2/Users/{ids[0]}",
            json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "replace", "path": "displayName", "value": "Seeded"}]},
        )  # fmt: skip
        assert patched.is_success, patched.text
        assert _find(seeded.url, names[0])["displayName"] == "Seeded"
