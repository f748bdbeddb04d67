"""Absolute links (OData context/nextLink, SCIM Location) follow X-Forwarded-* only from trusted proxies."""

from __future__ import annotations

import httpx
import pytest

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.services import apikeys
from payroster.services.context import Actor
from tests.conftest import WS, _Switch
from tests.web.conftest import PASSWORD, http_login, make_user

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "people.example.com"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def links(url: str, ws: WS, token: str) -> tuple[str, str, str]:
    """The OData context, an OData nextLink and a SCIM Location, all asked for with forwarded headers."""
    with httpx.Client(base_url=url) as c:
        feed = c.get(
            f"/odata/{ws.slug}/Users",
            headers={**ws.headers, **FORWARDED, "Prefer": "odata.maxpagesize=1"},
        ).json()
        made = c.post(
            f"/scim/v2/{ws.slug}/Users",
            json={"schemas": [USER], "userName": "fwd@acme.example"},
            headers={"Authorization": f"Bearer {token}", **FORWARDED},
        )
    assert made.status_code == 201, made.text
    return feed["@odata.context"], feed["@odata.nextLink"], made.headers["Location"]


@pytest.mark.parametrize(
    ("proxies", "expected"),
    [(None, "http://127.0.0.1:"), ("10.0.0.0/8", "http://127.0.0.1:"), ("127.0.0.1/32", "https://people.example.com/")],
    ids=["untrusted-by-default", "other-proxy", "trusted"],
)
def test_forwarded_headers_only_from_trusted_proxies(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS, proxies: str | None, expected: str
) -> None:
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update={"trusted_proxies": proxies}), db)
    with db.write() as s:
        token, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), None, "IdP", "scim")
    # A second user so the feed has a next page.
    with httpx.Client(base_url=url) as c:
        c.post("/api/v1/users", json={"emailAddress": "two@acme.example", "role": "Participant"}, headers=ws.headers)
    for link in links(url, ws, token):
        assert link.startswith(expected), link


def test_base_url_setting_wins(http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS) -> None:
    switch, url = http_server
    update = {"trusted_proxies": "127.0.0.1", "base_url": "https://payroster.acme.example"}
    switch.app = create_app(settings.model_copy(update=update), db)
    with db.write() as s:
        token, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), None, "IdP", "scim")
    with httpx.Client(base_url=url) as c:
        c.post("/api/v1/users", json={"emailAddress": "two@acme.example", "role": "Participant"}, headers=ws.headers)
    for link in links(url, ws, token):
        assert link.startswith("https://payroster.acme.example/"), link


def test_a_forged_first_forwarded_entry_does_not_dodge_the_login_throttle(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS
) -> None:
    """The client is the rightmost X-Forwarded-For entry that is not a trusted proxy: what a client writes in the
    header itself stays to the left of what its proxies append, so rotating it changes nothing."""
    switch, url = http_server
    update = {"login_throttle": "3/15 minutes", "trusted_proxies": "127.0.0.1, 10.1.0.0/16"}
    switch.app = app = create_app(settings.model_copy(update=update), db)
    for n in range(5):
        make_user(db, ws.id, f"seller{n}@acme.example", "FullAdmin")

    def attempt(n: int, password: str, forwarded: str) -> httpx.Response:
        with httpx.Client(base_url=url, headers={"X-Forwarded-For": forwarded}) as c:
            return http_login(c, f"seller{n}@acme.example", password)

    # The client 203.0.113.7 writes a new address of its own each time; the trusted balancer (10.1.2.3) appends
    # the address it saw, and the peer here (127.0.0.1) is a trusted proxy too.
    for n in range(3):
        forged = f"198.51.100.{n}, 203.0.113.7, 10.1.2.3"
        assert attempt(n, "guess guess!", forged).status_code == 401
    blocked = attempt(3, PASSWORD, "198.51.100.99, 203.0.113.7, 10.1.2.3")
    assert blocked.status_code == 429, "a forged first entry dodged the per-address throttle"
    limiter = app.state.limiter
    assert limiter.login_wait("nobody", "203.0.113.7") > 0  # counted against the real client's address
    assert all(limiter.login_wait("nobody", f"198.51.100.{n}") == 0 for n in range(3))
    assert attempt(4, PASSWORD, "198.51.100.0, 203.0.113.8").status_code == 303  # another client is unaffected


@pytest.mark.parametrize("proxies", [None, "127.0.0.1/32"], ids=["untrusted-by-default", "trusted"])
def test_me_names_the_feed_and_scim_roots_behind_a_trusted_proxy(
    http_server: tuple[_Switch, str], settings: Settings, db: Database, ws: WS, proxies: str | None
) -> None:
    """``GET /api/v1/me`` writes its OData and SCIM URLs from the public address, as the feed and SCIM do."""
    switch, url = http_server
    switch.app = create_app(settings.model_copy(update={"trusted_proxies": proxies}), db)
    with httpx.Client(base_url=url) as c:
        me = c.get("/api/v1/me", headers={**ws.headers, **FORWARDED}).json()
    base = "https://people.example.com" if proxies else url.rstrip("/")
    assert me["odataServiceRoot"] == f"{base}/odata/{ws.slug}/"
    assert me["scimBaseUrl"] == f"{base}/scim/v2/{ws.slug}/"
