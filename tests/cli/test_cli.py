"""The ``payroster`` command as a user runs it: subprocesses, exit codes, stdout JSON, a live server."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, create_workspace, refused_within_key_ttl
from tests.procs import cli_env, pg_schema, run_cli, serve

KEY = re.compile(r"^pr_[A-Za-z0-9]{8}_[A-Za-z0-9]{32,}$")
SCIM_TOKEN = re.compile(r"^prs_[A-Za-z0-9]{8}_[A-Za-z0-9]{32,}$")


def test_workspace_create_prints_one_json_object_with_a_working_key(env: dict[str, str], tmp_path: Path) -> None:
    data = create_workspace(env)
    assert set(data) == {"workspaceId", "workspaceSlug", "adminUserId", "apiKey"}
    assert KEY.match(data["apiKey"]), data["apiKey"]
    assert data["workspaceSlug"] == "acme-corp"
    with serve(env, tmp_path / "serve.log") as server:
        me = httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": data["apiKey"]})
        assert me.status_code == 200
        assert me.json()["workspaceSlug"] == "acme-corp"
        assert me.json()["userId"] == data["adminUserId"]
        # Basic with the key as password, as Power BI sends it, reaches the same workspace.
        assert httpx.get(server.url + "/api/v1/me", auth=("anyone", data["apiKey"])).status_code == 200


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_serve_starts_a_worker_per_core_by_default_and_they_share_the_database(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Without ``--workers`` (nor ``PAYROSTER_WORKERS``) ``serve`` runs one process per CPU; concurrent writes
    through all of them land once each (SQLite: writers of several processes take turns)."""
    ws = create_workspace(env)
    headers = {"X-ApiKey": ws["apiKey"]}
    env = {k: v for k, v in env.items() if k != "PAYROSTER_WORKERS"}
    with serve(env, tmp_path / "serve.log", workers=None) as server:
        deadline = time.monotonic() + 60
        while len(workers := [c for c in _children(server.proc.pid) if b"spawn_main" in _cmdline(c)]) < (
            os.cpu_count() or 1
        ):
            assert time.monotonic() < deadline, workers
            time.sleep(0.1)
        assert len(workers) == (os.cpu_count() or 1)

        def create(n: int) -> int:
            body = {"emailAddress": f"w{n}@acme.example", "role": "Participant", "tags": "Workers"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:  # a connection each
                return client.post("/api/v1/users", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(create, range(40))) == [201] * 40
        for n in range(40):
            one_of = {"emailAddress": f"w{n}@acme.example"}
            found = httpx.get(server.url + "/api/v1/users", headers=headers, params=one_of)
            assert found.status_code == 200 and found.json()["tags"] == ["Workers"], found.text
    with serve({**env, "PAYROSTER_WORKERS": "1"}, tmp_path / "one.log", workers=None) as one:
        time.sleep(1)
        assert [c for c in _children(one.proc.pid) if b"spawn_main" in _cmdline(c)] == []  # one process, no supervisor


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_usage_errors_exit_2_and_failures_exit_1(env: dict[str, str]) -> None:
    missing = run_cli(env, "workspace", "create", "--admin-email", "a@b.example")
    assert missing.code == 2 and "--name" in missing.err and missing.out == ""
    assert run_cli(env, "no-such-command").code == 2
    assert run_cli(env, "serve", "--workers", "0").code == 2

    unknown_ws = run_cli(env, "apikey", "create", "--workspace", "nowhere", "--email", "a@b.example", "--json")
    assert unknown_ws.code == 1 and unknown_ws.out == "" and "nowhere" in unknown_ws.err
    create_workspace(env)
    unknown_user = run_cli(env, "apikey", "create", "--workspace", "acme-corp", "--email", "ghost@acme.example")
    assert unknown_user.code == 1 and "ghost@acme.example" in unknown_user.err
    bad_email = run_cli(env, "workspace", "create", "--name", "Other", "--admin-email", "not-an-email")
    assert bad_email.code == 1 and "Traceback" not in bad_email.err


def test_apikey_create_and_revoke_take_effect_on_a_live_server(env: dict[str, str], tmp_path: Path) -> None:
    ws = create_workspace(env)
    with serve(env, tmp_path / "serve.log") as server:
        args = ["--workspace", "acme-corp", "--email", "OWNER@acme.example", "--name", "ETL", "--json"]
        made = run_cli(env, "apikey", "create", *args)
        assert made.code == 0, made.err
        data = made.json()
        assert set(data) == {"apiKey", "keyId", "userId"} and data["userId"] == ws["adminUserId"]
        assert KEY.match(data["apiKey"]) and data["apiKey"].split("_")[1] == data["keyId"]
        headers = {"X-ApiKey": data["apiKey"]}
        assert httpx.get(server.url + "/api/v1/me", headers=headers).status_code == 200

        revoked = run_cli(env, "apikey", "revoke", "--workspace", "acme-corp", "--key-id", data["keyId"])
        assert revoked.code == 0, revoked.err
        # A key just used is believed for at most KEY_TTL more, timed from each request's sending (tests/conftest.py).
        with httpx.Client(base_url=server.url) as polling:
            refused_within_key_ttl(polling, "/api/v1/me", headers, 401)
        after = httpx.get(server.url + "/api/v1/me", headers=headers)
        assert after.status_code == 401 and after.json()["error"]["code"]
        # The workspace's first key is untouched by revoking another.
        assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": ws["apiKey"]}).status_code == 200
        # A key id of another workspace is refused like an unknown one.
        create_workspace(env, "Bravo", "boss@bravo.example")
        foreign = run_cli(env, "apikey", "revoke", "--workspace", "bravo", "--key-id", ws["apiKey"].split("_")[1])
        assert foreign.code == 1
        assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": ws["apiKey"]}).status_code == 200


def test_scim_token_is_issued_hashed_and_refused_on_the_json_api(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    made = run_cli(env, "scim-token", "create", "--workspace", "acme-corp", "--name", "Okta", "--json")
    assert made.code == 0, made.err
    token = made.json()["token"]
    assert SCIM_TOKEN.match(token), token
    with serve(env, tmp_path / "serve.log") as server:
        assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": token}).status_code == 401
    assert run_cli(env, "scim-token", "revoke", "--workspace", "acme-corp", "--key-id", made.json()["keyId"]).code == 0
    if env["PAYROSTER_DATABASE_URL"].startswith("sqlite"):
        dump = "\n".join(sqlite3.connect(env["PAYROSTER_DATABASE_URL"][len("sqlite:///") :]).iterdump())
        assert token not in dump and token.split("_")[2] not in dump


def odata_users(url: str, slug: str, key: str) -> list[dict[str, object]]:
    """Every user of a workspace with tags and aliases, read through the OData feed."""
    got = httpx.get(f"{url}/odata/{slug}/Users", headers={"X-ApiKey": key})
    assert got.status_code == 200, got.text
    rows: list[dict[str, object]] = got.json()["value"]
    return rows


CSV_OK = (
    "Email Address;Role;First Name;Last Name;Tags;Aliases\n"
    "ann@acme.example;Participant;Ann;Archer;AE|SouthEast;ID-1\n"
    "bob@acme.example;LimitedAdmin;Bob;Baker;SE;\n"
)


def test_import_users_csv_all_or_nothing(env: dict[str, str], tmp_path: Path) -> None:
    ws = create_workspace(env)
    good = tmp_path / "people.csv"
    good.write_text(CSV_OK, encoding="utf-8")
    done = run_cli(env, "import", "users", "--workspace", "acme-corp", str(good), "--json")
    assert done.code == 0, done.err
    assert done.json() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0}

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Email Address,Role,Tags\ncarl@acme.example,Participant,X\nnot-an-email,Participant,Y\n"
        "ann@acme.example,Boss,Z\n",
        encoding="utf-8",
    )
    failed = run_cli(env, "import", "users", "--workspace", "acme-corp", str(bad))
    assert failed.code == 1 and failed.out == ""
    assert "line 3" in failed.err and "line 4" in failed.err, failed.err

    # A rule of the batch (a new user needs a role) is reported at its line too, not at its row's index.
    roleless = tmp_path / "roleless.csv"
    roleless.write_text("Email Address,Role\ncarl@acme.example,Participant\n\ndora@acme.example,\n", encoding="utf-8")
    refused = run_cli(env, "import", "users", "--workspace", "acme-corp", str(roleless))
    assert refused.code == 1 and refused.out == ""
    assert "line 4, role: role is required to create a user" in refused.err, refused.err

    with serve(env, tmp_path / "serve.log") as server:
        users = {u["emailAddress"]: u for u in odata_users(server.url, "acme-corp", ws["apiKey"])}
        assert set(users) == {"owner@acme.example", "ann@acme.example", "bob@acme.example"}
        assert users["ann@acme.example"]["tags"] == ["AE", "SouthEast"]
        assert users["ann@acme.example"]["aliases"] == ["ID-1"]
        assert users["bob@acme.example"]["role"] == "LimitedAdmin"


