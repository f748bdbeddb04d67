"""The security review, one test per line of it: key verification structure, same answer for unknown and
foreign ids on every door, no secrets in logs or responses, injection-looking values as plain data, cheap
refusal of oversized and deeply nested bodies, e-mail and Unicode edge cases at every limit.
(Session fixation and CSRF on every form: tests/web/test_accounts.py.)"""

from __future__ import annotations

import ast
import base64
import contextlib
import inspect
import re
import socket
import textwrap
import time
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payroster.db.engine import Database
from payroster.db.models import Team, User
from payroster.domain.errors import DomainError
from payroster.services import apikeys
from tests.conftest import WS, create_workspace
from tests.procs import run_cli, serve
from tests.scim.conftest import scim_for
from tests.web.conftest import csrf_of, http_login, make_user

INJECTION = ["O'Brien", "'; DROP TABLE users; --", "%", "_", "\\", "100% _real_ \\o/", '"quoted"', "<script>x</script>"]


def test_key_lookup_by_key_id_and_constant_time_digest_compare(
    db: Database, ws: WS, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(apikeys.verify)))
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "hmac.compare_digest" in calls
    # The lookup is one statement built once (apikeys._KEY_OWNER) and run with the presented key id.
    assert "_KEY_OWNER" in ast.unparse(tree) and '{"key_id": key_id}' in ast.unparse(tree).replace("'", '"')
    where = str(apikeys._KEY_OWNER.whereclause)
    assert where == "api_keys.key_id = :key_id", where
    assert "digest" not in where, "the digest must never be part of the lookup"
    assert "==" not in "".join(
        ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare) and "digest" in ast.unparse(n)
    )
    compared: list[tuple[str, str]] = []
    real = apikeys.hmac.compare_digest
    monkeypatch.setattr(apikeys.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    _, key_id, secret = ws.key.split("_")
    with db.read() as s:
        for presented in (ws.key, f"pr_{key_id}_{'x' * 40}", f"pr_zzzzzzzz_{secret}"):
            with contextlib.suppress(DomainError):  # refusals are asserted elsewhere; the compare is counted here
                apikeys.verify(s, presented)
    assert len(compared) == 3  # unknown key ids are compared too (against a dummy digest)
    assert all(len(a) == len(b) == 64 for a, b in compared)


def _norm(body: str, *ids: str) -> str:
    for i in ids:
        body = body.replace(i, "ID")
    return re.sub(r'"(requestId|timestamp)":\s*"[^"]*"', "", body)


def test_unknown_and_foreign_ids_answer_alike_on_every_door(
    client: httpx.Client, base_url: str, ws: WS, ws_b: WS, db: Database
) -> None:
    foreign_user = httpx.post(
        base_url + "/api/v1/users",
        json={"emailAddress": "b@bravo.example", "role": "Participant"},
        headers=ws_b.headers,
    ).json()["id"]
    foreign_team = httpx.post(base_url + "/api/v1/teams", json={"name": "B team"}, headers=ws_b.headers).json()["id"]
    unknown = "01a20000-0000-7000-8000-000000000000"
    client.headers["X-Request-ID"] = "same-for-both"  # the one part of an error body that is the request's own
    scim = scim_for(client, db, ws)
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    web = httpx.Client(base_url=base_url, headers={"X-Request-ID": "same-for-both"})
    http_login(web, "chief@example.com")
    doors = {
        "api user": lambda i: client.get(f"/api/v1/users/{i}", headers=ws.headers),
        "api team": lambda i: client.get(f"/api/v1/teams/{i}", headers=ws.headers),
        "api variables": lambda i: client.get(f"/api/v1/custom-variables/{i}", headers=ws.headers),
        "odata user": lambda i: client.get(f"/odata/{ws.slug}/Users({i})", headers=ws.headers),
        "odata team": lambda i: client.get(f"/odata/{ws.slug}/Teams({i})", headers=ws.headers),
        "scim user": lambda i: scim.get(f"Users/{i}"),
        "scim group": lambda i: scim.get(f"Groups/{i}"),
        "web user": lambda i: web.get(f"/users/{i}"),
        "web team": lambda i: web.get(f"/teams/{i}"),
    }
    for door, call in doors.items():
        foreign_id = foreign_team if "team" in door or "group" in door else foreign_user
        foreign, missing = call(foreign_id), call(unknown)
        assert foreign.status_code == missing.status_code == 404, (door, foreign.status_code, missing.status_code)
        assert _norm(foreign.text, foreign_id) == _norm(missing.text, unknown), door
    web.close()


def test_no_key_password_or_token_in_logs_or_responses(tmp_path: Path, env: dict[str, str]) -> None:
    made = create_workspace(env, email="owner@logs.example")
    key, slug = made["apiKey"], made["workspaceSlug"]
    token = run_cli(env, "scim-token", "create", "--workspace", slug, "--json").json()["token"]
    password = "hunter2-but-longer"
    with serve(env, tmp_path / "serve.log") as live:
        bodies: list[str] = []
        with httpx.Client(base_url=live.url) as c:
            basic = base64.b64encode(f"x:{key}".encode()).decode()
            for headers in ({"X-ApiKey": key}, {"Authorization": f"Bearer {key}"}, {"Authorization": f"Basic {basic}"}):
                bodies.append(
                    c.post(
                        "/api/v1/users", json={"emailAddress": "x@logs.example", "role": "Participant"}, headers=headers
                    ).text
                )
            bodies.append(c.get("/api/v1/users/nope", headers={"X-ApiKey": key[:-3] + "abc"}).text)  # wrong secret
            bodies.append(c.get(f"/scim/v2/{slug}/Users", headers={"Authorization": f"Bearer {token}"}).text)
            bodies.append(c.get(f"/odata/{slug}/Users", headers={"Authorization": f"Basic {basic}"}).text)
            bodies.append(c.get("/api/v1/users/x", headers={"X-ApiKey": token}).text)
            page = c.get("/signup")
            bodies.append(
                c.post(
                    "/signup",
                    data={
                        "csrf_token": csrf_of(page.text),
                        "workspace": "Logs",
                        "email": "me@logs.example",
                        "password": password,
                        "confirm": password,
                    },
                ).text
            )
            bodies.append(
                c.post(
                    "/login",
                    data={
                        "csrf_token": csrf_of(c.get("/users").text),
                        "email": "me@logs.example",
                        "password": password + "!",
                    },
                ).text
            )
    log = (tmp_path / "serve.log").read_text()
    secrets_ = {"api key": key.split("_")[2], "scim token": token.split("_")[2], "password": password}
    for name, value in secrets_.items():
        assert value not in log, f"the {name} appears in the server log"
        assert not any(value in b for b in bodies), f"the {name} appears in a response"
    assert "POST /api/v1/users" in log  # the log did record the requests


def test_injection_looking_values_are_plain_data(client: httpx.Client, ws: WS, db: Database) -> None:
    scim = scim_for(client, db, ws)
    for n, value in enumerate(INJECTION):
        r = client.post(
            "/api/v1/users",
            headers=ws.headers,
            json={
                "emailAddress": f"inj{n}@example.com",
                "role": "Participant",
                "firstName": value,
                "lastName": value,
                "tags": [value],
                "aliases": [f"{value}#{n}"],
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["firstName"], body["tags"], body["aliases"]) == (value, [value], [f"{value}#{n}"])
        team = client.post("/api/v1/teams", headers=ws.headers, json={"name": f"{value} team", "description": value})
        assert team.status_code == 201 and team.json()["name"] == f"{value} team"
    with db.read() as s:
        assert s.scalar(select(User.first_name).where(User.email == "inj1@example.com")) == INJECTION[1]
        assert len(s.scalars(select(Team.id).where(Team.workspace_id == ws.id)).all()) == len(INJECTION)
    for value in INJECTION:
        quoted = value.replace("'", "''")
        odata = client.get(
            f"/odata/{ws.slug}/Users",
            headers=ws.headers,
            params={"$filter": f"contains(lastName, '{quoted}')", "$select": "emailAddress"},
        )
        assert odata.status_code == 200, odata.text
        found = {u["emailAddress"] for u in odata.json()["value"]}
        assert found == {f"inj{m}@example.com" for m, v in enumerate(INJECTION) if value in v}, value
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        listed = scim.get("Users", filter=f'name.familyName co "{escaped}"')
        assert listed.status_code == 200, listed.text
        assert {u["userName"] for u in listed.json()["Resources"]} == found, value
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with httpx.Client(base_url=str(client.base_url)) as web:
        http_login(web, "chief@example.com")
        for value in ("%", "_", "\\"):
            page = web.get("/users", params={"q": value}).text
            shown = int(re.search(r'id="user-count">(\d+) user', page).group(1))  # type: ignore[union-attr]
            assert shown == sum(value in v for v in INJECTION), value


def _raw_request(base_url: str, head: str, body: bytes = b"") -> tuple[int, float]:
    host, port = base_url.rsplit("/", 1)[1].split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = sock.recv(4096).decode(errors="replace")
    return int(answer.split(" ", 2)[1]), time.monotonic() - start


def test_oversized_and_deeply_nested_bodies_are_refused_cheaply(
    client: httpx.Client, base_url: str, ws: WS, db: Database
) -> None:
    scim = scim_for(client, db, ws)
    declared_gigabyte = (
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n"
    )
    for path, auth in (
        ("/api/v1/users", f"X-ApiKey: {ws.key}"),
        ("/api/v1/users:bulk", f"X-ApiKey: {ws.key}"),
        (f"/scim/v2/{ws.slug}/Users", f"Authorization: Bearer {scim.token}"),
        ("/login", "X-A: b"),
    ):
        status, took = _raw_request(base_url, declared_gigabyte.format(path=path, auth=auth), b"{")
        assert status == 413 and took < 2, (path, status, took)  # answered without waiting for the gigabyte
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/v1/users:bulk", content=deep, headers={**ws.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "badRequest"
    r = client.post("/api/v1/users", content='{"a":' * 50_000 + "1" + "}" * 50_000, headers=ws.headers)
    assert r.status_code == 400
    r = scim.http.post(
        scim.url("Users"), content="[" * 100_000, headers={**scim.headers, "Content-Type": "application/scim+json"}
    )
    assert r.status_code == 400 and r.json()["status"] == "400"


def test_email_and_unicode_edge_cases(client: httpx.Client, ws: WS) -> None:
    def upsert(**fields: Any) -> httpx.Response:
        return client.post("/api/v1/users", headers=ws.headers, json={"role": "Participant", **fields})

    idn = upsert(emailAddress="jürgen@bücher.example")
    assert idn.status_code == 201 and idn.json()["emailAddress"] == "jürgen@bücher.example"
    first = upsert(emailAddress="Mixed.Case@Example.COM")
    again = upsert(emailAddress="  mixed.case@example.com ")
    assert first.status_code == 201 and again.status_code == 200 and first.json()["id"] == again.json()["id"]
    nfc, nfd = unicodedata.normalize("NFC", "Zoë"), unicodedata.normalize("NFD", "Zoë")
    assert nfc != nfd
    t1 = client.post("/api/v1/teams", headers=ws.headers, json={"name": nfc})
    t2 = client.post("/api/v1/teams", headers=ws.headers, json={"name": nfd})
    assert t1.status_code == 201 and t2.status_code == 200 and t1.json()["id"] == t2.json()["id"]
    a1 = upsert(emailAddress="zoe1@example.com", aliases=[f"{nfc} Smith"])
    a2 = upsert(emailAddress="zoe2@example.com", aliases=[f"{nfd} SMITH"])
    assert a1.status_code == 201 and a2.status_code == 409  # one alias, two spellings
    combining = "e\u0301\u0323\u0304"  # e with three combining marks
    assert upsert(emailAddress="marks@example.com", firstName=combining).json()["firstName"] == combining
    for bad in ("a\u0000b", "tab\there", "bell\u0007b", "del\u007fb", "c1\u0085b"):
        for field in ("firstName", "lastName"):
            r = upsert(emailAddress="ctl@example.com", **{field: bad})
            assert r.status_code == 422 and r.json()["error"]["details"][0]["target"] == field, (field, bad)
        assert upsert(emailAddress="ctl@example.com", tags=[bad]).status_code == 422
        assert upsert(emailAddress=f"ctl{bad}@example.com").status_code == 422
    local = "l" * 64
    at_limit = f"{local}@{'d' * 63}.{'e' * 63}.{'f' * 57}.com"
    assert len(at_limit) == 254 and upsert(emailAddress=at_limit).status_code == 201
    assert upsert(emailAddress="x" + at_limit).status_code == 422
    limits = {"firstName": 255, "lastName": 255}
    for field, limit in limits.items():
        assert upsert(emailAddress="lim@example.com", **{field: "n" * limit}).status_code in (200, 201)
        assert upsert(emailAddress="lim@example.com", **{field: "n" * (limit + 1)}).status_code == 422
    assert upsert(emailAddress="lim@example.com", tags=["t" * 255]).status_code == 200
    assert upsert(emailAddress="lim@example.com", tags=["t" * 256]).status_code == 422
    assert upsert(emailAddress="many@example.com", tags=[f"t{i}" for i in range(1000)]).status_code == 201
    assert upsert(emailAddress="many@example.com", tags=["one more"]).status_code == 422
    assert upsert(emailAddress="many2@example.com", aliases=[f"al{i}" for i in range(1001)]).status_code == 422
    for name, limit in (("name", 255), ("description", 4000)):
        ok = {"name": "Limit team", name: "d" * limit}
        assert client.post("/api/v1/teams", headers=ws.headers, json=ok).status_code in (200, 201)
        over = {"name": "Limit team", name: "d" * (limit + 1)}
        assert client.post("/api/v1/teams", headers=ws.headers, json=over).status_code == 422
