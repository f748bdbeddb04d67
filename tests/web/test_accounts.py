"""Accounts over plain HTTP on both databases: invitations and resets, sessions, CSRF on every form, log-in
throttling, security headers, role and tenant rules of the pages."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select, update

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, Invitation, User
from payroster.web import routes_auth, routes_settings, routes_teams, routes_users
from payroster.web.core import SESSION_COOKIE
from tests.conftest import WS
from tests.web.conftest import PASSWORD, csrf_of, http_login, make_user

_LINK = re.compile(r'id="invitation-link" readonly value="([^"]+)"')


@pytest.fixture
def web(base_url: str) -> Iterator[httpx.Client]:
    """A browser-like client: keeps cookies, does not follow redirects (so they can be asserted)."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30)


def _invite(admin: httpx.Client, user_id: str) -> str:
    page = admin.get(f"/users/{user_id}")
    answer = admin.post(f"/users/{user_id}/invitation", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text[:500]  # post/redirect/get: the link is on the page it lands on
    match = _LINK.search(admin.get(answer.headers["location"]).text)
    assert match, "the invitation link is shown to copy"
    return match.group(1)


def _set_password(base_url: str, link: str, password: str) -> httpx.Response:
    with _client(base_url) as anon:
        page = anon.get(link)
        if page.status_code != 200:
            return page
        return anon.post(link, data={"csrf_token": csrf_of(page.text), "password": password, "confirm": password})


def test_invitation_sets_the_password_once(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    created = httpx.post(
        base_url + "/api/v1/users",
        json={"emailAddress": "newbie@example.com", "role": "Participant"},
        headers=ws.headers,
    )
    assert created.status_code == 201
    user_id = created.json()["id"]
    with _client(base_url) as newbie:
        assert http_login(newbie, "newbie@example.com", "").status_code == 401  # no password yet: cannot log in
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    assert http_login(web, "chief@example.com").status_code == 303
    link = _invite(web, user_id)
    assert link.startswith(base_url + "/invitations/")
    with db.read() as s:
        stored = s.scalars(select(Invitation)).one()
        assert stored.purpose == "invite" and link.rsplit("/", 1)[1] not in (stored.digest,)

    done = _set_password(base_url, link, "a brand new secret")
    assert done.status_code == 303 and done.headers["location"] == "/login"
    with _client(base_url) as newbie:
        answer = http_login(newbie, "newbie@example.com", "a brand new secret")
        assert answer.status_code == 303 and answer.headers["location"] == f"/users/{user_id}"
        assert newbie.get(f"/users/{user_id}").status_code == 200

    again = _set_password(base_url, link, "another secret here")
    assert again.status_code == 404 and "cannot be used" in again.text
    with _client(base_url) as newbie:
        assert http_login(newbie, "newbie@example.com", "another secret here").status_code == 401
    with db.read() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.target_id == uuid.UUID(user_id))).all()
        assert "user.inviteLinkCreated" in actions
        changes = s.scalars(select(AuditEvent.changes).where(AuditEvent.action == "user.updated")).all()
        assert any('"(changed)"' in c for c in changes) and not any("a brand new secret" in c for c in changes)