def test_demo_twice_keeps_one_workspace_and_issues_a_fresh_key(env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli(env, "demo", "--json")
    second = run_cli(env, "demo", "--json")
    assert first.code == 0 and second.code == 0, first.err + second.err
    a, b = first.json(), second.json()
    assert a["workspaceSlug"] == b["workspaceSlug"] and a["adminEmail"] == b["adminEmail"]
    assert a["apiKey"] != b["apiKey"] and KEY.match(b["apiKey"])
    with serve(env, tmp_path / "serve.log") as server:
        for key in (a["apiKey"], b["apiKey"]):
            assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": key}).status_code == 200
        total = odata_users(server.url, a["workspaceSlug"], b["apiKey"])
        # Running demo twice did not duplicate the sample people.
        assert len(total) == len({u["emailAddress"] for u in total}) > 5


def test_db_backup_and_restore_round_trip(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'live.db'}")
    ws = create_workspace(env)
    people = tmp_path / "people.csv"
    people.write_text(CSV_OK, encoding="utf-8")
    assert run_cli(env, "import", "users", "--workspace", "acme-corp", str(people)).code == 0
    backup = tmp_path / "backups" / "monday.db"
    assert run_cli(env, "db", "backup", str(backup)).code == 0
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # Changes after the backup: another workspace and a deactivation.
    create_workspace(env, "Later", "later@later.example")
    with serve(env, tmp_path / "a.log") as server:
        gone = httpx.post(
            server.url + "/api/v1/users",
            headers={"X-ApiKey": ws["apiKey"]},
            json={"emailAddress": "ann@acme.example", "role": "Deactivated"},
        )
        assert gone.status_code == 200

    restored = run_cli(env, "db", "restore", str(backup))
    assert restored.code == 0, restored.err
    with serve(env, tmp_path / "b.log") as server:
        query = {"emailAddress": "ann@acme.example"}
        ann = httpx.get(server.url + "/api/v1/users", params=query, headers={"X-ApiKey": ws["apiKey"]}).json()
        assert ann["role"] == "Participant" and ann["tags"] == ["AE", "SouthEast"]
    with sqlite3.connect(tmp_path / "live.db") as conn:
        assert conn.execute("SELECT count(*) FROM workspaces").fetchone()[0] == 1

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database")
    assert run_cli(env, "db", "restore", str(corrupt)).code == 1
    # PostgreSQL is backed up with pg_dump; the command says so instead of guessing.
    if PG_URL:
        refused = run_cli(cli_env(PG_URL), "db", "backup", str(tmp_path / "x.db"))
        assert refused.code == 1 and "pg_dump" in refused.err


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL not configured")
def test_serve_refuses_a_postgres_schema_that_is_behind_until_db_upgrade(tmp_path: Path) -> None:
    assert PG_URL is not None
    with pg_schema(PG_URL) as url:
        env = cli_env(url)
        refused = run_cli(env, "serve", "--port", "9")
        assert refused.code == 1
        assert "payroster db upgrade" in refused.err and "Traceback" not in refused.err
        # Other commands do not migrate PostgreSQL behind the operator's back either.
        assert run_cli(env, "workspace", "create", "--name", "X", "--admin-email", "x@x.example").code == 1
        assert run_cli(env, "db", "upgrade").code == 0
        ws = create_workspace(env)
        with serve(env, tmp_path / "serve.log") as server:
            assert httpx.get(server.url + "/api/v1/me", headers={"X-ApiKey": ws["apiKey"]}).status_code == 200


def test_sqlite_is_migrated_automatically_by_any_command(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "new.db"
    env = cli_env(f"sqlite:///{path}")
    create_workspace(env)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert {"workspaces", "users", "user_tags", "api_keys", "audit_events"} <= tables
    assert version


def test_default_scim_role_is_set_by_the_cli_and_used_by_scim_creates(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    assert run_cli(env, "workspace", "update", "--workspace", "acme-corp", "--default-scim-role", "Boss").code == 2
    done = run_cli(env, "workspace", "update", "--workspace", "acme-corp", "--default-scim-role", "LimitedAdmin")
    assert done.code == 0, done.err
    token = run_cli(env, "scim-token", "create", "--workspace", "acme-corp", "--json").json()["token"]
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "idp@acme.example"}
    with serve(env, tmp_path / "serve.log") as server:
        made = httpx.post(
            server.url + "/scim/v2/acme-corp/Users", json=user, headers={"Authorization": f"Bearer {token}"}
        )
    assert made.status_code == 201, made.text
    assert made.json()["urn:ietf:params:scim:schemas:extension:payroster:2.0:User"]["role"] == "LimitedAdmin"


def test_commands_other_than_serve_do_not_load_the_web_application(tmp_path: Path) -> None:
    """Opening the database (and migrating SQLite) is the database layer's: a command that imported the
    application for it spent half of its start-up (~1.5 s) on routes and SCIM models it never used."""
    people = tmp_path / "people.csv"
    people.write_text(CSV_OK, encoding="utf-8")
    script = (
        "import sys\n"
        "from payroster.cli import main\n"
        "for args in (['workspace', 'create', '--name', 'Acme Corp', '--admin-email', 'owner@acme.example'],\n"
        f"             ['import', 'users', '--workspace', 'acme-corp', {str(people)!r}]):\n"
        "    main(args, standalone_mode=False)\n"
        "print(sorted(m for m in ('payroster.app', 'fastapi', 'scim2_models') if m in sys.modules))\n"
    )
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "created: 2" in done.stdout and done.stdout.strip().endswith("[]"), done.stdout


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PAYROSTER_TRUSTED_PROXIES", "10.0.0.5, proxy.internal", "not an address or network: 'proxy.internal'"),
        ("PAYROSTER_TRUSTED_PROXIES", "10.0.0.0/33", "not an address or network: '10.0.0.0/33'"),
        ("PAYROSTER_SESSION_TTL", "soon", "not a duration: 'soon'"),
        ("PAYROSTER_WORKERS", "0", "greater than or equal to 1"),
    ],
)
def test_a_bad_setting_is_named_in_one_line_and_nothing_starts(
    tmp_path: Path, name: str, value: str, said: str
) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}", **{name: value})
    run = run_cli(env, "serve", "--port", "1", timeout=60)
    assert run.code == 2
    assert f"error: {name}: " in run.err and said in run.err, run.err
    assert "Traceback" not in run.err
    assert not (tmp_path / "p.db").exists()


def test_trusted_proxies_written_as_addresses_networks_or_a_star_are_taken(tmp_path: Path) -> None:
    for value in ("10.0.0.5", "10.0.0.5, 192.168.0.0/16, ::1", "*"):
        env = cli_env(f"sqlite:///{tmp_path / 'p.db'}", PAYROSTER_TRUSTED_PROXIES=value)
        run = run_cli(env, "db", "upgrade")
        assert run.code == 0, run.err
