"""An admin's spreadsheet jobs in headless Chromium at desktop (1366) and phone (390) width (README: Web app):
rows pasted from Excel, ordinary column titles and the column-matching step, the template, members added in bulk,
the Activity log answering "who changed this person?", quotas typed as people type them.

Every page shown is shot full-page at both widths, checked for horizontal overflow, cut-off controls and axe-core
(the helpers of test_admin_flows.py)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from payroster.db.engine import Database
from payroster.db.models import TeamMember, User
from payroster.services import memberships, teams, users, variables
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user
from tests.conftest import WS
from tests.web.conftest import Look, browser_login, make_user


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; the HTTP-level page tests cover PostgreSQL too."""
    return "sqlite"


def _admin(db: Database, ws: WS) -> str:
    return make_user(db, ws.id, "chief@example.com", "FullAdmin")


def _team(db: Database, ws: WS, name: str) -> uuid.UUID:
    inp, problems = parse_team({"name": name}, field_pointer())
    assert not problems
    with db.write() as s:
        team, _ = teams.upsert(s, Actor(ws.id, None, "cli", "cli"), inp)
        return team.id


def _people(db: Database, ws: WS) -> dict[str, str]:
    with db.read() as s:
        return {
            u.email: f"{u.first_name} {u.last_name}" for u in s.scalars(select(User).where(User.workspace_id == ws.id))
        }


# -- 1. rows pasted from Excel --------------------------------------------------------------------------------