def test_expired_link_fails(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    user_id = make_user(db, ws.id, "late@example.com", "Participant", password=None)
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    http_login(web, "chief@example.com")
    link = _invite(web, user_id)
    with db.write() as s:
        s.execute(update(Invitation).values(expires_at=dt.datetime(2020, 1, 1)))
    answer = _set_password(base_url, link, "too late for this")
    assert answer.status_code == 404
    with _client(base_url) as late:
        assert http_login(late, "late@example.com", "too late for this").status_code == 401


def test_reset_link_replaces_the_password_and_ends_sessions(
    base_url: str, ws: WS, db: Database, web: httpx.Client
) -> None:
    user_id = make_user(db, ws.id, "forgetful@example.com", "Participant")
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with _client(base_url) as before:
        assert http_login(before, "forgetful@example.com").status_code == 303
        http_login(web, "chief@example.com")
        first = _invite(web, user_id)
        link = _invite(web, user_id)  # a newer link closes the older one
        with db.read() as s:
            purposes = s.scalars(select(Invitation.purpose).where(Invitation.user_id == uuid.UUID(user_id))).all()
            assert purposes == ["reset", "reset"]  # the user has a password: these are reset links
        assert _set_password(base_url, first, "never used link").status_code == 404
        assert _set_password(base_url, link, "the new password").status_code == 303
        ended = before.get(f"/users/{user_id}")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/login")
    with _client(base_url) as after:
        assert http_login(after, "forgetful@example.com", PASSWORD).status_code == 401
        assert http_login(after, "forgetful@example.com", "the new password").status_code == 303


def test_new_session_at_every_login_and_logout_ends_it(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    web.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="127.0.0.1")
    http_login(web, "chief@example.com")
    first = web.cookies[SESSION_COOKIE]
    assert first != "planted-by-an-attacker"
    token = csrf_of(web.get("/users").text)  # signed in: /login would go home, so post from a page
    web.post("/login", data={"csrf_token": token, "email": "chief@example.com", "password": PASSWORD})
    second = web.cookies[SESSION_COOKIE]
    assert second != first
    with _client(base_url) as replay:
        replay.cookies.set(SESSION_COOKIE, first)
        assert replay.get("/users").status_code == 303  # the previous session ended at the new log-in
        replay.cookies.set(SESSION_COOKIE, second)
        assert replay.get("/users").status_code == 200
        out = web.post("/logout", data={"csrf_token": csrf_of(web.get("/users").text)})
        assert out.status_code == 303
        assert replay.get("/users").status_code == 303  # logged out on the server, not only in the browser


def test_deactivated_user_is_logged_out_and_cannot_log_in(
    base_url: str, ws: WS, db: Database, web: httpx.Client
) -> None:
    make_user(db, ws.id, "leaver@example.com", "LimitedAdmin")
    assert http_login(web, "leaver@example.com").status_code == 303
    assert web.get("/users").status_code == 200
    off = httpx.post(
        base_url + "/api/v1/users",
        json={"emailAddress": "leaver@example.com", "role": "Deactivated"},
        headers=ws.headers,
    )
    assert off.status_code == 200
    assert web.get("/users").status_code == 303
    with _client(base_url) as again:
        assert http_login(again, "leaver@example.com").status_code == 401


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _deactivate(door: str, base_url: str, ws: WS, web: httpx.Client, user_id: str, email: str) -> httpx.Response:
    """Deactivate the user through one door, as its clients do."""
    api, scim = httpx.Client(base_url=base_url, headers=ws.headers), f"/scim/v2/{ws.slug}/Users/{user_id}"
    bearer = {"Authorization": f"Bearer {ws.key}"}
    with api:
        if door == "api-upsert":
            return api.post("/api/v1/users", json={"emailAddress": email, "role": "Deactivated"})
        if door == "api-patch":
            return api.patch(f"/api/v1/users/{user_id}", json={"role": "Deactivated"})
        if door == "api-bulk":
            return api.post("/api/v1/users:bulk", json=[{"emailAddress": email, "role": "Deactivated"}])
        if door == "scim-active":
            body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": False}]}
            return api.patch(scim, json=body, headers=bearer)
        if door == "scim-delete":
            return api.delete(scim, headers=bearer)
    page = web.get(f"/users/{user_id}")
    form = {"csrf_token": csrf_of(page.text), "emailAddress": email, "role": "Deactivated"}
    return web.post(f"/users/{user_id}", data=form)


@pytest.mark.parametrize("door", ["api-upsert", "api-patch", "api-bulk", "scim-active", "scim-delete", "web-page"])
def test_deactivation_ends_sessions_for_good(base_url: str, ws: WS, db: Database, web: httpx.Client, door: str) -> None:
    """A deactivation by any door ends the user's sessions: reactivating the user opens none of them again."""
    user_id = make_user(db, ws.id, "leaver@example.com", "LimitedAdmin")
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    assert http_login(web, "chief@example.com").status_code == 303
    with _client(base_url) as leaver:
        assert http_login(leaver, "leaver@example.com").status_code == 303
        assert leaver.get("/users").status_code == 200
        off = _deactivate(door, base_url, ws, web, user_id, "leaver@example.com")
        assert off.status_code in (200, 204, 303), off.text[:500]
        with db.read() as s:
            assert s.scalar(select(User.active).where(User.id == uuid.UUID(user_id))) is False
        back = httpx.post(
            base_url + "/api/v1/users",
            json={"emailAddress": "leaver@example.com", "role": "LimitedAdmin"},
            headers=ws.headers,
        )
        assert back.status_code == 200 and back.json()["role"] == "LimitedAdmin", back.text
        refused = leaver.get("/users")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
        assert http_login(leaver, "leaver@example.com").status_code == 303  # a new log-in works again
    assert web.get("/users").status_code == 200  # the admin who deactivated keeps their own session


def test_unknown_email_and_wrong_password_answer_alike(ws: WS, db: Database, web: httpx.Client) -> None:
    make_user(db, ws.id, "known@example.com", "FullAdmin")
    wrong = http_login(web, "known@example.com", "wrong password!")
    unknown = http_login(web, "nobody@example.com", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    message = "That e-mail and password do not match an account that can log in."
    assert message in wrong.text and message in unknown.text


def test_login_is_throttled_per_account_and_per_address(
    http_server: Any, settings: Settings, db: Database, ws: WS
) -> None:
    switch, url = http_server
    switch.app = create_app(
        settings.model_copy(update={"login_throttle": "3/15 minutes", "trusted_proxies": "127.0.0.1"}), db
    )
    make_user(db, ws.id, "target@example.com", "FullAdmin")
    for n in range(4):
        make_user(db, ws.id, f"other{n}@example.com", "FullAdmin")

    def attempt(email: str, password: str, address: str) -> httpx.Response:
        with httpx.Client(base_url=url, headers={"X-Forwarded-For": address}) as c:
            return http_login(c, email, password)

    for _ in range(3):
        assert attempt("target@example.com", "guess guess!", "10.0.0.1").status_code == 401
    blocked = attempt("target@example.com", PASSWORD, "10.0.0.2")  # the right password, from elsewhere
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "too many failed log-ins" in blocked.text
    assert attempt("other0@example.com", PASSWORD, "10.0.0.2").status_code == 303  # other accounts unaffected

    for n in (1, 2, 3):
        assert attempt(f"other{n}@example.com", "guess guess!", "10.0.0.3").status_code == 401
    assert attempt("other0@example.com", PASSWORD, "10.0.0.3").status_code == 429  # that address is spent
    assert attempt("other0@example.com", PASSWORD, "10.0.0.4").status_code == 303


def _post_routes() -> list[str]:
    """Every POST route of the web pages."""
    routers = (routes_auth.router, routes_users.router, routes_teams.router, routes_settings.router)
    return [r.path for router in routers for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods]


def test_every_form_refuses_a_missing_csrf_token(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    user_id = make_user(db, ws.id, "chief@example.com", "FullAdmin")
    team = httpx.post(base_url + "/api/v1/teams", json={"name": "Reds"}, headers=ws.headers).json()
    http_login(web, "chief@example.com")
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    paths = _post_routes()
    assert len(paths) >= 20
    values = {"user_id": user_id, "team_id": team["id"], "kind": "tags", "key_id": "abcdefgh", "token": "x" * 43}
    for path in paths:
        target = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        answer = web.post(
            target, data={"emailAddress": "csrf@example.com", "name": "CSRF", "value": "x", "role": "FullAdmin"}
        )
        assert answer.status_code == 403, (path, answer.status_code)
        assert "security token" in answer.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert web.get("/users").status_code == 200  # still logged in: /logout without a token did nothing


def test_security_headers_and_cookie_flags(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    page = web.get("/login")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    answer = http_login(web, "chief@example.com")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie


def test_cookies_are_secure_behind_https(http_server: Any, settings: Settings, db: Database, ws: WS) -> None:
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update={"base_url": "https://payroster.example"}), db)
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with httpx.Client(base_url=url) as c:
        page = c.get("/login")
        browser = page.headers["set-cookie"]
        assert "Secure" in browser  # so this plain-HTTP client would not send it back: the test does
        answer = c.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "email": "chief@example.com", "password": PASSWORD},
            headers={"Cookie": browser.split(";")[0]},
        )
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


