"""End-to-end journeys in headless Chromium against the live server (README.md, "Web app").

Each journey saves full-page screenshots at desktop and phone width under PAYROSTER_ARTIFACTS."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import ApiKey, User
from tests.conftest import WS
from tests.web.conftest import PASSWORD, Shots, browser_login, make_user


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level page tests cover PostgreSQL too."""
    return "sqlite"


def test_signup_team_user_membership_hierarchy(page: Page, base_url: str, shots: Shots, db: Database) -> None:
    page.goto(base_url + "/signup")
    shots(page, "signup")
    page.get_by_label("Company or workspace name").fill("Globex Sales")
    page.get_by_label("Email").fill("hank@globex.example")
    page.get_by_label("First name").fill("Hank")
    page.get_by_label("Last name").fill("Scorpio")
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(re.compile(r"/users$"))
    expect(page.locator(".whoami")).to_contain_text("Globex Sales · FullAdmin")

    page.get_by_role("link", name="Teams", exact=True).click()
    form = page.locator("#add-team")
    form.get_by_label("Name").fill("West Coast")
    form.get_by_role("button", name="Create team").click()
    expect(page.locator("h1")).to_have_text("West Coast")
    team_url = page.url

    page.get_by_role("link", name="Users", exact=True).click()
    page.locator("#add-user-box summary").click()
    form = page.locator("#add-user")
    form.get_by_label("Email").fill("marge@globex.example")
    form.get_by_label("First name").fill("Marge")
    form.get_by_label("Last name").fill("Simpson")
    form.get_by_role("button", name="Add user").click()
    expect(page.locator(".notice")).to_contain_text("marge@globex.example was added")
    shots(page, "user-added")

    page.goto(f"{team_url}?tab=members")
    page.get_by_label("E-mail addresses").fill("marge@globex.example")
    page.get_by_role("button", name="Add members").click()
    expect(page.locator("#members")).to_contain_text("marge@globex.example")
    shots(page, "team-members")

    page.goto(base_url + "/teams/hierarchy")
    tree = page.locator("#hierarchy")
    expect(tree).to_contain_text("West Coast")
    expect(tree).to_contain_text("Marge Simpson")
    shots(page, "hierarchy")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.email == "marge@globex.example")) == 1


def test_api_key_from_the_page_works_until_revoked(
    page: Page, base_url: str, shots: Shots, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "keyholder@example.com", "FullAdmin")
    browser_login(page, base_url, "keyholder@example.com")
    page.get_by_role("link", name="Profile").click()
    expect(page).to_have_url(re.compile(r"/account/security$"))
    page.get_by_label("Name (optional)").fill("CRM sync")
    page.get_by_role("button", name="Create API key").click()
    key = page.locator("#new-key-value").input_value()
    assert re.fullmatch(r"pr_[A-Za-z0-9]{8}_[A-Za-z0-9]{32,}", key)
    shots(page, "key-created")
    expect(page.locator("#keys")).to_contain_text("CRM sync")

    created = httpx.post(
        base_url + "/api/v1/users", json={"emailAddress": "via-key@example.com", "role": "Participant"},
        headers={"X-ApiKey": key},
    )  # fmt: skip
    assert created.status_code == 201, created.text

    page.reload()
    assert key not in page.content(), "the key must be shown once only"
    key_id = key.split("_")[1]
    page.locator(f'tr[data-key-id="{key_id}"]').get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke CRM sync").click()
    expect(page.locator(".notice")).to_contain_text(f"Key {key_id} was revoked")
    shots(page, "key-revoked")
    refused = httpx.post(
        base_url + "/api/v1/users", json={"emailAddress": "late@example.com", "role": "Participant"},
        headers={"X-ApiKey": key},
    )  # fmt: skip
    assert refused.status_code == 401
    with db.read() as s:
        row = s.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).one()
        assert row.revoked_at is not None and row.name == "CRM sync"


