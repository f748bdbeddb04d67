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
