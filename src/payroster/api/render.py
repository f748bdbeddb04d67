"""Rendering services' results as the JSON API's bodies."""

from __future__ import annotations

from typing import Any

from payroster.api.deps import iso
from payroster.db.models import Team
from payroster.services.teams import FLAG_COLUMNS
from payroster.services.users import UserView


def user_body(v: UserView) -> dict[str, Any]:
    """A user as ``UserOut``."""
    u = v.user
    return {
        "id": str(u.id),
        "emailAddress": u.email,
        "role": u.role if u.active else "Deactivated",
        "active": u.active,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "directManagerId": str(u.direct_manager_id) if u.direct_manager_id else None,
        "tags": v.tags,
        "aliases": v.aliases,
        "createdAt": iso(u.created_at),
        "updatedAt": iso(u.updated_at),
    }


def team_body(t: Team) -> dict[str, Any]:
    """A team as ``TeamOut``."""
    return {
        "id": str(t.id),
        "name": t.name,
        "description": t.description,
        "managerId": str(t.manager_id) if t.manager_id else None,
        "parentTeamId": str(t.parent_team_id) if t.parent_team_id else None,
        **{wire: bool(getattr(t, col)) for wire, col in FLAG_COLUMNS.items()},
        "createdAt": iso(t.created_at),
        "updatedAt": iso(t.updated_at),
    }
