"""Users > Import: teams, memberships, custom variables or a whole workbook from a CSV, TSV or XLSX file, with a
preview of every problem (or of what would change) before anything is applied (README.md, "Imports").

The rows with problems are shown with their cells as form inputs: fixed there and re-checked, the file travels in
the form unchanged and the cells typed travel beside it (``cell:PLACE:COLUMN``), read over the file's own by
``imports.prepare``. Plain form posts: no script is needed."""

from __future__ import annotations

import base64
import binascii
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import Response

from payroster.domain.errors import Invalid
from payroster.http.body import scratch
from payroster.services import imports
from payroster.web.core import database, field, form, need_full_admin, query_text, redirect, render

# The file is spooled to disk as it arrives (Starlette's form parser for the file part; a pasted text or a
# preview's payload is a field, at most PAYROSTER_MAX_BULK_BYTES) and the whole form is capped by
# PAYROSTER_IMPORT_MAX_BYTES, as the API's import is.

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


def preview_keeps(max_field: int) -> int:
    """The largest file the preview page carries back for its Apply button: base64 (4 bytes for 3) in a field of
    at most ``max_field`` bytes (24 MiB of ``PAYROSTER_MAX_BULK_BYTES``' 32)."""
    return 3 * (max_field // 4)


def _run(
    request: Request, who: Any, kind: str, path: Path, apply: bool, edits: imports.Edits
) -> dict[str, imports.Counts]:
    """Both passes over the file (on disk: the readers stream from it) with the cells fixed in the preview over
    it, the second one rolled back unless ``apply``."""
    kind_ = None if kind == "workbook" else kind
    return imports.upload(database(request), who.actor(), path, kind_, None, not apply, edits)


async def _save(upload: UploadFile, path: Path) -> None:
    """The uploaded file (spooled to disk by the form parser) copied to ``path`` a chunk at a time."""
    await upload.seek(0)

    def copy() -> None:
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)

    await run_in_threadpool(copy)


@router.post("/imports")
async def import_file(request: Request) -> Response:
    """The preview (every problem, or the counts) of an uploaded or pasted file; with ``apply``, the import."""
    who = need_full_admin(request)
    settings = request.app.state.settings
    data = await form(request, settings.import_max_bytes, max_field=settings.max_bulk_bytes)
    try:
        async with scratch() as tmp:
            return await _answer(request, who, data, tmp / "upload")
    finally:
        await data.close()


async def _answer(request: Request, who: Any, data: Any, path: Path) -> Response:
    kind = field(data, "kind")
    if kind not in KINDS:
        return redirect(request, "/imports", error="Choose what the file holds.")
    upload = data.get("file")
    if field(data, "payload"):
        try:
            decoded = base64.b64decode(field(data, "payload"), validate=True)
        except (binascii.Error, ValueError):
            return redirect(request, "/imports", error="The preview is damaged: upload the file again.")
        await run_in_threadpool(path.write_bytes, decoded)
    elif isinstance(upload, UploadFile) and upload.filename:
        await _save(upload, path)
    elif field(data, "text").strip():
        await run_in_threadpool(path.write_bytes, field(data, "text").encode("utf-8"))
    if not path.exists() or path.stat().st_size == 0:
        return redirect(request, "/imports", error="Choose a file or paste rows first.")
    apply = field(data, "apply") == "1"
    edits = _edits(data)
    # A file too large to carry back in the page is applied by sending it again with "apply at once".
    payload = None
    keeps = preview_keeps(request.app.state.settings.max_bulk_bytes)
    if path.stat().st_size <= keeps:
        payload = base64.b64encode(await run_in_threadpool(path.read_bytes)).decode("ascii")
    keeps_text = f"{keeps >> 20:,} MiB" if keeps >= 1 << 20 else f"{keeps >> 10:,} KiB"
    try:
        counts = await run_in_threadpool(_run, request, who, kind, path, apply, edits)
    except Invalid as exc:
        return render(
            request, "imports.html", 422, kinds=KINDS, columns=imports.COLUMNS, sheets=imports.SHEETS, kind=kind,
            problems=exc.details, summary=exc.message, payload=payload, keeps=keeps_text, **_grid(exc, edits),
        )  # fmt: skip
    if apply:
        done = "; ".join(
            f"{imports.SHEETS[k]}: {c.rows} rows, {c.created} created, {c.updated} updated, {c.unchanged} unchanged"
            for k, c in counts.items()
        )
        return redirect(request, "/imports", notice=f"Imported. {done}.")
    return render(
        request, "imports.html", kinds=KINDS, columns=imports.COLUMNS, sheets=imports.SHEETS, kind=kind,
        counts=counts, payload=payload, kept=_kept(edits, set()), keeps=keeps_text,
    )  # fmt: skip


_COLUMNS = {c for cols in imports.COLUMNS.values() for c in cols}


def _edits(data: Any) -> dict[str, dict[str, str]]:
    """The cells typed in the preview, ``cell:PLACE:COLUMN`` (an empty one empties the cell), by place."""
    edits: dict[str, dict[str, str]] = {}
    for key in data:
        if key.startswith("cell:"):
            place, _, column = key[5:].rpartition(":")  # a sheet's name holds no ":" (Excel refuses it)
            if place and column in _COLUMNS:
                edits.setdefault(place, {})[column] = field(data, key).strip()
    return edits


def _kept(edits: imports.Edits, shown: set[str]) -> list[tuple[str, str]]:
    """The cells typed before, of rows no longer shown (fixed): kept as hidden fields, so they still apply."""
    return [(f"cell:{p}:{c}", v) for p, cells in edits.items() if p not in shown for c, v in cells.items()]


def _grid(exc: Invalid, edits: imports.Edits) -> dict[str, Any]:
    """The rows with problems as the page shows them to be fixed: by kind (in the import's order), each row's place,
    cells, the columns with a problem, and its problems; the typed cells of the other rows kept."""
    rows = exc.rows if isinstance(exc, imports.Refused) else {}
    found: dict[str, list[tuple[str, str]]] = {p: [] for p in rows}  # place -> (column, message)
    for d in exc.details:
        target = d.target or ""
        place, _, column = target.rpartition(", ")
        if target in found:
            found[target].append(("", d.message))
        elif place in found:
            found[place].append((column, d.message))
    grids = []
    for kind in imports.ORDER:
        places = [p for p, (k, _) in rows.items() if k == kind]
        if places:
            shown = [(p, rows[p][1], {c for c, _ in found[p]}, found[p]) for p in places]
            grids.append((kind, imports.COLUMNS[kind], shown))
    return {"grids": grids, "kept": _kept(edits, set(rows))}