def test_same_email_in_two_workspaces_chooses_one(
    base_url: str, ws: WS, ws_b: WS, db: Database, web: httpx.Client
) -> None:
    make_user(db, ws.id, "both@example.com", "FullAdmin")
    make_user(db, ws_b.id, "both@example.com", "LimitedAdmin")
    answer = http_login(web, "both@example.com")
    assert answer.status_code == 200 and "Acme" in answer.text and "Bravo" in answer.text
    choices = re.findall(r'name="choice" value="([^"]+)"', answer.text)
    assert len(choices) == 2
    bravo = choices[0] if answer.text.index("Bravo") < answer.text.index("Acme") else choices[1]
    forged = web.post("/login/choose", data={"csrf_token": csrf_of(answer.text), "choice": bravo[:-2] + "xx"})
    assert forged.headers["location"] == "/login" and SESSION_COOKIE not in web.cookies
    chosen = web.post("/login/choose", data={"csrf_token": csrf_of(answer.text), "choice": bravo})
    assert chosen.status_code == 303
    assert "Bravo · LimitedAdmin" in web.get("/users").text


def test_signup_creates_its_own_workspace(base_url: str, ws: WS, db: Database, web: httpx.Client) -> None:
    make_user(db, ws.id, "dup@example.com", "Participant")
    page = web.get("/signup")
    answer = web.post("/signup", data={
        "csrf_token": csrf_of(page.text), "workspace": "Initech", "email": "dup@example.com",
        "password": "initech password", "confirm": "initech password",
    })  # fmt: skip
    assert answer.status_code == 303
    home = web.get("/users")
    assert "Initech · FullAdmin" in home.text and "Acme" not in home.text
    with db.read() as s:
        acme = s.scalars(select(User).where(User.workspace_id == ws.id, User.email == "dup@example.com")).one()
        assert acme.role == "Participant" and acme.password_hash is not None


