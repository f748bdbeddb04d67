"""The pages' changes go through the services and are audited as the web channel; accessibility basics;
invitation e-mails through a real SMTP server."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect
from sqlalchemy import select

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import AuditEvent, Team, TeamMember, User
from payroster.services import users, variables
from tests.conftest import WS
from tests.procs import free_port
from tests.web.conftest import browser_login, csrf_of, http_login, make_user


@pytest.fixture
def admin(base_url: str, ws: WS, db: Database) -> Iterator[httpx.Client]:
    """A signed-in FullAdmin's browser-like client."""
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert http_login(c, "chief@example.com").status_code == 303
        yield c


def _post(client: httpx.Client, path: str, **data: str) -> httpx.Response:
    token = csrf_of(client.get("/users").text)
    return client.post(path, data={"csrf_token": token, **data})


def test_user_changes_are_audited_as_the_web_channel(admin: httpx.Client, ws: WS, db: Database) -> None:
    uid = make_user(db, ws.id, "ana@example.com", "Participant", password=None)
    boss = make_user(db, ws.id, "boss@example.com", "LimitedAdmin", password=None)
    answer = _post(admin, f"/users/{uid}", emailAddress="ana.silva@example.com", firstName="Ana", lastName="Silva",
                   role="LimitedAdmin", manager="boss@example.com")  # fmt: skip
    assert answer.status_code == 303 and "error" not in answer.headers.get("set-cookie", "")
    assert _post(admin, f"/users/{uid}/tags/add", value="West, Hunters").status_code == 303
    assert _post(admin, f"/users/{uid}/aliases/add", value="AS-1").status_code == 303
    assert _post(admin, f"/users/{uid}/tags/remove", value="west").status_code == 303
    bad = _post(admin, f"/users/{uid}", emailAddress="not an email", role="Participant")
    assert bad.status_code == 303 and "error" in admin.get(bad.headers["location"]).text
    with db.read() as s:
        view = users.view(s, users.get(s, ws.id, uuid.UUID(uid)))
        events = s.scalars(select(AuditEvent).where(AuditEvent.target_id == uuid.UUID(uid))).all()
    assert view.user.email == "ana.silva@example.com" and view.user.role == "LimitedAdmin"
    assert str(view.user.direct_manager_id) == boss
    assert view.tags == ["Hunters"] and view.aliases == ["AS-1"]
    ui = [e for e in events if e.channel == "ui"]
    assert len(ui) == 4 and all(e.actor_kind == "user" for e in ui)
    page = admin.get(f"/users/{uid}?tab=activity").text
    assert page.count("<code>user.updated</code>") == 4 and "chief@example.com" in page


def test_team_pages_edit_members_and_variables(admin: httpx.Client, ws: WS, db: Database) -> None:
    ids = [make_user(db, ws.id, f"m{i}@example.com", "Participant", password=None) for i in range(3)]
    created = _post(admin, "/teams", name="North", manager="m0@example.com")
    assert created.status_code == 303
    team_id = created.headers["location"].rsplit("/", 1)[1]
    _post(admin, "/teams", name="North America")
    child = _post(admin, "/teams", name="Boston", parent="North").headers["location"].rsplit("/", 1)[1]
    added = _post(admin, f"/teams/{team_id}/members", emails="m0@example.com\nm1@example.com, M2@EXAMPLE.COM")
    assert added.status_code == 303
    assert "3 added, 0 already members" in admin.get(added.headers["location"]).text
    again = _post(admin, f"/teams/{team_id}/members", emails="m1@example.com, nobody@example.com")
    assert "nobody@example.com" in admin.get(again.headers["location"]).text  # nothing added, the stranger named
    _post(admin, f"/teams/{team_id}/members", remove=ids[2])
    _post(
        admin,
        f"/teams/{team_id}",
        name="North",
        description="Northern reps",
        manager="m0@example.com",
        managerCanViewCredits="on",
    )
    _post(admin, f"/teams/{team_id}/custom", name="Quota", value="120000.50", startDate="2026-01-01", endDate="")
    _post(admin, f"/teams/{team_id}/custom", name="Quota", value="90000", startDate="", endDate="2026-01-01")
    overlap = _post(admin, f"/teams/{team_id}/custom", name="quota", value="1", startDate="2026-06-01", endDate="")
    assert "overlap" in admin.get(overlap.headers["location"]).text.lower()
    with db.read() as s:
        team = s.scalars(select(Team).where(Team.id == uuid.UUID(team_id))).one()
        members = set(map(str, s.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id))))
        entries = variables.list_entries(s, ws.id, team.id)
    assert team.description == "Northern reps" and team.manager_can_view_credits and not team.members_can_view_credits
    assert str(team.manager_id) == ids[0]
    assert members == {ids[0], ids[1]}
    assert [(e.name, str(e.value)) for e in entries] == [("Quota", "90000"), ("Quota", "120000.50")]
    custom = admin.get(f"/teams/{team_id}?tab=custom").text
    assert "120000.50" in custom and custom.count('class="bar') == 2
    _post(admin, f"/teams/{team_id}/custom", index="0")
    hierarchy = admin.get("/teams/hierarchy").text
    assert hierarchy.index("North</a>") < hierarchy.index("Boston</a>")
    deleted = _post(admin, f"/teams/{team_id}/delete")
    assert deleted.headers["location"] == "/teams"
    with db.read() as s:
        assert s.scalars(select(Team.parent_team_id).where(Team.id == uuid.UUID(child))).one() is None
        assert len(variables.list_entries(s, ws.id, uuid.UUID(child))) == 0


