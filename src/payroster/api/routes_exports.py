"""JSON API: exports of users, teams, memberships, custom variables and audit events as CSV or XLSX.

For a full administrator's key and a limited administrator's alike (the only routes a LimitedAdmin's key may use:
they change nothing); the filters are the list pages' (README.md, "Exports").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

from payroster.api.deps import admin_principal, database
from payroster.api.errors import ERRORS
from payroster.db.engine import Database
from payroster.services import exports
from payroster.services.apikeys import Principal

FORBIDDEN = {**ERRORS[403], "description": "the key's owner is not an active FullAdmin or LimitedAdmin"}
router = APIRouter(responses={**ERRORS, 403: FORBIDDEN}, tags=["exports"])
Format = Literal["csv", "xlsx"]
Handler = TypeVar("Handler", bound=Callable[..., Response])
_FILE = {
    200: {
        "description": "the file: UTF-8 CSV with a BOM, or an XLSX workbook",
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in exports.FORMATS.values()},
    }
}


def answer(db: Database, workspace_id: uuid.UUID, kind: str, fmt: str, params: Mapping[str, str]) -> Response:
    """Check the filters, then stream the file: a sync iterator, whose every step Starlette runs in the thread
    pool, so reading a chunk never blocks the event loop (the pages send the same: web/routes_exports.py)."""
    got = exports.download(db, workspace_id, kind, fmt, params)  # this handler already runs in the thread pool
    return StreamingResponse(got.chunks, media_type=got.media_type, headers=got.headers)


def _route(kind: str, operation: str, summary: str) -> Callable[[Handler], Handler]:
    return router.get(
        f"/api/v1/exports/{kind}.{{fmt}}",
        operation_id=operation,
        summary=summary,
        response_class=StreamingResponse,
        responses=_FILE,  # type: ignore[arg-type]
    )


@_route("users", "exportUsers", "Export users")
def export_users(
    fmt: Format,
    q: str = Query("", description="in the name, e-mail, a tag, an alias or the role"),
    status: Literal["active", "deactivated", "all"] = "all",
    role: Literal["", "FullAdmin", "LimitedAdmin", "Participant"] = "",
    db: Database = Depends(database),
    who: Principal = Depends(admin_principal),
) -> Response:
    """Users in e-mail order, with the import's columns."""
    return answer(db, who.workspace_id, "users", fmt, {"q": q, "status": status, "role": role})


@_route("teams", "exportTeams", "Export teams")
def export_teams(
    fmt: Format,
    q: str = Query("", description="in the team's name"),
    db: Database = Depends(database),
    who: Principal = Depends(admin_principal),
) -> Response:
    """Teams in name order: parent team by name, manager by e-mail."""
    return answer(db, who.workspace_id, "teams", fmt, {"q": q})


@_route("memberships", "exportMemberships", "Export memberships")
def export_memberships(
    fmt: Format,
    team: str = Query("", description="one team, by id or name"),
    user: str = Query("", description="one user, by id or e-mail"),
    db: Database = Depends(database),
    who: Principal = Depends(admin_principal),
) -> Response:
    """Memberships by team name, then e-mail."""
    return answer(db, who.workspace_id, "memberships", fmt, {"team": team, "user": user})


@_route("custom-variables", "exportCustomVariables", "Export custom variables")
def export_custom_variables(
    fmt: Format,
    targetType: Literal["", "User", "Team"] = "",  # noqa: N803
    target: str = Query("", description="one user (id or e-mail) or team (id or name)"),
    name: str = Query("", description="one variable's name"),
    db: Database = Depends(database),
    who: Principal = Depends(admin_principal),
) -> Response:
    """Custom variable entries, a target's entries together."""
    params = {"targetType": targetType, "target": target, "name": name}
    return answer(db, who.workspace_id, "custom-variables", fmt, params)


@_route("audit-events", "exportAuditEvents", "Export audit events")
def export_audit_events(
    fmt: Format,
    actor: str = Query("", description="in the actor's e-mail"),
    action: str = Query("", description="in the action, e.g. user.updated"),
    target: str = Query("", description="the target's id, or text in a user's e-mail or a team's name"),
    since: str = Query("", description="from this day (YYYY-MM-DD), UTC"),
    until: str = Query("", description="to this day included (YYYY-MM-DD), UTC"),
    db: Database = Depends(database),
    who: Principal = Depends(admin_principal),
) -> Response:
    """Audit events newest first, as the Activity Log shows them."""
    params = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    return answer(db, who.workspace_id, "audit-events", fmt, params)
