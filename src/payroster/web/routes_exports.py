"""The list pages' "Export" links: the page's search and filters, as CSV or XLSX, for administrators."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from payroster.domain.errors import NotFound
from payroster.services import exports
from payroster.web.core import database, need_admin, query_text

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])


@router.get("/exports/{kind}.{fmt}")
def export(request: Request, kind: str, fmt: str) -> Response:
    """The same file as ``GET /api/v1/exports/KIND.FMT`` with the page's query, for a FullAdmin or LimitedAdmin
    signed in (pages show the link to them only; a participant gets the 403 page)."""
    if kind not in exports.KINDS or fmt not in exports.FORMATS:
        raise NotFound("no such export")
    who = need_admin(request)
    got = exports.download(database(request), who.workspace_id, kind, fmt, request.query_params)
    return StreamingResponse(got.chunks, media_type=got.media_type, headers=got.headers)
