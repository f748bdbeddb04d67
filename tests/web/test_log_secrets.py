"""No secret in the server's log: a real ``payroster serve`` goes through an invitation and a password reset, an
export's pages and a key sent where no key belongs, and its whole output (stdout and stderr) is searched for each
token. The access log must have logged those requests, redacted, or the search would prove nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx

from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import make_workspace
from tests.procs import cli_env, serve
from tests.web.conftest import csrf_of, http_login, make_user

_LINK = re.compile(r'id="invitation-link" readonly value="([^"]+)"')
ADMIN = "owner@acme.example"


def _link(admin: httpx.Client, user_id: str) -> str:
    page = admin.get(f"/users/{user_id}")
    answer = admin.post(f"/users/{user_id}/invitation", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text[:500]  # post/redirect/get: the link is on the page it lands on
    match = _LINK.search(admin.get(answer.headers["location"]).text)
    assert match
    return match.group(1)


def _use(url: str, link: str, password: str) -> None:
    """Open the link and choose a password, as the invited person's browser does (GET, then POST the form)."""
    with httpx.Client(base_url=url) as anon:
        page = anon.get(link)
        assert page.status_code == 200, page.text[:500]
        done = anon.post(link, data={"csrf_token": csrf_of(page.text), "password": password, "confirm": password})
        assert done.status_code == 303 and done.headers["location"] == "/login"


def test_tokens_never_reach_the_server_log(tmp_path: Path, sqlite_template: Path) -> None:
    database = tmp_path / "payroster.db"
    shutil.copyfile(sqlite_template, database)
    env = cli_env(f"sqlite:///{database}", PAYROSTER_TRUSTED_PROXIES="127.0.0.1")
    db = Database(Settings(database_url=env["PAYROSTER_DATABASE_URL"], secret_key=env["PAYROSTER_SECRET_KEY"]))
    ws = make_workspace(db, "Acme")
    make_user(db, ws.id, ADMIN, "FullAdmin")
    db.dispose()
    key, slug = ws.key, ws.slug
    secrets: list[str] = []
    with serve(env, tmp_path / "serve.log") as server, httpx.Client(base_url=server.url) as admin:
        api = {"X-ApiKey": key}
        for n in range(3):
            body = {"emailAddress": f"rep{n}@acme.example", "role": "Participant"}
            assert httpx.post(server.url + "/api/v1/users", json=body, headers=api).status_code == 201
        rep = httpx.get(server.url + "/api/v1/users", params={"emailAddress": "rep0@acme.example"}, headers=api)
        assert http_login(admin, ADMIN).status_code == 303

        invitation = _link(admin, rep.json()["id"])  # the user has no password: an invitation
        _use(server.url, invitation, "the first chosen password")
        reset = _link(admin, rep.json()["id"])  # now a password-reset link
        assert reset != invitation
        _use(server.url, reset, "the second chosen password")
        secrets += [link.rsplit("/", 1)[1] for link in (invitation, reset)]

        # An export's next page carries a skip token; a client sends its key in the query string.
        feed = httpx.get(f"{server.url}/odata/{slug}/Users", headers={**api, "Prefer": "odata.maxpagesize=1"}).json()
        next_link = feed["@odata.nextLink"]
        assert httpx.get(next_link, headers=api).status_code == 200
        secrets.append(httpx.URL(next_link).params["$skiptoken"])
        assert httpx.get(server.url + "/api/v1/me", params={"api_key": key}).status_code == 401
        secrets.append(key)
        # Behind the trusted proxy the access log shows the client the proxy saw, not what the client wrote.
        forwarded = {"X-Forwarded-For": "198.51.100.66, 203.0.113.9"}
        assert httpx.get(server.url + "/login", headers=forwarded).status_code == 200
    log = server.log.read_text()
    for secret in secrets:
        assert len(secret) >= 20 and secret not in log, f"a token is in the server log: {secret[:6]}..."
    # The requests were logged, with their tokens redacted: the search above looked at the right lines.
    assert log.count('"GET /invitations/[redacted] HTTP/1.1" 200') == 2
    assert log.count('"POST /invitations/[redacted] HTTP/1.1" 303') == 2
    assert f"/odata/{slug}/Users?%24skiptoken=[redacted]" in log or f"/odata/{slug}/Users?$skiptoken=[redacted]" in log
    assert "/api/v1/me?api_key=[redacted]" in log
    assert '203.0.113.9:0 - "GET /login HTTP/1.1" 200' in log and "198.51.100.66" not in log