def _csv(rows: int, bad: dict[int, dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["emailAddress", "firstName", "lastName", "role", "tags"])
    for i in range(rows):
        row = {"emailAddress": f"rep{i:04d}@bulk.example", "firstName": f"Rep{i}", "lastName": "Bulk",
               "role": "Participant", "tags": "West|Hunters"}  # fmt: skip
        row.update(bad.get(i, {}))
        writer.writerow(row.values())
    return out.getvalue().encode()


def test_bulk_import_preview_refuses_until_fixed(page: Page, base_url: str, shots: Shots, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "bulkadmin@example.com", "FullAdmin")
    browser_login(page, base_url, "bulkadmin@example.com")
    page.goto(base_url + "/users/bulk")
    shots(page, "bulk-form")
    data = _csv(1000, {41: {"emailAddress": "not-an-email"}, 777: {"role": "Boss"}})
    page.get_by_label("CSV file").set_input_files({"name": "reps.csv", "mimeType": "text/csv", "buffer": data})
    page.get_by_role("button", name="Preview").click()
    bad = page.locator("#bad-rows tr.bad-row")
    expect(bad).to_have_count(2)
    assert bad.nth(0).get_attribute("data-line") == "43"  # header is line 1, row 41 is line 43
    assert bad.nth(1).get_attribute("data-line") == "779"
    expect(page.locator("#apply")).to_be_disabled()
    expect(page.locator("#summary")).to_contain_text("2 rows with errors")
    shots(page, "bulk-preview-errors")

    # The disabled button is only a hint: the server refuses a forged apply of the invalid rows.
    token = page.locator("#apply-form input[name=csrf_token]").input_value()
    payload = page.locator("#apply-form input[name=rows]").input_value()
    forged = page.request.post(base_url + "/users/bulk/apply", form={"csrf_token": token, "rows": payload})
    assert forged.status == 422
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.workspace_id == ws.id)) == 2

    page.get_by_label("line 43 emailAddress").fill("rep0041@bulk.example")
    page.get_by_label("line 779 role").fill("Participant")
    page.get_by_role("button", name="Re-check").click()
    expect(page.locator("#summary")).to_contain_text("all valid: 1000 to create")
    expect(page.locator("#apply")).to_be_enabled()
    shots(page, "bulk-preview-valid")
    page.locator("#apply").click()
    expect(page.locator(".notice")).to_contain_text("1000 created", timeout=60_000)
    expect(page.locator("#user-count")).to_contain_text("1002 users")
    shots(page, "bulk-applied")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.workspace_id == ws.id)) == 1002
        fixed = s.scalars(select(User).where(User.email == "rep0041@bulk.example")).one()
        assert fixed.role == "Participant"


def test_odata_explorer_try_it_shows_the_matching_rows(
    page: Page, base_url: str, shots: Shots, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "analyst@example.com", "LimitedAdmin")
    for i in range(30):
        make_user(db, ws.id, f"u{i:02d}@example.com", "Participant" if i % 3 else "LimitedAdmin", password=None)
    browser_login(page, base_url, "analyst@example.com")
    page.get_by_role("link", name="OData").click()
    expect(page.locator("#root")).to_have_value(f"{base_url}/odata/{ws.slug}/")
    shots(page, "explorer")
    page.get_by_label("Entity set or path").fill("Users")
    page.get_by_label("Query options").fill(
        "$filter=role eq 'LimitedAdmin'&$select=emailAddress,role&$orderby=emailAddress"
    )
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#try-status")).to_have_text("200")
    shown = page.locator("#try-rows tbody tr td:first-child").all_inner_texts()
    with db.read() as s:
        expected = sorted(
            s.scalars(select(User.email).where(User.workspace_id == ws.id, User.role == "LimitedAdmin", User.active))
        )
    assert shown == expected and len(expected) == 11
    expect(page.locator("#raw")).to_contain_text('"@odata.context"')
    shots(page, "explorer-try-it")
    page.get_by_label("Query options").fill("$filter=nosuchproperty eq 1")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#try-status")).to_have_text("400")


def test_limited_admin_sees_no_edit_controls(page: Page, base_url: str, shots: Shots, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "viewer@example.com", "LimitedAdmin")
    target = make_user(db, ws.id, "someone@example.com", "Participant", password=None)
    browser_login(page, base_url, "viewer@example.com")
    for name, path in [
        ("users", "/users"), ("user", f"/users/{target}"), ("user-teams", f"/users/{target}?tab=teams"),
        ("user-custom", f"/users/{target}?tab=custom"), ("teams", "/teams"), ("hierarchy", "/teams/hierarchy"),
        ("security", "/account/security"), ("scim", "/settings/connections/scim"), ("activity", "/settings/activity"),
        ("odata", "/settings/connections/odata"),
    ]:  # fmt: skip
        page.goto(base_url + path)
        posting = page.locator("main form[method=post]")
        expect(posting).to_have_count(0)
        shots(page, f"limited-{name}")
    # A forged POST with the viewer's own valid session and CSRF token is still refused.
    token = page.locator("header form input[name=csrf_token]").input_value()
    forged = page.request.post(
        base_url + f"/users/{target}", form={"csrf_token": token, "emailAddress": "x@example.com", "role": "FullAdmin"}
    )
    assert forged.status == 403
    with db.read() as s:
        assert (
            s.scalars(select(User.email).where(User.id == __import__("uuid").UUID(target))).one()
            == "someone@example.com"
        )


def test_participant_sees_only_their_profile(page: Page, base_url: str, shots: Shots, ws: WS, db: Database) -> None:
    me = make_user(db, ws.id, "rep@example.com", "Participant")
    other = make_user(db, ws.id, "other@example.com", "Participant", password=None)
    browser_login(page, base_url, "rep@example.com")
    expect(page).to_have_url(re.compile(f"/users/{me}$"))
    shots(page, "participant-home")
    for path in ("/users", f"/users/{other}", "/teams", "/settings/connections/odata", "/settings/activity"):
        response = page.goto(base_url + path)
        assert response is not None and response.status == 403, path
    shots(page, "participant-403")


