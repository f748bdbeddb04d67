"""An admin's real jobs in headless Chromium at desktop (1366) and phone (390) width: confirmations that name
what a destructive action affects, post/redirect/get, refused forms that keep their values, deactivation beside
the role, every page fitting a phone, the Users list at 5,000 people, and the smaller things (README: Web app).

Every page is shot full-page at both widths (under PAYROSTER_ARTIFACTS), checked for horizontal overflow and
for controls cut off the screen, and scanned with axe-core (the copy shipped in axe-playwright-python)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import ApiKey, Invitation, Team, User, WebhookEndpoint
from payroster.services import bulk, memberships, sso, teams, users, variables
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user
from tests.conftest import WS, make_workspace
from tests.web.conftest import PASSWORD, Look, browser_login, make_user
from tests.webhooks.conftest import Network


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level page tests (tests/web/test_admin_reads.py,
    test_activity_search.py) cover PostgreSQL too."""
    return "sqlite"


def _team(db: Database, ws: WS, name: str, parent: uuid.UUID | None = None) -> uuid.UUID:
    raw: dict[str, object] = {"name": name}
    if parent:
        raw["parentTeamId"] = str(parent)
    inp, problems = parse_team(raw, field_pointer())
    assert not problems
    with db.write() as s:
        team, _ = teams.upsert(s, Actor(ws.id, None, "cli", "cli"), inp)
        return team.id


def _admin(db: Database, ws: WS, email: str = "chief@example.com") -> str:
    return make_user(db, ws.id, email, "FullAdmin")


# -- 4. confirmations -----------------------------------------------------------------------------------------


def test_destructive_actions_ask_first_naming_what_they_affect(
    nojs: Page, base_url: str, plain_look: Look, ws: WS, db: Database
) -> None:
    look = plain_look
    page = nojs
    _admin(db, ws)
    temp = _team(db, ws, "Temp")
    _team(db, ws, "Temp child", temp)
    people = [uuid.UUID(make_user(db, ws.id, f"rep{i}@example.com", "Participant", None)) for i in range(3)]
    actor = Actor(ws.id, None, "cli", "cli")
    with db.write() as s:
        for uid in people:
            memberships.add(s, actor, uid, temp)
        entries = variables.parse_entries([{"name": "Quota", "value": 1}, {"name": "Rate", "value": 2}])
        variables.replace(s, actor, temp, entries)
    browser_login(page, base_url, "chief@example.com")

    # Remove from team (from the team's Members tab): a page that names who leaves which team.
    page.goto(f"{base_url}/teams/{temp}?tab=members")
    page.get_by_role("link", name="Remove rep2@example.com").click()
    expect(page.locator("h1")).to_have_text("Remove rep2 from Temp?")
    expect(page.locator("#effects")).to_contain_text("rep2 (rep2@example.com) leaves Temp")
    look(page, "remove-member-confirm")
    page.get_by_role("button", name="Remove from team").click()
    expect(page.locator(".notice")).to_contain_text("rep2@example.com was removed")

    # The same from the person's Teams tab.
    page.goto(f"{base_url}/users/{people[1]}?tab=teams")
    page.get_by_role("link", name="Remove from team Temp").click()
    expect(page.locator("#effects")).to_contain_text("rep1 (rep1@example.com) leaves Temp")
    page.get_by_role("button", name="Remove from team").click()
    expect(page.locator(".notice")).to_contain_text("Removed from Temp")

    # Delete team: memberships and variables that go, the child team that moves up.
    page.goto(f"{base_url}/teams/{temp}")
    page.get_by_role("link", name="Delete Temp").click()
    expect(page.locator("#effects")).to_contain_text(
        "1 membership ends today (earlier periods stay readable) and 2 variables go; 1 child team moves up."
    )
    look(page, "delete-team-confirm")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Team).where(Team.id == temp)) == 1  # nothing yet
    page.get_by_role("button", name="Delete Temp").click()
    expect(page.locator(".notice")).to_contain_text("Team Temp was deleted")

    # Deactivate: what the person loses and keeps.
    page.goto(f"{base_url}/users/{people[0]}")
    page.get_by_role("link", name="Deactivate").click()
    expect(page.locator("#effects")).to_contain_text("rep0 (rep0@example.com) can no longer log in")
    look(page, "deactivate-confirm")
    page.get_by_role("button", name="Deactivate rep0").click()
    expect(page.locator("#user-role")).to_have_text("Deactivated (was Participant)")

    # Revoke key: its name, and that its programs are refused.
    page.goto(base_url + "/account/security")
    page.get_by_label("Name (optional)").fill("Payroll sync")
    page.get_by_role("button", name="Create API key").click()
    page.get_by_role("link", name="Revoke Payroll sync").click()
    expect(page.locator("#effects")).to_contain_text("are refused from now on (401)")
    look(page, "revoke-key-confirm")
    page.get_by_role("button", name="Revoke Payroll sync").click()
    expect(page.locator(".notice")).to_contain_text("was revoked")
    with db.read() as s:
        assert s.scalars(select(ApiKey.revoked_at).where(ApiKey.name == "Payroll sync")).one() is not None
        assert not s.scalars(select(User.active).where(User.id == people[0])).one()


