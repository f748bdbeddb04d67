"""Rendering services' results as the JSON API's bodies."""

from __future__ import annotations

from typing import Any

from payroster.api.deps import iso
from payroster.db.models import Team
from payroster.domain import wire
from payroster.services.teams import FLAG_COLUMNS
from payroster.services.users import UserView


def user_body(v: UserView) -> dict[str, Any]:
    """A user as ``UserOut``."""
    u = v.user
    return wire.user(
        u.id, u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, v.tags, v.aliases,
        u.created_at, u.updated_at,
    )  # fmt: skip


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
