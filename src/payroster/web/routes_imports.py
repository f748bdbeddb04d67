"""Users > Import: teams, memberships, custom variables or a whole workbook from a CSV, TSV or XLSX file, with a
preview of every problem (or of what would change) before anything is applied (README.md, "Imports")."""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from payroster.domain.errors import Invalid
from payroster.services import imports
from payroster.web.core import database, field, form, need_full_admin, query_text, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
KINDS = {
    "teams": "Teams",
    "memberships": "Memberships",
    "custom-variables": "Custom variables",
    "users": "Users",
    "workbook": "Workbook (Users, Teams, Memberships, CustomVariables sheets)",
}


@router.get("/imports")
def imports_page(request: Request) -> Response:
    """Choose what to import and the file."""
    need_full_admin(request)
    return render(request, "imports.html", kinds=KINDS, columns=imports.COLUMNS, sheets=imports.SHEETS)


def _run(request: Request, who: Any, kind: str, content: bytes, apply: bool) -> dict[str, imports.Counts]:
    """Both passes over the file (kept in a temporary file: the readers stream from disk), the second one
    rolled back unless ``apply``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(content)
        with imports.prepare(path, None if kind == "workbook" else kind) as prepared:
            if apply:
                return imports.apply(database(request), who.actor(), prepared)
            return imports.check(database(request), who.actor(), prepared)


@router.post("/imports")
async def import_file(request: Request) -> Response:
    """The preview (every problem, or the counts) of an uploaded or pasted file; with ``apply``, the import."""
    who = need_full_admin(request)
    data = await form(request, request.app.state.settings.max_bulk_bytes)
    kind = field(data, "kind")
    if kind not in KINDS:
        return redirect(request, "/imports", error="Choose what the file holds.")
    upload = data.get("file")
    content = b""
    if field(data, "payload"):
        try:
            content = base64.b64decode(field(data, "payload"), validate=True)
        except (binascii.Error, ValueError):
            return redirect(request, "/imports", error="The preview is damaged: upload the file again.")
    elif isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read()
    elif field(data, "text").strip():
        content = field(data, "text").encode("utf-8")
    if not content:
        return redirect(request, "/imports", error="Choose a file or paste rows first.")
    apply = field(data, "apply") == "1"
    try:
        counts = await run_in_threadpool(_run, request, who, kind, content, apply)
    except Invalid as exc:
        return render(
            request, "imports.html", 422, kinds=KINDS, columns=imports.COLUMNS, sheets=imports.SHEETS, kind=kind,
            problems=exc.details, summary=exc.message,
        )  # fmt: skip
    if apply:
        done = "; ".join(
            f"{imports.SHEETS[k]}: {c.rows} rows, {c.created} created, {c.updated} updated, {c.unchanged} unchanged"
            for k, c in counts.items()
        )
        return redirect(request, "/imports", notice=f"Imported. {done}.")
    return render(
        request, "imports.html", kinds=KINDS, columns=imports.COLUMNS, sheets=imports.SHEETS, kind=kind,
        counts=counts, payload=base64.b64encode(content).decode("ascii"),
    )  # fmt: skip