def test_rows_pasted_from_excel_are_read_as_columns(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    _admin(db, ws)
    browser_login(page, base_url, "chief@example.com")
    page.goto(base_url + "/users/bulk")
    # What Excel puts on the clipboard: cells separated by tabs, rows ended by CR LF.
    rows = [f"rep{i:02d}@example.com\tRep\tNumber {i}\tParticipant\tWest|Hunters" for i in range(20)]
    page.get_by_label("Paste rows").fill(
        "emailAddress\tfirstName\tlastName\trole\ttags\r\n" + "\r\n".join(rows) + "\r\n"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#summary")).to_contain_text("20 rows · all valid: 20 to create")
    page.locator("details summary").filter(has_text="All rows").click()
    first = page.locator("details table tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text("rep00@example.com")
    expect(first.locator("td").nth(2)).to_have_text("Number 0")
    look(page, "pasted-preview")
    page.get_by_role("button", name="Apply 20 rows").click()
    expect(page.locator(".notice")).to_contain_text("Applied 20 rows: 20 created")
    assert _people(db, ws)["rep07@example.com"] == "Rep Number 7"


# -- 2. ordinary headers, column matching, template -----------------------------------------------------------


def test_ordinary_headers_unknown_columns_matched_and_the_template(
    page: Page, base_url: str, look: Look, ws: WS, db: Database, tmp_path: Path
) -> None:
    _admin(db, ws)
    browser_login(page, base_url, "chief@example.com")

    # The titles a spreadsheet has: understood as they are.
    page.goto(base_url + "/users/bulk")
    page.get_by_label("Paste rows").fill(
        "Email,First Name,Last Name,Role\nana@example.com,Ana,Silva,Participant\nbo@example.com,Bo,Chen,LimitedAdmin\n"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#summary")).to_contain_text("2 rows · all valid: 2 to create")
    assert "Unknown columns" not in page.content()

    # Titles no field is known by: a step matching each to a field or "ignore", then the preview.
    page.goto(base_url + "/users/bulk")
    page.get_by_label("Paste rows").fill(
        "Login;Given Name;Surname;Department;Role\ncy@example.com;Cy;Diaz;Sales;Participant\n"
        "di@example.com;Di;Evans;Sales;Boss\n"
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("h1")).to_contain_text("match columns")
    login = page.get_by_label("Column Login")
    expect(page.locator("#" + (login.get_attribute("aria-describedby") or ""))).to_contain_text("cy@example.com")
    look(page, "match-columns")
    # A field picked twice is asked again.
    login.select_option(label="Email")
    page.get_by_label("Column Department").select_option(label="Email")
    page.get_by_role("button", name="Continue to preview").click()
    expect(page.locator("#match-error")).to_contain_text("Email: pick each field once.")
    page.get_by_label("Column Login").select_option(label="Email")
    page.get_by_label("Column Department").select_option(label="Ignore this column")
    page.get_by_role("button", name="Continue to preview").click()
    # The fix-up grid offers the e-mail column and the bad role; fixed in place.
    expect(page.locator("#summary")).to_contain_text("1 row with errors")
    expect(page.get_by_label("line 3 emailAddress")).to_have_value("di@example.com")
    page.get_by_label("line 3 role").fill("Participant")
    page.get_by_role("button", name="Re-check").click()
    expect(page.locator("#summary")).to_contain_text("2 rows · all valid: 2 to create")
    look(page, "matched-preview")
    page.get_by_role("button", name="Apply 2 rows").click()
    expect(page.locator(".notice")).to_contain_text("2 created")
    people = _people(db, ws)
    assert people["cy@example.com"] == "Cy Diaz" and people["di@example.com"] == "Di Evans"

    # The template downloads, and reads back as it is.
    page.goto(base_url + "/users/bulk")
    with page.expect_download() as got:
        page.get_by_role("link", name="Download the template (CSV)").click()
    saved = tmp_path / got.value.suggested_filename
    got.value.save_as(saved)
    assert saved.read_text().splitlines()[0] == "Email,First name,Last name,Role,Tags,Aliases,Manager ID"
    look(page, "bulk-page")
    page.get_by_label("CSV file").set_input_files(str(saved))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#summary")).to_contain_text("1 rows · all valid: 1 to create")
    with db.read() as s:
        assert (
            s.scalar(select(func.count()).select_from(User).where(User.workspace_id == ws.id)) == 4
        )  # the template's row is only previewed


# -- 8. members added in bulk ---------------------------------------------------------------------------------


def test_members_pasted_as_outlook_copies_them(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    _admin(db, ws)
    west = _team(db, ws, "West")
    for name in ("ann", "bo", "cy", "di"):
        make_user(db, ws.id, f"{name}@example.com", "Participant", None)
    browser_login(page, base_url, "chief@example.com")
    page.goto(f"{base_url}/teams/{west}?tab=members")
    box = page.get_by_label("E-mail addresses")
    # Outlook's "To" line, then commas, spaces and new lines; one stranger, one typo.
    box.fill("Ann Lee <ann@example.com>; BO@example.com, cy@example.com  ghost@example.com\nnot-an-address\n")
    page.get_by_role("button", name="Add members").click()
    expect(page.locator(".notice")).to_contain_text("3 added, 0 already members. 2 not added (listed below).")
    error = page.locator("#emails-error")
    expect(error).to_contain_text("ghost@example.com: no person of this workspace has this e-mail")
    expect(error).to_contain_text("not-an-address: not an e-mail address")
    expect(page.get_by_label("E-mail addresses")).to_have_value("ghost@example.com\nnot-an-address")
    members = page.locator("main table").first
    for name in ("ann@example.com", "bo@example.com", "cy@example.com"):
        expect(members).to_contain_text(name)
    look(page, "members-partly-added")
    page.get_by_label("E-mail addresses").fill("di@example.com ann@example.com")
    page.get_by_role("button", name="Add members").click()
    expect(page.locator(".notice")).to_have_text("1 added, 1 already a member.")
    with db.read() as s:
        count = s.scalar(select(func.count()).select_from(TeamMember).where(TeamMember.team_id == west))
    assert count == 4


# -- 6. "who changed this person?" ----------------------------------------------------------------------------


def test_activity_answers_who_changed_this_person(page: Page, base_url: str, look: Look, ws: WS, db: Database) -> None:
    _admin(db, ws)
    actor = Actor(ws.id, None, "cli", "cli")
    west, east, south_east = _team(db, ws, "West"), _team(db, ws, "East"), _team(db, ws, "SouthEast")
    inp, _ = parse_user(
        {"emailAddress": "ann@example.com", "firstName": "Ann", "lastName": "Lee", "role": "Participant"},
        field_pointer(),
    )
    with db.write() as s:
        ann = users.upsert(s, actor, inp)[0].user.id
        memberships.add(s, actor, ann, west)
        quota = variables.parse_entries([{"name": "Quota", "value": 120000, "startDate": "2027-01-01"}])
        variables.replace(s, actor, ann, quota)
        users.patch(s, actor, ann, parse_user({"role": "Deactivated"}, field_pointer(), require_email=False)[0])
        for team, text in ((east, "Inside sales"), (south_east, "Field sales")):
            teams.patch(s, actor, team, parse_team({"description": text}, field_pointer(), require_name=False)[0])
    browser_login(page, base_url, "chief@example.com")
    page.goto(base_url + "/settings/activity")

    # A person by name: their own events and the teams they joined, in words, named rather than numbered.
    page.get_by_label("About").fill("ann lee")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("table.events")
    sentences = table.locator("td.event-sentence")
    expect(sentences.filter(has_text="Ann Lee joined team West")).to_have_count(1)
    expect(sentences.filter(has_text="Ann Lee was deactivated")).to_have_count(1)
    expect(sentences.filter(has_text="Ann Lee's variables changed")).to_have_count(1)
    expect(sentences.filter(has_text="Ann Lee was added")).to_have_count(1)
    expect(sentences).to_have_count(4)
    expect(table.locator("td[data-label=About] a").first).to_have_text(re.compile("Ann Lee|West"))
    changes = table.locator("td[data-label=Changes]")
    expect(changes.filter(has_text="Quota = 120,000 from 2027-01-01 until open: added")).to_have_count(1)
    expect(changes.filter(has_text="status: active → deactivated")).to_have_count(1)
    assert str(ann) not in table.inner_text()  # no internal ids on show
    look(page, "about-a-person")

    # A team by its exact name: East is not SouthEast.
    page.get_by_label("About").fill("East")
    page.get_by_role("button", name="Filter").click()
    expect(sentences.filter(has_text="Team East")).not_to_have_count(0)
    expect(sentences.filter(has_text="SouthEast")).to_have_count(0)

    # Actions chosen from a list in plain words.
    page.get_by_label("About").fill("")
    page.get_by_label("What happened").select_option(label="joined a team")
    page.get_by_role("button", name="Filter").click()
    expect(sentences).to_have_count(1)
    expect(sentences.first).to_contain_text("Ann Lee joined team West")
    look(page, "joined-a-team")

    # The person's own Activity tab tells the same story, memberships included.
    page.goto(f"{base_url}/users/{ann}?tab=activity")
    expect(page.locator("td.event-sentence").filter(has_text="Ann Lee joined team West")).to_have_count(1)


# -- 3. quotas as people type them ----------------------------------------------------------------------------


def test_quota_typed_with_separators_edited_in_place_and_split(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    _admin(db, ws)
    rep = uuid.UUID(make_user(db, ws.id, "rep@example.com", "Participant", None))
    browser_login(page, base_url, "chief@example.com")
    page.goto(f"{base_url}/users/{rep}?tab=custom")
    add = page.locator("#add-entry")
    add.get_by_label("Name").fill("Quota")
    add.get_by_label("Value").fill("120,000")
    add.get_by_label("From (inclusive)").fill("2027-01-01")
    add.get_by_role("button", name="Add entry").click()
    expect(page.locator(".notice")).to_have_text("Entry added.")
    with db.read() as s:
        assert [(e.value, e.start) for e in variables.list_entries(s, ws.id, rep)] == [
            (120000, dt.datetime(2027, 1, 1))
        ]

    # A number that could be read two ways is a question, the form kept; the same dates again say what to do.
    add = page.locator("#add-entry")
    add.get_by_label("Name").fill("Rate")
    add.get_by_label("Value").fill("12,50")
    add.get_by_role("button", name="Add entry").click()
    expect(page.locator("#add-entry-value-error")).to_contain_text("Is 12,50 the number 12.50?")
    expect(page.locator("#add-entry").get_by_label("Name")).to_have_value("Rate")
    add = page.locator("#add-entry")
    add.get_by_label("Name").fill("Quota")
    add.get_by_label("Value").fill("120000")
    add.get_by_label("From (inclusive)").fill("2027-01-01")
    add.get_by_role("button", name="Add entry").click()
    expect(page.locator("#add-entry-startDate-error")).to_contain_text("change that entry in place (Edit)")
    expect(page.locator("#add-entry").get_by_label("Value")).to_have_value("120000")
    look(page, "questions")

    # Edited in place.
    page.locator("#entry-0 summary").click()
    edit = page.locator("#edit-entry-0")
    expect(edit.get_by_label("From (inclusive)")).to_have_value("2027-01-01")
    edit.get_by_label("Value").fill("125,000")
    edit.get_by_role("button", name="Save Quota").click()
    expect(page.locator(".notice")).to_have_text("Quota changed.")
    expect(page.locator("table.custom td[data-label=Value]")).to_have_text(["125000"])

    # Ended, and a new value from 1 July.
    page.locator("#entry-0 summary").click()
    split = page.locator("#split-entry-0")
    split.get_by_label("New value").fill("150 000")
    split.get_by_label("Starting on").fill("2027-07-01")
    look(page, "split-form")
    split.get_by_role("button", name="End and start new Quota").click()
    expect(page.locator(".notice")).to_contain_text("Quota ends before 2027-07-01")
    expect(page.locator("table.custom td[data-label=Value]")).to_have_text(["125000", "150000"])
    look(page, "split-done")
    with db.read() as s:
        entries = [(e.value, e.start, e.end) for e in variables.list_entries(s, ws.id, rep)]
    assert entries == [
        (125000, dt.datetime(2027, 1, 1), dt.datetime(2027, 7, 1)),
        (150000, dt.datetime(2027, 7, 1), None),
    ]


def test_activity_filters_offer_people_and_teams_as_you_type(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    _admin(db, ws)
    actor = Actor(ws.id, None, "cli", "cli")
    _team(db, ws, "West")
    _team(db, ws, "Leeds")
    raw = {"emailAddress": "ann@example.com", "firstName": "Ann", "lastName": "Lee", "role": "Participant"}
    with db.write() as s:
        users.upsert(s, actor, parse_user(raw, field_pointer())[0])
    browser_login(page, base_url, "chief@example.com")
    page.goto(base_url + "/settings/activity")

    # About: the people and the teams whose name holds what is typed, people first.
    page.get_by_label("About").press_sequentially("lee", delay=30)
    options = page.locator("#team-names option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_have_attribute("value", "ann@example.com")
    expect(options.nth(0)).to_have_attribute("label", "Ann Lee")
    expect(options.nth(1)).to_have_attribute("value", "Leeds")
    look(page, "about-offered")
    page.get_by_label("About").fill("ann@example.com")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("td.event-sentence").filter(has_text="Ann Lee was added")).to_have_count(1)

    # Done by: people only.
    page.get_by_label("Done by").press_sequentially("chie", delay=30)
    expect(page.locator("#actor-options option")).to_have_count(1)
    expect(page.locator("#actor-options option")).to_have_attribute("value", "chief@example.com")