def test_short_password_and_closed_signup(
    http_server: Any, settings: Settings, db: Database, web: httpx.Client
) -> None:
    page = web.get("/signup")
    short = web.post("/signup", data={"csrf_token": csrf_of(page.text), "workspace": "X", "email": "x@example.com",
                                      "password": "short", "confirm": "short"})  # fmt: skip
    assert short.status_code == 422 and "at least 10 characters" in short.text
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update={"signup": "closed"}), db)
    with httpx.Client(base_url=url) as c:
        assert c.get("/signup").status_code == 403
        assert "Create a workspace" not in c.get("/login").text


def test_pages_never_show_another_workspace(base_url: str, ws: WS, ws_b: WS, db: Database, web: httpx.Client) -> None:
    foreign_user = make_user(db, ws_b.id, "secret@bravo.example", "Participant", password=None)
    foreign_team = httpx.post(base_url + "/api/v1/teams", json={"name": "Bravo Team"}, headers=ws_b.headers).json()[
        "id"
    ]
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    http_login(web, "chief@example.com")
    token = csrf_of(web.get("/users").text)
    unknown = str(uuid.uuid4())
    for path in (f"/users/{foreign_user}", f"/teams/{foreign_team}", f"/users/{foreign_user}?tab=activity"):
        foreign, missing = web.get(path), web.get(path.replace(foreign_user, unknown).replace(foreign_team, unknown))
        assert foreign.status_code == missing.status_code == 404
    for path in (f"/users/{foreign_user}", f"/users/{foreign_user}/tags/add", f"/teams/{foreign_team}/members"):
        assert (
            web.post(path, data={"csrf_token": token, "emailAddress": "x@example.com", "value": "t"}).status_code == 404
        )
    listing = web.get("/users?status=all").text + web.get("/teams").text + web.get("/settings/activity").text
    assert "bravo" not in listing.lower()


def test_next_parameter_never_leaves_the_site(ws: WS, db: Database, web: httpx.Client) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    page = web.get("/login?next=//evil.example/")
    answer = web.post("/login", data={"csrf_token": csrf_of(page.text), "email": "chief@example.com",
                                      "password": PASSWORD, "next": "//evil.example/"})  # fmt: skip
    assert answer.headers["location"] == "/users"
