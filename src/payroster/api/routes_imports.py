"""JSON API: a spreadsheet file imported as the command and Users > Import do (README.md, "Imports").

The body is the file itself, written to a temporary file as it arrives (never held whole), then read twice by
``services/imports.py``: every cell checked, then everything written in one transaction, or nothing.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from payroster.api import schemas
from payroster.api.deps import database, principal
from payroster.api.errors import ERRORS
from payroster.db.engine import Database
from payroster.domain.errors import UnsupportedMediaType
from payroster.http import body
from payroster.services import imports
from payroster.services.apikeys import Principal

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# What each Content-Type says the body is; ``application/octet-stream`` (what a generated client sends) says
# nothing, so the file's first bytes tell (a zip archive is a workbook).
MEDIA = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/plain": "csv",
    "text/tab-separated-values": "tsv",
    XLSX: "xlsx",
    "application/octet-stream": None,
}
Kind = Literal["users", "teams", "memberships", "custom-variables", "workbook"]
_BODY = {
    "requestBody": {
        "required": True,
        "description": "the file: Content-Type text/csv, text/tab-separated-values, " + XLSX + " or "
        "application/octet-stream (the format then from the format parameter, else from the file's first bytes)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
router = APIRouter(
    responses={
        **ERRORS,
        413: {**ERRORS[413], "description": "the file is larger than PAYROSTER_IMPORT_MAX_BYTES"},
        415: {**ERRORS[415], "description": "a Content-Type no spreadsheet has, and no format parameter"},
        422: {**ERRORS[422], "description": "every bad cell by sheet (or line), row and column; nothing written"},
    },
    tags=["imports"],
)


def file_format(given: str | None, content_type: str | None) -> str | None:
    """The file's format: the ``format`` parameter, else its ``Content-Type``'s; 415 for a type that is no file's."""
    if given is not None:
        return given
    media, _ = body.content_type(content_type)
    if media not in MEDIA:
        raise UnsupportedMediaType(
            f"unsupported Content-Type '{media}': send text/csv, text/tab-separated-values or {XLSX},"
            " or say format=csv, tsv or xlsx"
        )
    return MEDIA[media]


@router.post(
    "/api/v1/imports/{kind}",
    operation_id="importFile",
    summary="Import a spreadsheet",
    response_model=schemas.ImportOut,
    openapi_extra=_BODY,
)
async def import_file(
    kind: Kind,
    request: Request,
    format: Literal["csv", "tsv", "xlsx"] | None = Query(None, description="overrides the Content-Type"),  # noqa: A002
    dryRun: bool = Query(False, description="check every row and count what would change; write nothing"),  # noqa: N803
    db: Database = Depends(database),
    who: Principal = Depends(principal),
) -> JSONResponse:
    """A file of one kind (CSV, TSV or XLSX), or with ``workbook`` an XLSX of the sheets Users, Teams, Memberships
    and CustomVariables, imported in one transaction: every row, or (422, each bad cell listed) none."""
    fmt = file_format(format, request.headers.get("content-type"))
    async with body.scratch() as tmp:
        path = tmp / "upload"
        await body.spool(request, request.app.state.settings.import_max_bytes, path)
        counts = await run_in_threadpool(
            imports.upload, db, who.actor("api"), path, None if kind == "workbook" else kind, fmt, dryRun
        )
    sheets = {imports.SHEETS[k]: c.wire() for k, c in counts.items()}
    return JSONResponse({"dryRun": dryRun, "sheets": sheets})