# -- 5. post/redirect/get -------------------------------------------------------------------------------------


def test_reloading_after_a_change_repeats_nothing(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    me = _admin(db, ws)
    invitee = make_user(db, ws.id, "newbie@example.com", "Participant", None)
    browser_login(page, base_url, "chief@example.com")
    page.goto(base_url + "/account/security")
    page.get_by_label("Name (optional)").fill("CRM sync")
    with page.expect_response(re.compile(r"/account/security$")) as landed:
        page.get_by_role("button", name="Create API key").click()
    assert landed.value.request.method == "GET" and landed.value.headers["cache-control"] == "no-store"
    expect(page).to_have_url(re.compile(r"/account/security$"))  # landed on a GET page
    key = page.locator("#new-key-value").input_value()
    assert key.startswith("pr_")
    look(page, "key-shown-once")
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    assert key not in page.content()
    page.goto(f"{base_url}/users/{invitee}")
    page.get_by_role("button", name="Create invitation link").click()
    expect(page).to_have_url(re.compile(f"/users/{invitee}$"))
    link = page.locator("#invitation-link").input_value()
    page.reload()
    expect(page.locator("#invitation-link")).to_have_count(0)
    with db.read() as s:
        keys = s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uuid.UUID(me)))
        links = s.scalar(select(func.count()).select_from(Invitation).where(Invitation.user_id == uuid.UUID(invitee)))
    assert keys == 1 and links == 1
    assert httpx.get(link).status_code == 200


# -- 7. refused forms -----------------------------------------------------------------------------------------


def test_refused_forms_keep_values_and_say_why_beside_the_field(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    _admin(db, ws)
    jane = make_user(db, ws.id, "jane@example.com", "Participant", None)
    browser_login(page, base_url, "chief@example.com")
    page.locator("#add-user-box summary").click()
    form = page.locator("#add-user")
    form.get_by_label("Email").fill("JANE@example.com")
    form.get_by_label("First name").fill("Janet")
    form.get_by_label("Tags (comma-separated)").fill("West, Hunters")
    form.get_by_role("button", name="Add user").click()
    form = page.locator("#add-user")
    expect(form).to_be_visible()
    expect(form.get_by_label("First name")).to_have_value("Janet")
    expect(form.get_by_label("Tags (comma-separated)")).to_have_value("West, Hunters")
    email = form.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    error = page.locator("#add-user-emailAddress-error")
    expect(error).to_contain_text("This e-mail address belongs to a person of this workspace already.")
    expect(error.get_by_role("link", name="Open jane")).to_have_attribute("href", f"/users/{jane}")
    look(page, "duplicate-email")

    email.fill("not an e-mail")
    form.get_by_role("button", name="Add user").click()
    error = page.locator("#add-user-emailAddress-error")
    expect(error).to_be_visible()
    assert "emailAddress" not in page.locator("main").inner_text()
    expect(page.locator("#add-user").get_by_label("First name")).to_have_value("Janet")

    # The same on a team's form: the unknown manager is named beside the manager field, the name kept.
    page.goto(base_url + "/teams")
    form = page.locator("#add-team")
    form.get_by_label("Name").fill("East")
    form.get_by_label("Manager (e-mail)").fill("nobody@example.com")
    form.get_by_role("button", name="Create team").click()
    expect(page.locator("#add-team-manager-error")).to_contain_text("No user nobody@example.com in this workspace.")
    expect(page.locator("#add-team").get_by_label("Name")).to_have_value("East")
    look(page, "unknown-manager")

    # And on a user's Overview: a taken e-mail links to its holder.
    page.goto(f"{base_url}/users/{make_user(db, ws.id, 'sam@example.com', 'Participant', None)}")
    form = page.locator("#edit-user")
    form.get_by_label("Email").fill("jane@example.com")
    form.get_by_label("Last name").fill("Smith")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-user-emailAddress-error")).to_contain_text("E-mail address jane@example.com is taken")
    expect(page.locator("#edit-user-emailAddress-error a")).to_have_attribute("href", f"/users/{jane}")
    expect(page.locator("#edit-user").get_by_label("Last name")).to_have_value("Smith")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.workspace_id == ws.id)) == 4