def test_activity_log_filters(admin: httpx.Client, ws: WS, db: Database, base_url: str) -> None:
    httpx.post(
        base_url + "/api/v1/users", json={"emailAddress": "api@example.com", "role": "Participant"}, headers=ws.headers
    )
    uid = make_user(db, ws.id, "ui@example.com", "Participant", password=None)
    _post(admin, f"/users/{uid}/tags/add", value="Gold")
    by_actor = admin.get("/settings/activity", params={"actor": "chief@"}).text
    assert "<code>user.updated</code>" in by_actor and "<code>user.created</code>" not in by_actor
    by_action = admin.get("/settings/activity", params={"action": "user.created"}).text
    assert by_action.count("<code>user.created</code>") >= 3 and "<code>user.updated</code>" not in by_action
    by_target = admin.get("/settings/activity", params={"target": "ui@example.com"}).text
    assert "Gold" in by_target and "api@example.com" not in by_target
    future = admin.get("/settings/activity", params={"since": "2999-01-01"}).text
    assert "No events." in future
    bad = admin.get("/settings/activity", params={"since": "yesterday"})
    assert bad.status_code == 422 and "must be a date" in bad.text


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope)
        return "250 OK"


def test_invitation_is_emailed_when_smtp_is_configured(
    http_server: Any, settings: Settings, db: Database, ws: WS
) -> None:
    inbox = _Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        switch, url = http_server
        switch.app = create_app(settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"}), db)
        uid = make_user(db, ws.id, "invitee@example.com", "Participant", password=None)
        make_user(db, ws.id, "chief@example.com", "FullAdmin")
        with httpx.Client(base_url=url) as c:
            http_login(c, "chief@example.com")
            answer = _post(c, f"/users/{uid}/invitation")
            page = c.get(answer.headers["location"])  # post/redirect/get
        assert "E-mailed to invitee@example.com" in page.text
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        (message,) = inbox.messages
        assert message.rcpt_tos == ["invitee@example.com"]
        link = re.search(r'id="invitation-link" readonly value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert link in message.content.decode()
    finally:
        smtp.stop()


def test_phone_menu_and_labelled_controls(page: Page, base_url: str, ws: WS, db: Database) -> None:
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    uid = make_user(db, ws.id, "someone@example.com", "Participant", password=None)
    browser_login(page, base_url, "chief@example.com")
    for path in ("/users", f"/users/{uid}", f"/users/{uid}?tab=teams", f"/users/{uid}?tab=custom", "/teams",
                 "/users/bulk", "/account/security", "/settings/connections/odata", "/settings/connections/scim",
                 "/settings/activity"):  # fmt: skip
        page.goto(base_url + path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                 .map(el => el.name || el.id)"""
        )
        assert unlabelled == [], (path, unlabelled)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(base_url + "/users")
    nav_link = page.get_by_role("link", name="Teams", exact=True)
    expect(nav_link).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav_link).to_be_visible()
    nav_link.click()
    expect(page).to_have_url(re.compile(r"/teams$"))
    with db.read() as s:
        assert s.scalar(select(User.email).where(User.id == uuid.UUID(uid))) == "someone@example.com"
