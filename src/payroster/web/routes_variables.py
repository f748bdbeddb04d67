"""Variables: one custom variable (a quota, a rate) across the workspace's people, as a grid of people by periods,
filtered by team and tag, paged, and downloadable as CSV."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from payroster.services import exports, pickers, teams, variablegrid
from payroster.web.core import PAGE_SIZE, database, need_admin, query_text, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])


def _page(value: str) -> int:
    return int(value) if value.isdigit() and 0 < int(value) < 1_000_000 else 1


def _filters(
    session: Session, ws: uuid.UUID, name: str, team: str, tag: str, missing: str
) -> tuple[variablegrid.Filters | None, dict[str, str]]:
    """The grid's filters from the query, and a message per field that names nothing (the grid is then empty)."""
    problems: dict[str, str] = {}
    team_id = None
    if team.strip():
        found = teams.find_by_name(session, ws, team)
        if found is None:
            hint = pickers.hint(pickers.teams(session, ws, team, 3))
            problems["team"] = f"No team named {team.strip()}{hint}"
        else:
            team_id = found.id
    if problems or not name:
        return None, problems
    return variablegrid.Filters(name, team_id, tag.strip(), missing == "1"), problems


@router.get("/variables")
def grid_page(
    request: Request, name: str = "", team: str = "", tag: str = "", missing: str = "", page: str = "1"
) -> Response:
    """The grid of one variable name: people (50 a page, by name) by the periods its entries start."""
    who = need_admin(request)
    number = _page(page)
    context: dict[str, Any] = {"team": team, "tag": tag, "missing": missing == "1", "page": number}
    with database(request).read() as s:
        context["names"] = names = variablegrid.names(s, who.workspace_id)
        name = name.strip() or (names[0] if names else "")
        context["name"] = name
        flt, context["problems"] = _filters(s, who.workspace_id, name, team, tag, missing)
        starts, rows, total = variablegrid.page(s, who.workspace_id, flt, number, PAGE_SIZE) if flt else ([], [], 0)
    titles = [
        variablegrid.column_title(d, starts[i + 1] if i + 1 < len(starts) else None) for i, d in enumerate(starts)
    ]
    params = {k: v for k, v in (("name", name), ("team", team), ("tag", tag), ("missing", missing)) if v}
    return render(
        request, "variables.html", titles=titles, rows=rows, total=total, params=params,
        pages=max(1, -(-total // PAGE_SIZE)), **context,
    )  # fmt: skip


@router.get("/variables/grid.csv")
def grid_csv(request: Request, name: str = "", team: str = "", tag: str = "", missing: str = "") -> Response:
    """The whole grid the page shows (every page), as CSV."""
    who = need_admin(request)
    db = database(request)
    with db.read() as s:
        flt, _ = _filters(s, who.workspace_id, name.strip(), team, tag, missing)
    if flt is None:  # no variable named, or a team that does not exist: the file is its header alone
        flt = variablegrid.Filters(name.strip(), team_id=uuid.UUID(int=0))
    export = variablegrid.export(db, who.workspace_id, flt)
    headers = {"Content-Disposition": f'attachment; filename="{export.filename("csv")}"', "Cache-Control": "no-store"}
    return StreamingResponse(exports.csv_chunks(export), media_type=exports.FORMATS["csv"], headers=headers)
