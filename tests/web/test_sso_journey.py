"""The SSO journey in headless Chromium at desktop and phone width: an admin configures the workspace's
provider on the page and signs out; a user provisioned through SCIM signs in through the provider (a real
OpenID provider on loopback, tests/web/idp.py) with no invitation. Screenshots under PAYROSTER_ARTIFACTS."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from payroster.db.engine import Database
from payroster.services import apikeys
from payroster.services.context import Actor
from tests.conftest import WS
from tests.web import idp
from tests.web.conftest import Shots, browser_login, make_user


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level SSO tests cover PostgreSQL too."""
    return "sqlite"


@pytest.fixture
def provider() -> Iterator[idp.Provider]:
    """A real OpenID provider on 127.0.0.1."""
    with idp.running_provider() as running:
        yield running


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_admin_configures_sso_and_a_scim_user_signs_in_through_the_provider(
    page: Page, base_url: str, shots: Shots, ws: WS, db: Database, provider: idp.Provider, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    make_user(db, ws.id, "it@example.com", "FullAdmin")
    browser_login(page, base_url, "it@example.com")
    page.goto(base_url + "/settings/sso")
    expect(page.locator("#redirect-uri")).to_have_value(base_url + "/sso/callback")
    shots(page, "sso-settings")
    page.get_by_label("Name on the button").fill("Acme Okta")
    page.get_by_label("Issuer URL").fill(provider.url)
    page.get_by_label("Client id").fill("payroster-app")
    page.get_by_label("Client secret").fill("journey-secret-value")
    page.get_by_label("Allowed e-mail domains").fill("example.com")
    page.get_by_role("button", name="Add provider").click()
    expect(page.locator(".notice")).to_contain_text("Acme Okta was added")
    expect(page.locator("#providers")).to_contain_text(provider.url)
    assert "journey-secret-value" not in page.content()
    shots(page, "sso-provider-added")
    if width < 600:
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))

    with db.write() as s:
        token, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), None, "Okta", "scim")
    made = httpx.post(
        f"{base_url}/scim/v2/{ws.slug}/Users",
        headers={"Authorization": f"Bearer {token}"},
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pat@example.com",
              "name": {"givenName": "Pat", "familyName": "Lee"}, "active": True},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    provider.user("00u-pat", email="pat@example.com", email_verified=True, name="Pat Lee")

    page.goto(f"{base_url}/login?workspace={ws.slug}")
    shots(page, "sso-login")
    page.get_by_role("link", name="Sign in with Acme Okta").click()
    page.get_by_placeholder("sub").fill("00u-pat")
    shots(page, "provider-form")
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(re.compile(r"/users/" + made.json()["id"] + "$"))
    expect(page.locator(".whoami")).to_contain_text("Acme · Participant")
    shots(page, "signed-in-through-sso")
