"""The demo workspace: sample users, teams, memberships and variables, created once."""

from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from payroster.db.models import Workspace
from payroster.domain.effective import parse_instant
from payroster.services import apikeys, memberships, passwords, teams, users, variables, workspaces
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_team, parse_user

DEMO_SLUG = "demo"
ADMIN = "admin@demo.payroster.example"
PEOPLE = [
    ("ana.alvarez@demo.payroster.example", "Participant", "Ana", "Alvarez", "AE|SouthEast", "ID-101"),
    ("bo.berg@demo.payroster.example", "Participant", "Bo", "Berg", "AE|West", "ID-102"),
    ("chen.cho@demo.payroster.example", "LimitedAdmin", "Chen", "Cho", "Manager|West", "ID-103"),
    ("dara.diallo@demo.payroster.example", "Participant", "Dara", "Diallo", "SDR|SouthEast", "ID-104"),
    ("eli.evans@demo.payroster.example", "Deactivated", "Eli", "Evans", "AE", "ID-105"),
]


def ensure(session: Session) -> tuple[Workspace, str, str]:
    """Create the demo workspace if missing; always reset the admin password and issue a key.

    Returns (workspace, admin password, API key); the password is new on every run, so none is stored
    in clear anywhere.
    """
    ws = session.scalars(select(Workspace).where(Workspace.slug == DEMO_SLUG)).first()
    if ws is None:
        ws = workspaces.create(session, "Demo", ADMIN, None, slug=DEMO_SLUG).workspace
        _populate(session, Actor(ws.id, None, "cli", "cli"))
    admin = users.find_by_email(session, ws.id, ADMIN)
    assert admin is not None
    password = secrets.token_urlsafe(12)
    users.set_password_hash(session, admin, passwords.hash_password(password))
    key, _ = apikeys.issue(session, Actor(ws.id, admin.id, "cli", "cli"), admin.id, "Demo key")
    return ws, password, key


def _populate(session: Session, actor: Actor) -> None:
    ids = {}
    for email, role, first, last, tags, aliases in PEOPLE:
        inp, _ = parse_user(
            {
                "emailAddress": email,
                "role": role,
                "firstName": first,
                "lastName": last,
                "tags": tags,
                "aliases": aliases,
            },
            field_pointer(),
        )
        view, _ = users.upsert(session, actor, inp)
        ids[first] = view.user.id
    west, _ = teams.upsert(
        session,
        actor,
        parse_team(
            {"name": "West", "description": "West Coast", "managerId": str(ids["Chen"]), "managerCanViewResults": True},
            field_pointer(),
        )[0],
    )
    south, _ = teams.upsert(
        session, actor, parse_team({"name": "SouthEast", "parentTeamId": str(west.id)}, field_pointer())[0]
    )
    for who, team in (("Bo", west), ("Chen", west), ("Ana", south), ("Dara", south)):
        memberships.add(session, actor, ids[who], team.id)
    quota = [
        variables.Entry("MonthlyQuota", Decimal("100000"), None, parse_instant("2026-05-01")),
        variables.Entry("MonthlyQuota", Decimal("120000"), parse_instant("2026-05-01"), None),
        variables.Entry("CommissionRate", Decimal("0.085"), None, None),
    ]
    variables.replace(session, actor, ids["Ana"], quota)
