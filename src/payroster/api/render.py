"""Rendering services' results as the JSON API's bodies."""

from __future__ import annotations

from typing import Any

from payroster.api.deps import iso
from payroster.db.models import Team
from payroster.domain import wire
from payroster.services import teams
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
    return {"id": str(t.id), **teams.wire_fields(t), "createdAt": iso(t.created_at), "updatedAt": iso(t.updated_at)}