def test_form_without_csrf_token_is_refused(page: Page, base_url: str, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "boss@example.com", "FullAdmin")
    browser_login(page, base_url, "boss@example.com")
    refused = page.request.post(base_url + "/users", form={"emailAddress": "sneaky@example.com", "role": "Participant"})
    assert refused.status == 403
    assert "security token" in refused.text()
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.email == "sneaky@example.com")) == 0


def test_invitation_journey(page: Page, browser: Any, base_url: str, shots: Shots, ws: WS, db: Database) -> None:
    created = httpx.post(
        base_url + "/api/v1/users", json={"emailAddress": "invitee@example.com", "role": "Participant",
                                          "firstName": "Ivy", "lastName": "Vitee"}, headers=ws.headers,
    )  # fmt: skip
    user_id = created.json()["id"]
    make_user(db, ws.id, "inviter@example.com", "FullAdmin")
    browser_login(page, base_url, "inviter@example.com")
    page.goto(f"{base_url}/users/{user_id}")
    expect(page.locator(".facts")).to_contain_text("Can log in")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.locator("#invitation-link").input_value()
    shots(page, "link-created")

    guest = browser.new_context(viewport={"width": 1280, "height": 900})
    other = guest.new_page()
    other.goto(link)
    shots(other, "choose-password")
    other.get_by_label("New password (at least 10 characters)").fill("ivy's own password")
    other.get_by_label("Repeat the password").fill("ivy's own password")
    other.get_by_role("button", name="Set password").click()
    expect(other.locator(".notice")).to_contain_text("Your password is set")
    browser_login(other, base_url, "invitee@example.com", "ivy's own password")
    expect(other).to_have_url(re.compile(f"/users/{user_id}$"))
    shots(other, "invitee-home")
    other.goto(link)
    expect(other.locator("h1")).to_have_text("This link cannot be used")
    shots(other, "link-spent")
    guest.close()


def test_a_rep_moves_from_east_to_west_on_1_march(
    page: Page, base_url: str, shots: Shots, ws: WS, db: Database
) -> None:
    """On 15 February: the rep is added to East from 1 January, East ends on 1 March and West starts then, both
    on the Teams tab's timeline; East's members as of 28 February (the date picker) list the rep, as of 1 March
    not; desktop and phone screenshots of each step."""
    make_user(db, ws.id, "boss@example.com", "FullAdmin")
    rep = make_user(db, ws.id, "rep@example.com", "Participant", password=None)
    with clock.frozen(dt.date(2026, 2, 15)):
        browser_login(page, base_url, "boss@example.com")
        teams = {}
        for name in ("East", "West"):
            page.goto(base_url + "/teams")
            form = page.locator("#add-team")
            form.get_by_label("Name").fill(name)
            form.get_by_role("button", name="Create team").click()
            expect(page.locator("h1")).to_have_text(name)
            teams[name] = page.url
        page.goto(f"{base_url}/users/{rep}?tab=teams")
        add = page.locator("#add-team")
        add.get_by_label("Team").fill("East")
        add.get_by_label("From").fill("2026-01-01")
        add.get_by_role("button", name="Add to team").click()
        expect(page.locator(".notice")).to_contain_text("Added to East from 2026-01-01")
        row = page.locator("#user-teams tbody tr", has_text="East")
        row.locator("input[type=date]").fill("2026-03-01")
        row.get_by_role("button", name="End on").click()
        expect(page.locator(".notice")).to_contain_text("Membership of East ends on 2026-03-01")
        add = page.locator("#add-team")
        add.get_by_label("Team").fill("West")
        add.get_by_label("From").fill("2026-03-01")
        add.get_by_role("button", name="Add to team").click()
        table = page.locator("#user-teams")
        expect(table.locator("tbody tr")).to_have_count(2)
        expect(table.locator("tbody tr").nth(0)).to_contain_text("East")
        expect(table.locator("tbody tr").nth(0)).to_contain_text("2026-03-01")
        expect(table.locator("tbody tr").nth(1)).to_contain_text("West")
        expect(table.locator("tbody tr").nth(1)).to_contain_text("scheduled")
        expect(table.locator(".timeline .bar")).to_have_count(2)
        shots(page, "rep-timeline")

        page.goto(teams["East"] + "?tab=members")
        expect(page.locator("#members")).to_contain_text("rep@example.com")  # today, 15 February
        page.locator("#as-of").fill("2026-02-28")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"asOf=2026-02-28"))
        expect(page.locator("#members")).to_contain_text("rep@example.com")
        expect(page.locator(".count")).to_contain_text("on 2026-02-28")
        shots(page, "east-as-of-28-february")
        page.locator("#as-of").fill("2026-03-01")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#members")).not_to_contain_text("rep@example.com")
        page.goto(teams["West"] + "?tab=members&asOf=2026-03-01")
        expect(page.locator("#members")).to_contain_text("rep@example.com")
        shots(page, "west-as-of-1-march")
