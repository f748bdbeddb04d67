"""The pickers' answers: a few people or teams of the signed-in admin's workspace matching typed text, as JSON for
``static/app.js`` to offer under the field (a ``<datalist>``). Without JavaScript the fields are plain inputs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from payroster.services import pickers
from payroster.web.core import database, need_admin, query_text

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])


def _answer(options: list[dict[str, str]]) -> Response:
    return JSONResponse(options, headers={"Cache-Control": "no-store"})


@router.get("/pick/people")
def pick_people(request: Request, q: str = "") -> Response:
    """People whose name or e-mail holds ``q``: the e-mail the forms take, the name to recognise them by."""
    who = need_admin(request)
    with database(request).read() as s:
        found = pickers.people(s, who.workspace_id, q)
    return _answer([{"value": p.email, "label": p.name} for p in found])


@router.get("/pick/teams")
def pick_teams(request: Request, q: str = "") -> Response:
    """Teams whose name holds ``q``."""
    who = need_admin(request)
    with database(request).read() as s:
        found = pickers.teams(s, who.workspace_id, q)
    return _answer([{"value": name, "label": name} for name in found])