# -- 11. deactivation beside the role -------------------------------------------------------------------------


def test_deactivate_and_reactivate_beside_the_role(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    me = _admin(db, ws)
    browser_login(page, base_url, "chief@example.com")
    page.goto(f"{base_url}/users/{ws.admin_id}")
    page.get_by_role("link", name="Deactivate").click()
    page.get_by_role("button", name=re.compile("^Deactivate")).click()
    expect(page.locator("#user-role")).to_contain_text("Deactivated")
    look(page, "deactivated")
    page.get_by_role("button", name="Reactivate").click()
    expect(page.locator("#user-role")).to_have_text("FullAdmin")
    assert "Deactivated" not in page.locator("#edit-user-role").inner_text()  # not a role any more
    page.get_by_role("link", name="Deactivate").click()
    page.get_by_role("button", name=re.compile("^Deactivate")).click()

    # Now the last active full admin: refused, with the way forward.
    page.goto(f"{base_url}/users/{me}")
    page.get_by_role("link", name="Deactivate").click()
    page.get_by_role("button", name=re.compile("^Deactivate")).click()
    refusal = page.locator("#state-error")
    expect(refusal).to_contain_text("last active FullAdmin")
    expect(refusal.get_by_role("link", name="Promote another full admin first")).to_be_visible()
    look(page, "last-admin-refused")
    refusal.get_by_role("link", name="Promote another full admin first").click()
    expect(page).to_have_url(re.compile(r"/users\?"))
    with db.read() as s:
        assert s.scalars(select(User.active).where(User.id == uuid.UUID(me))).one()


# -- 13. phone ------------------------------------------------------------------------------------------------


def test_phone_shows_every_column_and_control(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    me = _admin(db, ws)
    browser_login(page, base_url, "chief@example.com")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(base_url + "/users/bulk")
    page.get_by_label("Paste rows").fill(
        "emailAddress,firstName,lastName,role\nok@example.com,Ok,Fine,Participant\nbad-address,Bad,Row,Boss\n"
    )
    page.get_by_role("button", name="Preview").click()
    problems = page.locator("#bad-rows td.problems-cell").first
    expect(problems).to_contain_text("role must be")
    box = problems.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    look(page, "bulk-fix-up")
    page.goto(f"{base_url}/users/{me}?tab=custom")
    page.locator("#add-entry").get_by_label("Name").fill("Quota")
    page.locator("#add-entry").get_by_label("Value").fill("120000")
    page.locator("#add-entry").get_by_role("button", name="Add entry").click()
    expect(page.locator("table.custom")).to_contain_text("Quota")
    tab = page.locator(".tabs").get_by_role("link", name="Activity")
    box = tab.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390, "the Activity tab is cut"
    look(page, "custom-tab")
    page.goto(base_url + "/account/security")
    page.get_by_role("button", name="Create API key").click()
    look(page, "profile")
    page.goto(base_url + "/settings/activity")
    changes = page.locator("table.events td[data-label=Changes]").first
    box = changes.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    look(page, "activity")


# -- 14. Users list at 5,000 ----------------------------------------------------------------------------------

PEOPLE = 5000


def test_users_list_at_five_thousand(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    rows = [
        {"emailAddress": f"p{i:04d}@big.example", "firstName": f"First{i:04d}", "lastName": f"Last{i % 97:02d}",
         "role": "Participant", "tags": [f"R{i % 5}"]}
        for i in range(PEOPLE)
    ]  # fmt: skip
    with db.write() as s:
        bulk.apply(s, Actor(ws.id, None, "cli", "import"), bulk.parse_rows(rows))
    make_user(db, ws.id, "nameless@example.com", "FullAdmin")
    with db.write() as s:
        nameless = s.scalars(select(User).where(User.email == "nameless@example.com")).one()
        nameless.first_name = None
    browser_login(page, base_url, "nameless@example.com")
    add = page.locator("#add-user-box summary")
    table = page.locator("#users")
    add_box, table_box = add.bounding_box(), table.bounding_box()
    assert add_box and table_box and add_box["y"] < table_box["y"], "Add user sits above the list"
    expect(page.locator("#user-count")).to_have_text(f"{PEOPLE + 2} users")
    look(page, "users")

    page.get_by_role("link", name=re.compile("^Email")).click()
    page.get_by_role("link", name=re.compile("^Email")).click()  # twice: descending
    expect(page.locator("#users th[aria-sort=descending]")).to_contain_text("Email")
    expect(page.locator("#users tbody tr").first.locator("td[data-label=Email]")).to_have_text("p4999@big.example")
    pager = page.locator("nav.pager")
    pager.get_by_role("link", name="Last").click()
    expect(page.locator("nav.pager")).to_contain_text(f"Page {-(-(PEOPLE + 2) // 50)} of {-(-(PEOPLE + 2) // 50)}")
    expect(page.locator("#users th[aria-sort=descending]")).to_contain_text("Email")  # the sort is kept
    page.get_by_label("Go to page").fill("57")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("nav.pager")).to_contain_text("Page 57 of 101")
    page.locator("nav.pager").get_by_role("link", name="First").click()
    expect(page.locator("nav.pager")).to_contain_text("Page 1 of 101")
    look(page, "users-sorted")

    page.goto(base_url + "/users?q=nameless")
    expect(page.locator("#users tbody td[data-label=Name] a")).to_have_text("nameless@example.com")

    # The server's answer time at this size (printed for the log, not asserted: timing is not behaviour).
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=base_url, cookies=cookies) as web:
        web.get("/users")
        took = []
        for path in ("/users", "/users?sort=email&dir=desc", "/users?page=57", "/users?sort=role"):
            start = time.perf_counter()
            assert web.get(path).status_code == 200
            took.append((path, (time.perf_counter() - start) * 1000))
    print("users page at", PEOPLE, "people:", ", ".join(f"{p} {ms:.0f} ms" for p, ms in took))


# -- 15. smaller things ---------------------------------------------------------------------------------------


def test_bad_cell_invitation_email_pending_list_and_one_profile_entry(
    page: Page, browser: Browser, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    _admin(db, ws)
    rep = make_user(db, ws.id, "rep@example.com", "Participant", None)
    browser_login(page, base_url, "chief@example.com")
    page.goto(base_url + "/users/bulk")
    page.get_by_label("Paste rows").fill("emailAddress,firstName,role\nfine@example.com,Fine,Boss\n")
    page.get_by_role("button", name="Preview").click()
    bad = page.get_by_label("line 2 role")
    expect(bad).to_have_attribute("aria-invalid", "true")
    assert page.get_by_label("line 2 emailAddress").get_attribute("aria-invalid") is None
    assert bad.evaluate("e => getComputedStyle(e).borderTopColor") != page.get_by_label("line 2 emailAddress").evaluate(
        "e => getComputedStyle(e).borderTopColor"
    )

    page.goto(f"{base_url}/users/{rep}")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.locator("#invitation-link").input_value()
    page.goto(base_url + "/users/invitations")
    row = page.locator("#invitations tbody tr").filter(has_text="rep@example.com")
    expect(row).to_contain_text("Invitation")
    with db.read() as s:
        expires = s.scalars(select(Invitation.expires_at).where(Invitation.user_id == uuid.UUID(rep))).one()
    expect(row.locator("td[data-label=Expires]")).to_have_text(expires.strftime("%Y-%m-%d %H:%M UTC"))
    look(page, "pending-invitations")

    guest = browser.new_context(viewport={"width": 1366, "height": 900})
    other = guest.new_page()
    other.goto(link)
    other.get_by_label("New password (at least 10 characters)").fill("rep's own password")
    other.get_by_label("Repeat the password").fill("rep's own password")
    other.get_by_role("button", name="Set password").click()
    expect(other.get_by_label("Email")).to_have_value("rep@example.com")
    look(other, "login-after-invitation")
    other.get_by_label("Password").fill("rep's own password")
    other.get_by_role("button", name="Log in").click()
    nav = other.locator("#nav")
    expect(nav.get_by_role("link", name=re.compile("profile", re.I))).to_have_count(1)
    look(other, "participant-menu")
    guest.close()


# -- every page -----------------------------------------------------------------------------------------------


def test_every_page_fits_both_widths_and_passes_axe(
    page: Page, browser: Browser, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    me = _admin(db, ws)
    west = _team(db, ws, "West")
    _team(db, ws, "West Coast", west)
    uid = make_user(db, ws.id, "rep@example.com", "Participant")
    with db.write() as s:
        actor = Actor(ws.id, None, "cli", "cli")
        memberships.add(s, actor, uuid.UUID(uid), west)
        variables.replace(s, actor, uuid.UUID(uid), variables.parse_entries([{"name": "Quota", "value": 120000}]))
    anonymous = browser.new_context(viewport={"width": 1366, "height": 900})
    anon = anonymous.new_page()
    for name, path in (("login", "/login"), ("signup", "/signup")):
        anon.goto(base_url + path)
        look(anon, name)
    anonymous.close()
    browser_login(page, base_url, "chief@example.com")
    page.goto(f"{base_url}/users/{uid}")
    page.get_by_role("button", name="Create password reset link").click()
    page.goto(base_url + "/account/security")
    page.get_by_role("button", name="Create API key").click()
    pages = [
        ("users", "/users"), ("bulk", "/users/bulk"), ("invitations", "/users/invitations"),
        ("user", f"/users/{uid}"), ("user-teams", f"/users/{uid}?tab=teams"),
        ("user-custom", f"/users/{uid}?tab=custom"), ("user-activity", f"/users/{uid}?tab=activity"),
        ("me", f"/users/{me}"), ("teams", "/teams"), ("hierarchy", "/teams/hierarchy"), ("team", f"/teams/{west}"),
        ("team-members", f"/teams/{west}?tab=members"), ("team-custom", f"/teams/{west}?tab=custom"),
        ("team-activity", f"/teams/{west}?tab=activity"), ("delete-team", f"/teams/{west}/delete"),
        ("deactivate", f"/users/{uid}/deactivate"), ("security", "/account/security"),
        ("odata", "/settings/connections/odata"),
        ("odata-try", "/settings/connections/odata?set=Users&query=%24top%3D5"),
        ("scim", "/settings/connections/scim"), ("sso", "/settings/sso"), ("activity", "/settings/activity"),
        ("variables", "/variables?name=Quota"), ("imports", "/imports"), ("webhooks", "/settings/webhooks"),
        ("not-found", "/users/00000000-0000-0000-0000-000000000000"),
    ]  # fmt: skip
    for name, path in pages:
        answer = page.goto(base_url + path)
        assert answer is not None and answer.ok == (name != "not-found"), (path, answer and answer.status)
        look(page, name)


def test_every_page_reached_by_a_link_or_a_form_fits_both_widths_and_passes_axe(
    page: Page, browser: Browser, http_server: Any, settings: Settings, look: Look, ws: WS, db: Database
) -> None:
    """The pages the test above does not visit: confirmations, a webhook endpoint's pages, the invitation page
    (and a spent link), the workspace chooser, a workspace's log-in with its identity provider, a refused SSO
    sign-in, the imports preview, and the lists with a row in them."""
    switch, base_url = http_server
    switch.app = create_app(settings, db, Network().guard())  # the webhook's loopback receiver is allowed
    _admin(db, ws)
    west = _team(db, ws, "West")
    uid = make_user(db, ws.id, "rep@example.com", "Participant", None)
    with db.write() as s:
        memberships.add(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(uid), west)
        sso.add_provider(
            s, Actor(ws.id, None, "cli", "cli"), settings.resolved_secret(),
            sso.ProviderInput("Okta", "https://acme.okta.example", "client", "secret", domains=("acme.example",)),
        )  # fmt: skip
        manager = parse_user({"directManagerId": ws.admin_id}, field_pointer(), require_email=False)[0]
        users.patch(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(uid), manager)  # a manager history to show
    elsewhere = make_workspace(db, "Elsewhere", "owner@elsewhere.example")
    make_user(db, elsewhere.id, "chief@example.com", "FullAdmin")  # the same e-mail and password in two workspaces

    anonymous = browser.new_context(viewport={"width": 1366, "height": 900})
    anon = anonymous.new_page()
    anon.goto(base_url + "/login")
    anon.get_by_label("Email").fill("chief@example.com")
    anon.get_by_label("Password").fill("not the password")
    anon.get_by_role("button", name="Log in").click()
    expect(anon.locator("main")).to_contain_text("do not match")
    look(anon, "login-refused")
    anon.get_by_label("Password").fill(PASSWORD)
    anon.get_by_role("button", name="Log in").click()
    expect(anon.get_by_role("button", name="Elsewhere")).to_be_visible()
    look(anon, "choose-workspace")
    anon.goto(f"{base_url}/login?workspace={ws.slug}")
    expect(anon.get_by_role("link", name=re.compile("Okta"))).to_be_visible()
    look(anon, "login-with-provider")
    assert anon.goto(base_url + "/sso/callback?state=forged") is not None
    look(anon, "sso-refused")
    assert anon.goto(base_url + "/invitations/" + "x" * 43) is not None
    look(anon, "invitation-gone")

    page.goto(base_url + "/login")
    page.get_by_label("Email").fill("chief@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Acme").click()
    page.goto(f"{base_url}/users/{uid}")
    page.get_by_role("button", name="Create invitation link").click()
    anon.goto(page.locator("#invitation-link").input_value())
    expect(anon.get_by_role("button", name="Set password")).to_be_visible()
    look(anon, "invitation")
    anon.get_by_label("New password (at least 10 characters)").fill("short")
    anon.get_by_label("Repeat the password").fill("other")
    anon.get_by_role("button", name="Set password").click()
    expect(anon.locator("[aria-invalid=true]").first).to_be_visible()
    look(anon, "invitation-refused")
    anon.goto(base_url + "/signup")
    anon.get_by_label("Company or workspace name").fill("Acme Sales Operations")
    anon.get_by_label("Email").fill("ops@acme.example")
    anon.get_by_label("Password (at least 10 characters)").fill("long enough password")
    anon.get_by_label("Repeat the password").fill("another long password")
    anon.get_by_role("button", name="Create workspace").click()
    expect(anon.locator("#signup [aria-invalid=true]").first).to_be_visible()
    expect(anon.get_by_label("Company or workspace name")).to_have_value("Acme Sales Operations")
    look(anon, "signup-refused")
    anonymous.close()

    page.goto(base_url + "/account/security")
    page.get_by_label("Name (optional)").fill("Payroll sync")
    page.get_by_role("button", name="Create API key").click()
    page.goto(base_url + "/settings/connections/scim")
    page.get_by_role("button", name="Create token").click()
    look(page, "scim-token-shown")
    page.goto(base_url + "/settings/webhooks")
    page.get_by_label("URL").fill("http://127.0.0.3:9/payroster-hook-with-a-long-path")
    page.get_by_label("Description").fill("payroll")
    page.get_by_role("button", name="Add endpoint").click()
    look(page, "webhook-secret-shown")
    page.goto(base_url + "/imports")
    page.get_by_label("The file holds").select_option(label="Teams")
    page.get_by_label("…or paste rows").fill("name\tdescription\nEast\tEastern reps\nWest\tWestern reps\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("Ready to import")
    look(page, "imports-preview")
    page.goto(base_url + "/imports")
    page.get_by_label("The file holds").select_option(label="Memberships")
    page.get_by_label("…or paste rows").fill("teamName;emailAddress\nWest;nobody@example.com\n")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#problems")).to_contain_text("Nothing was imported")
    look(page, "imports-problems")
    with db.read() as s:
        api_key = s.scalars(select(ApiKey.key_id).where(ApiKey.name == "Payroll sync")).one()
        scim_token = s.scalars(select(ApiKey.key_id).where(ApiKey.kind == "scim")).one()
        hook = s.scalars(select(WebhookEndpoint.id)).one()
    pages = [
        ("remove-member", f"/teams/{west}/members/{uid}/remove"), ("leave-team", f"/users/{uid}/teams/{west}/remove"),
        ("revoke-key", f"/account/security/keys/{api_key}/revoke"),
        ("revoke-scim-token", f"/settings/connections/scim/tokens/{scim_token}/revoke"),
        ("webhooks", "/settings/webhooks"), ("webhook", f"/settings/webhooks/{hook}"),
        ("rotate-webhook", f"/settings/webhooks/{hook}/rotate"),
        ("delete-webhook", f"/settings/webhooks/{hook}/delete"),
        ("sso-with-provider", "/settings/sso"), ("hierarchy-as-of", "/teams/hierarchy?asOf=2026-01-01"),
        ("members-as-of", f"/teams/{west}?tab=members&asOf=2026-01-01"), ("managed-user", f"/users/{uid}"),
    ]  # fmt: skip
    for name, path in pages:
        answer = page.goto(base_url + path)
        assert answer is not None and answer.ok, (path, answer and answer.status)
        look(page, name)
