"""Verified keys are believed for at most ``KEY_TTL`` seconds in each server process (auth/apikey.py, KeyCache):
a key revoked, or an owner demoted or deactivated, by another process is refused by every server within that bound.

Two ``payroster serve`` processes on one database (SQLite file or PostgreSQL schema); each has checked the keys
(so both hold them in their caches) before the change is made elsewhere: by the CLI, or through the other server.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from payroster.auth.apikey import KEY_TTL
from tests.conftest import create_workspace
from tests.procs import Served, run_cli, serve

SLACK = 0.05  # the monotonic clock read here before a request is sent, after the server's own reading of it
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIFTED = {"PAYROSTER_RATE_LIMIT_PER_KEY": "1000000/second", "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "1000000/second"}


def _warm(servers: tuple[Served, ...], headers: dict[str, str]) -> None:
    """Each server checks the key (and keeps it) shortly before the change."""
    for s in servers:
        assert httpx.get(s.url + "/api/v1/me", headers=headers, timeout=30).status_code == 200


def _refused_after(changed: float, server: Served, headers: dict[str, str], status: int) -> float:
    """Poll ``server`` until it answers ``status``; every answer to a request sent more than ``KEY_TTL`` after
    ``changed`` must be ``status``. Returns the seconds from the change to the first refusal."""
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        while True:
            sent = time.monotonic()
            got = client.get("/api/v1/me").status_code
            if sent - changed > KEY_TTL + SLACK:
                assert got == status, f"still {got} {sent - changed:.2f} s after the change (bound {KEY_TTL} s)"
            if got == status:
                return sent - changed
            assert got == 200
            assert sent - changed < 10 * KEY_TTL
            time.sleep(0.01)


def test_a_key_revoked_by_another_process_is_refused_by_every_server_within_the_bound(
    env: dict[str, str], tmp_path: Path
) -> None:
    made = create_workspace(env)
    headers = {"X-ApiKey": made["apiKey"]}
    key_id = made["apiKey"].split("_")[1]
    servers = {**env, **LIFTED}
    with serve(servers, tmp_path / "one.log") as one, serve(servers, tmp_path / "two.log") as two:
        _warm((one, two), headers)
        revoked = run_cli(env, "apikey", "revoke", "--workspace", made["workspaceSlug"], "--key-id", key_id)
        assert revoked.code == 0, revoked.err
        changed = time.monotonic()  # the revocation is committed: the command has exited
        delays = [_refused_after(changed, s, headers, 401) for s in (one, two)]
    assert all(d <= KEY_TTL + SLACK for d in delays), delays


def test_an_owner_demoted_or_deactivated_through_one_server_is_refused_by_the_other_within_the_bound(
    env: dict[str, str], tmp_path: Path
) -> None:
    made = create_workspace(env)
    admin = {"X-ApiKey": made["apiKey"]}
    slug = made["workspaceSlug"]
    token = run_cli(env, "scim-token", "create", "--workspace", slug, "--json").json()["token"]
    servers = {**env, **LIFTED}
    with serve(servers, tmp_path / "one.log") as one, serve(servers, tmp_path / "two.log") as two:
        # Demoted by the JSON API; deactivated by the identity provider (SCIM), both through server one.
        for email, how in (("demoted@acme.example", "api"), ("gone@acme.example", "scim")):
            created = httpx.post(
                one.url + "/api/v1/users", headers=admin, json={"emailAddress": email, "role": "FullAdmin"}, timeout=30
            )
            assert created.status_code in (200, 201), created.text
            issued = run_cli(env, "apikey", "create", "--workspace", slug, "--email", email, "--json")
            assert issued.code == 0, issued.err
            theirs = {"X-ApiKey": issued.json()["apiKey"]}
            _warm((one, two), theirs)
            if how == "api":
                change = httpx.post(
                    one.url + "/api/v1/users", headers=admin, json={"emailAddress": email, "role": "Participant"}
                )
            else:
                patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
                change = httpx.patch(
                    f"{one.url}/scim/v2/{slug}/Users/{created.json()['id']}",
                    headers={"Authorization": f"Bearer {token}"},
                    json=patch,
                )
            assert change.status_code == 200, change.text
            changed = time.monotonic()
            assert _refused_after(changed, two, theirs, 403) <= KEY_TTL + SLACK
