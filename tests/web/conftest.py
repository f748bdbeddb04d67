"""Web fixtures: real Chromium (Debian's package, driven by Playwright), screenshots kept outside the
repository, and helpers to sign in over plain HTTP."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from payroster.db.engine import Database
from payroster.services import passwords, users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_user

CHROMIUM = os.environ.get("PAYROSTER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("PAYROSTER_ARTIFACTS", "/tmp/payroster-artifacts")) / "screenshots"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (its own browser downloads are never used)."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium from /usr/bin/chromium."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


class Shots:
    """Full-page screenshots at desktop and phone width, under PAYROSTER_ARTIFACTS (outside the repository)."""

    def __init__(self, journey: str) -> None:
        self.dir = ARTIFACTS / journey
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def __call__(self, page: Page, name: str) -> None:
        self.n += 1
        size = page.viewport_size or {"width": 1280, "height": 900}
        for label, width in (("desktop", 1280), ("phone", 390)):
            page.set_viewport_size({"width": width, "height": 900})
            path = self.dir / f"{self.n:02d}-{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 1000
        page.set_viewport_size(size)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    """Screenshots for this test's journey."""
    return Shots(request.node.name.replace("[", "-").replace("]", ""))


def make_user(db: Database, workspace_id: uuid.UUID, email: str, role: str, password: str | None = PASSWORD) -> str:
    """A user of the workspace (created as the API would), with a password when given; returns its id."""
    inp, problems = parse_user({"emailAddress": email, "role": role, "firstName": email.split("@")[0]}, field_pointer())
    assert not problems
    with db.write() as s:
        view, _ = users.upsert(s, Actor(workspace_id, None, "cli", "cli"), inp)
        if password:
            users.set_password_hash(s, view.user, passwords.hash_password(password))
        return str(view.user.id)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def http_login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in over plain HTTP as a browser would (GET the form, POST it with its token)."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def browser_login(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the log-in page by its labels."""
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]


# -- screenshots, overflow and axe (the browser tests of the admin flows) --------------------------------------

WIDTHS = (("desktop", 1366), ("phone", 390))
# Visible controls and list cells whose box leaves the screen sideways (hidden by a scroll box or cut).
CUT_OFF = """() => {
  const width = document.documentElement.clientWidth, out = [];
  const shown = 'main a, main button, main input:not([type=hidden]), main select, main textarea, '
    + 'main table[data-stack] td, main table[data-stack] tbody th, header a, header button';
  for (const el of document.querySelectorAll(shown)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || el.closest('.sr, details:not([open]), [hidden]')) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    if (box.right > width + 1 || box.left < -1) out.push(el.outerHTML.slice(0, 160));
  }
  return out;
}"""


@pytest.fixture(scope="module")
def axe() -> Axe:
    """axe-core as axe-playwright-python ships it (nothing from a CDN)."""
    return Axe()


class Look:
    """Full-page screenshots at 1366 and 390 wide, each checked for overflow and cut-off controls (and axe)."""

    def __init__(self, name: str, axe: Axe | None = None) -> None:
        self.dir = ARTIFACTS / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.axe, self.n = axe, 0

    def __call__(self, page: Page, name: str) -> None:
        self.n += 1
        size = page.viewport_size or {"width": 1366, "height": 900}
        for label, width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            path = self.dir / f"{self.n:02d}-{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 1000
            document = page.evaluate("document.documentElement.scrollWidth")
            assert document <= width, f"{name} is {document} px wide at {width} px"
            cut = page.evaluate(CUT_OFF)
            assert not cut, f"{name} at {width} px cuts off: {cut}"
            if self.axe is not None:
                found = self.axe.run(page).response["violations"]
                bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
                       if v["impact"] in ("serious", "critical")]  # fmt: skip
                assert not bad, f"{name} at {width} px: {bad}"
        page.set_viewport_size(size)


@pytest.fixture
def look(request: pytest.FixtureRequest, axe: Axe) -> Look:
    """Screenshots, overflow and axe checks for this test."""
    return Look(request.node.name.replace("[", "-").replace("]", ""), axe)


@pytest.fixture
def plain_look(request: pytest.FixtureRequest) -> Look:
    """Screenshots and overflow checks without axe (axe needs JavaScript's timers; ``nojs`` turns them off)."""
    return Look(request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture
def nojs(browser: Browser) -> Iterator[Page]:
    """A page with JavaScript turned off: every flow must work as plain HTML forms."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, java_script_enabled=False)
    yield context.new_page()
    context.close()
