"""Settings > Webhooks in headless Chromium: the secret shown once (post/redirect/get), disabling, a refused
address said in words, the log page, deleting after a confirmation that says what it does, CSRF on every form."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS
from tests.web.conftest import browser_login, make_user
from tests.webhooks.conftest import Network


def test_an_admin_adds_disables_inspects_and_deletes_an_endpoint(
    page: Page, http_server: Any, settings: Settings, db: Database, ws: WS
) -> None:
    network = Network()
    switch, url = http_server
    switch.app = create_app(settings, db, network.guard())
    make_user(db, ws.id, "boss@acme.example", "FullAdmin")
    browser_login(page, url, "boss@acme.example")
    page.goto(url + "/settings/webhooks")
    page.get_by_label("URL").fill("https://private.test/hook")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".error, [role=alert]").first).to_contain_text("private address")
    page.get_by_label("URL").fill("http://127.0.0.3:9/hook")
    page.get_by_label("Event types").fill("user.*, team.created")
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret-value").input_value()
    assert secret.startswith("whsec_")
    page.reload()
    expect(page.locator("#new-secret")).to_have_count(0)
    row = page.locator("#webhooks tbody tr").first
    expect(row).to_contain_text("user.*, team.created")
    row.get_by_role("button", name="Disable").click()
    expect(page.locator("#webhooks tbody tr").first.locator(".status")).to_contain_text("disabled by an administrator")
    page.locator("#webhooks tbody tr").first.get_by_role("link", name="Log").click()
    expect(page.locator("#attempts")).to_contain_text("No attempts yet")
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("body")).to_contain_text("queued")
    page.goto(url + "/settings/webhooks")
    page.locator("#webhooks tbody tr").first.get_by_role("link", name="Delete").click()
    expect(page.locator("#effects")).to_contain_text("cannot be undone")
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#webhooks")).to_contain_text("No endpoints yet")
    assert network.connects == []
    # The signed-in browser posting without the page's CSRF token is refused, and nothing is added.
    refused = page.request.post(url + "/settings/webhooks", form={"url": "http://127.0.0.3:9/x"}, max_redirects=0)
    assert refused.status == 403
    page.goto(url + "/settings/webhooks")
    expect(page.locator("#webhooks")).to_contain_text("No endpoints yet")
    with httpx.Client(base_url=url) as bare:  # not signed in: sent to the log-in page
        assert bare.get("/settings/webhooks").status_code in (303, 401)
