"""More of an admin's jobs in headless Chromium at desktop (1366) and phone (390) width (README: Web app): moving a
person between teams from a date and the hierarchy's managers and counts, quotas read as dates on a labelled
timeline and across people in the Variables grid, and search-as-you-type pickers for managers and teams.

Every page shown is shot full-page at both widths, checked for horizontal overflow, cut-off controls and axe-core
(the helpers of test_admin_flows.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import event, select

from payroster import clock
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, MembershipPeriod, Team, User
from payroster.services import memberships, teams, users, variables
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user
from tests.conftest import WS, make_workspace
from tests.web.conftest import Look, browser_login, make_user

CLI = "cli"


@pytest.fixture
def backend() -> str:
    """Browser journeys run on SQLite; tests/web/test_admin_reads.py covers the same reads on PostgreSQL too."""
    return "sqlite"


def _actor(ws: WS) -> Actor:
    return Actor(ws.id, None, CLI, CLI)


def _team(db: Database, ws: WS, name: str, parent: uuid.UUID | None = None, manager: str | None = None) -> uuid.UUID:
    raw: dict[str, object] = {"name": name}
    if parent:
        raw["parentTeamId"] = str(parent)
    if manager:
        raw["managerId"] = manager
    inp, problems = parse_team(raw, field_pointer())
    assert not problems
    with db.write() as s:
        team, _ = teams.upsert(s, _actor(ws), inp)
        return team.id


def _person(db: Database, ws: WS, email: str, first: str, last: str, tags: list[str] | None = None) -> uuid.UUID:
    raw: dict[str, Any] = {"emailAddress": email, "firstName": first, "lastName": last, "role": "Participant"}
    if tags:
        raw["tags"] = tags
    inp, problems = parse_user(raw, field_pointer())
    assert not problems
    with db.write() as s:
        view, _ = users.upsert(s, _actor(ws), inp)
        return view.user.id


def _join(db: Database, ws: WS, uid: uuid.UUID, tid: uuid.UUID) -> None:
    with db.write() as s:
        memberships.add(s, _actor(ws), uid, tid)


# -- 9. move to team, and the hierarchy's managers and counts -------------------------------------------------


def test_move_to_team_from_a_date_and_hierarchy_managers_and_totals(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    boss = _person(db, ws, "mia.boss@example.com", "Mia", "Boss")
    sales = _team(db, ws, "Sales", manager=str(boss))
    east = _team(db, ws, "East", sales)
    west = _team(db, ws, "West", sales, manager=str(boss))
    reps = [_person(db, ws, f"rep{i}@example.com", f"Rep{i}", "Seller") for i in range(4)]
    for uid in reps[:3]:
        _join(db, ws, uid, east)
    _join(db, ws, reps[3], west)
    _join(db, ws, reps[0], sales)  # in Sales and in East: counted once in Sales' total
    today = clock.today()
    start = today + dt.timedelta(days=14)
    browser_login(page, base_url, "chief@example.com")

    # From East's Members list: "Move" opens the person's Teams tab with East chosen.
    page.goto(f"{base_url}/teams/{east}?tab=members")
    page.get_by_role("link", name="Move rep1@example.com to another team").click()
    move = page.locator("#move-team")
    expect(move.get_by_label("From team")).to_have_value(str(east))
    # A typo in the team: refused beside the field, the date kept, nothing written.
    move.get_by_label("To team").fill("Wets")
    move.get_by_label("Starting on").fill(start.isoformat())
    move.get_by_role("button", name="Move").click()
    expect(page.locator("#move-team-team-error")).to_contain_text("No team named Wets")
    expect(page.locator("#move-team").get_by_label("Starting on")).to_have_value(start.isoformat())
    expect(page.locator("#move-team").get_by_label("To team")).to_have_value("Wets")
    look(page, "move-refused")
    move = page.locator("#move-team")
    move.get_by_label("To team").fill("West")
    move.get_by_role("button", name="Move").click()
    last_day = start - dt.timedelta(days=1)
    expect(page.locator(".notice")).to_have_text(f"Moved from East (last day {last_day}) to West from {start}.")
    rows = page.locator("#user-teams tbody tr")
    expect(rows.filter(has_text="East").locator("td[data-label=Until]")).to_have_text(start.isoformat())
    expect(rows.filter(has_text="West").locator("td[data-label=From]")).to_have_text(start.isoformat())
    expect(rows.filter(has_text="West")).to_contain_text("scheduled")
    look(page, "moved")
    with db.read() as s:
        held = {
            (p.team_id, p.valid_from, p.valid_to)
            for p in s.scalars(select(MembershipPeriod).where(MembershipPeriod.user_id == reps[1]))
        }
        events = s.execute(
            select(AuditEvent.action, AuditEvent.target_id, AuditEvent.changes).where(
                AuditEvent.workspace_id == ws.id, AuditEvent.target_type == "membership"
            )
        ).all()
    assert held == {(east, today, start), (west, start, None)}
    mine = [(action, target) for action, target, changes in events if str(reps[1]) in changes]
    assert sorted(mine, key=str) == sorted(
        [("membership.added", east), ("membership.updated", east), ("membership.updated", west)], key=str
    )

    # The hierarchy: each team's manager, its direct members and everyone under it (a person once).
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    page.goto(base_url + "/teams/hierarchy")
    event.remove(db.engine, "before_cursor_execute", seen)
    few = len(statements)
    expect(page.locator(f"#facts-{sales} .team-manager")).to_have_text("Manager: Mia Boss")
    expect(page.locator(f"#facts-{sales} .team-manager a")).to_have_attribute("href", f"/users/{boss}")
    expect(page.locator(f"#facts-{sales} .team-direct")).to_have_text("1 member")
    expect(page.locator(f"#facts-{sales} .team-total")).to_have_text("4 with sub-teams")
    expect(page.locator(f"#facts-{east} .team-direct")).to_have_text("3 members")
    expect(page.locator(f"#facts-{east} .team-manager")).to_have_text("Manager: none")
    expect(page.locator(f"#facts-{west} .team-direct")).to_have_text("1 member")
    look(page, "hierarchy")
    # On the day of the move: rep1 has left East for West.
    page.goto(f"{base_url}/teams/hierarchy?asOf={start}")
    expect(page.locator(f"#facts-{east} .team-direct")).to_have_text("2 members")
    expect(page.locator(f"#facts-{west} .team-direct")).to_have_text("2 members")
    expect(page.locator(f"#facts-{sales} .team-total")).to_have_text("4 with sub-teams")

    # Twenty more teams, nested, with members: the page asks the database no more often.
    parent = west
    for i in range(20):
        parent = _team(db, ws, f"Pod {i}", parent, manager=str(reps[i % 4]))
        _join(db, ws, reps[i % 4], parent)
    statements.clear()
    event.listen(db.engine, "before_cursor_execute", seen)
    page.goto(base_url + "/teams/hierarchy")
    event.remove(db.engine, "before_cursor_execute", seen)
    assert len(statements) == few, (few, statements)
    expect(page.locator(f"#facts-{west} .team-total")).to_have_text("4 with sub-teams")
    expect(page.locator(f"#facts-{sales} .team-total")).to_have_text("4 with sub-teams")


# -- 10. dates as dates, a labelled timeline, the variables grid ---------------------------------------------

PEOPLE = 60


def test_quotas_read_as_dates_on_a_scale_and_across_people(
    page: Page, base_url: str, look: Look, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    west = _team(db, ws, "West")
    _team(db, ws, "East")
    actor = _actor(ws)
    people = []
    for i in range(PEOPLE):
        uid = _person(db, ws, f"rep{i:02d}@example.com", f"Rep{i:02d}", "Seller", ["Hunters"] if i % 3 == 0 else None)
        people.append(uid)
        entries = [
            {"name": "Quota", "value": 100000 + i, "startDate": "2027-01-01", "endDate": "2027-07-01"},
            {"name": "Quota", "value": 120000 + i, "startDate": "2027-07-01"},
            {"name": "Rate", "value": Decimal("0.05")},
        ]
        with db.write() as s:
            variables.replace(s, actor, uid, variables.parse_entries(entries))
        if i < 10:
            _join(db, ws, uid, west)
    _person(db, ws, "new@example.com", "New", "Hire")  # no quota yet
    browser_login(page, base_url, "chief@example.com")

    # A person's Custom tab: dates as dates, and a scale of dates under the bars.
    page.goto(f"{base_url}/users/{people[0]}?tab=custom")
    main = page.locator("main").inner_text()
    assert "T00:00:00" not in page.content()
    expect(page.locator("table.custom td[data-label=From]")).to_have_text(["2027-01-01", "2027-07-01", "open"])
    expect(page.locator("table.custom td[data-label=Until]")).to_have_text(["2027-07-01", "open", "open"])
    ticks = page.locator("table.custom tfoot .timeline-scale .tick").all_inner_texts()
    assert len(ticks) == 5 and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", t) for t in ticks), ticks
    assert ticks == sorted(ticks) and ticks[0] <= "2027-01-01" < "2027-07-01" <= ticks[-1], ticks
    # The scale sits under the timeline's bars, left edge to left edge.
    bar = page.locator("table.custom tbody td.timeline").first.bounding_box()
    scale = page.locator("table.custom tfoot .timeline-scale").bounding_box()
    assert bar and scale and abs(bar["x"] - scale["x"]) < 1 and scale["y"] > bar["y"]
    assert "Quota = 100000 from 2027-01-01 until 2027-07-01" in main
    look(page, "custom-tab")
    page.goto(f"{base_url}/users/{people[0]}?tab=activity")
    assert "T00:00:00" not in page.locator("main").inner_text()

    # The grid: people by periods for one variable name, paged, filtered, exported.
    page.goto(base_url + "/users")
    page.locator("#nav").get_by_role("link", name="Variables").click()
    page.get_by_label("Variable").select_option("Quota")
    page.get_by_role("button", name="Show").click()
    grid = page.locator("#variable-grid")
    expect(grid.locator("thead th")).to_have_text(["Person", "2027-01-01 – 2027-07-01", "from 2027-07-01"])
    expect(page.locator("#grid-count")).to_have_text(f"{PEOPLE} people · 2 periods")
    first = grid.locator("tbody tr").first
    expect(first.locator("th")).to_contain_text("Rep00 Seller")
    expect(first.locator("td")).to_have_text(["100000", "120000"])
    expect(page.locator("nav.pager")).to_contain_text("Page 1 of 2")
    assert "T00:00:00" not in page.content()
    look(page, "grid")
    page.locator("nav.pager").get_by_role("link", name="Next").click()
    expect(grid.locator("tbody tr")).to_have_count(PEOPLE - 50)

    page.get_by_label("Team").fill("West")
    page.get_by_label("Tag").fill("hunters")
    page.get_by_role("button", name="Show").click()
    expected = [f"Rep{i:02d} Seller" for i in range(10) if i % 3 == 0]
    expect(page.locator("#variable-grid tbody th a")).to_have_text(expected)
    expect(page.locator("#grid-count")).to_have_text(f"{len(expected)} people · 2 periods")
    look(page, "grid-filtered")
    with page.expect_download() as got:
        page.locator("#export-grid").get_by_role("link", name="CSV").click()
    text = got.value.path().read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["emailAddress", "name", "2027-01-01 – 2027-07-01", "from 2027-07-01"]
    assert table[1:] == [[f"rep{i:02d}@example.com", f"Rep{i:02d} Seller", str(100000 + i), str(120000 + i)]
                         for i in range(10) if i % 3 == 0]  # fmt: skip

    # People with no quota on request; an unknown team is said beside its field, the filters kept.
    page.get_by_label("Team").fill("")
    page.get_by_label("Tag").fill("")
    page.get_by_label("Also list people with no value").check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#grid-count")).to_have_text(f"{PEOPLE + 3} people · 2 periods")  # and the two admins
    page.get_by_label("Team").fill("Wets")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#grid-team-error")).to_contain_text("No team named Wets")
    expect(page.get_by_label("Team")).to_have_value("Wets")
    expect(page.get_by_label("Also list people with no value")).to_be_checked()
    look(page, "grid-unknown-team")


# -- 12. pickers ----------------------------------------------------------------------------------------------


def test_pickers_search_as_you_type_and_a_typo_keeps_the_form(
    page: Page, nojs: Page, base_url: str, look: Look, plain_look: Look, ws: WS, db: Database
) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    ana = _person(db, ws, "ana.silva@example.com", "Ana", "Silva")
    for i in range(14):
        _person(db, ws, f"analyst{i}@example.com", f"Analyst{i}", "Numbers")
    _team(db, ws, "Sales")
    _team(db, ws, "Sales East")
    east = _team(db, ws, "East")
    other = make_workspace(db, "Elsewhere", "ana.else@example.com")
    with db.write() as s:
        inp, _ = parse_team({"name": "Sales Elsewhere"}, field_pointer())
        teams.upsert(s, Actor(other.id, None, CLI, CLI), inp)
    browser_login(page, base_url, "chief@example.com")

    # The server's answers: the signed-in workspace only, a few at a time.
    found = page.request.get(base_url + "/pick/people?q=ana").json()
    emails = [o["value"] for o in found]
    assert "ana.silva@example.com" in emails and "ana.else@example.com" not in emails and len(found) == 10
    assert {"value": "ana.silva@example.com", "label": "Ana Silva"} in found
    assert [o["value"] for o in page.request.get(base_url + "/pick/teams?q=sales").json()] == ["Sales", "Sales East"]

    # Typing offers matches under the field; the one chosen is saved.
    page.goto(f"{base_url}/teams/{east}")
    form = page.locator("#edit-team")
    manager = form.get_by_label("Manager (e-mail)")
    manager.press_sequentially("silva", delay=30)
    options = page.locator("#edit-team-manager-options option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("value", "ana.silva@example.com")
    expect(options.first).to_have_attribute("label", "Ana Silva")
    manager.fill("ana.silva@example.com")
    parent = form.get_by_label("Parent team")
    parent.press_sequentially("sale", delay=30)
    expect(page.locator("#edit-team-parent-options option")).to_have_count(2)
    parent.fill("Sales")
    form.get_by_label("Description").fill("Eastern reps")
    look(page, "pickers-offered")
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    with db.read() as s:
        saved = s.scalars(select(Team).where(Team.id == east)).one()
        sales = s.scalars(select(Team.id).where(Team.workspace_id == ws.id, Team.name == "Sales")).one()
    assert (saved.manager_id, saved.parent_team_id, saved.description) == (ana, sales, "Eastern reps")

    # A typo: the form keeps every value, the problem is beside the field with what was probably meant.
    form = page.locator("#edit-team")
    form.get_by_label("Manager (e-mail)").fill("ana.silva@exmaple.com")
    form.get_by_label("Description").fill("Eastern reps, all of them")
    form.get_by_role("button", name="Save").click()
    error = page.locator("#edit-team-manager-error")
    expect(error).to_contain_text(
        "No user ana.silva@exmaple.com in this workspace; did you mean ana.silva@example.com?"
    )
    form = page.locator("#edit-team")
    expect(form.get_by_label("Manager (e-mail)")).to_have_value("ana.silva@exmaple.com")
    expect(form.get_by_label("Description")).to_have_value("Eastern reps, all of them")
    expect(form.get_by_label("Parent team")).to_have_value("Sales")
    look(page, "picker-typo")

    # A person's direct manager, picked the same way.
    rep = _person(db, ws, "rep@example.com", "Rep", "One")
    page.goto(f"{base_url}/users/{rep}")
    field = page.locator("#edit-user").get_by_label("Direct manager (e-mail)")
    field.press_sequentially("Ana S", delay=30)
    expect(page.locator("#edit-user-manager-options option")).to_have_count(1)
    field.fill("ana.silva@example.com")
    page.locator("#edit-user").get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    with db.read() as s:
        assert s.scalars(select(User.direct_manager_id).where(User.id == rep)).one() == ana

    # Without JavaScript: plain inputs that take an e-mail, or a name one person has.
    browser_login(nojs, base_url, "chief@example.com")
    nojs.goto(base_url + "/teams")
    form = nojs.locator("#add-team")
    form.get_by_label("Name").fill("West")
    form.get_by_label("Manager (e-mail)").fill("Ana Silva")
    form.get_by_label("Parent team").fill("sales east")
    form.get_by_role("button", name="Create team").click()
    expect(nojs.locator(".notice")).to_have_text("Team West was created.")
    plain_look(nojs, "created-without-javascript")
    with db.read() as s:
        west = s.scalars(select(Team).where(Team.workspace_id == ws.id, Team.name == "West")).one()
        sales_east = s.scalars(select(Team.id).where(Team.workspace_id == ws.id, Team.name == "Sales East")).one()
    assert (west.manager_id, west.parent_team_id) == (ana, sales_east)


def test_add_members_label_names_every_separator(page: Page, base_url: str, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    team = _team(db, ws, "East")
    browser_login(page, base_url, "chief@example.com")
    page.goto(f"{base_url}/teams/{team}?tab=members")
    label = page.locator("label[for=emails]").inner_text()
    assert all(word in label for word in ("commas", "semicolons", "spaces", "new lines")), label
