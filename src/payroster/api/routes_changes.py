"""JSON API: the change feed, ``GET /api/v1/changes`` (README "Change feed")."""

from __future__ import annotations

import itertools
import time
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from payroster.api.body import query_text
from payroster.api.deps import actor, database, principal
from payroster.api.errors import ERRORS
from payroster.db.engine import Database
from payroster.domain.errors import Unavailable
from payroster.services import changes
from payroster.services.context import Actor

router = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS, tags=["changes"])

MAX_WAIT = 30.0  # seconds a long poll may last
MAX_WAITERS = 100  # long polls waiting at once per server process; more answer 503 with Retry-After
# A waiting poll reads again after these pauses (then every last one): quick to notice a change that follows
# shortly, cheap while nothing happens (each read is one short statement in the thread pool).
PAUSES = (0.05, 0.1, 0.2, 0.35, 0.5)


class ChangeActor(BaseModel):
    """Who made a change: the kind of credential and its user (none for a provisioning token)."""

    kind: str
    userId: str | None


class ChangeField(BaseModel):
    """One field of a change: its value before and after."""

    field: str
    before: Any
    after: Any


class Change(BaseModel):
    """One committed change (an audit event) with its place in the workspace's feed."""

    sequence: int
    occurredAt: str
    action: str
    targetType: str
    targetId: str
    actor: ChangeActor
    channel: str
    changes: list[ChangeField]


class ChangePage(BaseModel):
    """Changes in sequence order and the cursor to read after them (the same one when nothing was new)."""

    changes: list[Change]
    next: str


class _Waiters:
    """How many long polls are waiting in this process; past ``MAX_WAITERS`` a poll is refused, not queued.

    Waiting costs no thread and no connection (the handler sleeps on the event loop between reads), but every
    waiter reads a few times a second, so their number is bounded. Only the event loop's thread touches it."""

    def __init__(self) -> None:
        self.count = 0


@router.get("/api/v1/changes", operation_id="listChanges", response_model=ChangePage)
async def list_changes(
    request: Request,
    after: str | None = Query(None, description="the `next` cursor of a previous page; absent: from the start"),
    limit: int = Query(100, ge=1, le=1000, description="most changes in the page"),
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="seconds to wait for a change when none is new"),
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> Response:
    """The workspace's changes after a cursor, in the order they were committed; optionally waits for one."""
    cursors = changes.Cursors(request.app.state.secret_key)
    ws = who.workspace_id
    position = None if after is None else cursors.load(ws, after)
    page = await anyio.to_thread.run_sync(changes.read, db, ws, position, limit, True)
    if not page.events and wait > 0:
        page = await _wait(request, db, ws, page.last, limit, wait)
    # The events as the database wrote them, joined (changes.read, ``as_json``).
    events = ",".join(e.doc for e in page.events).encode()
    body = b'{"changes":[' + events + b'],"next":' + orjson.dumps(cursors.dump(ws, page.last)) + b"}"
    return Response(body, media_type="application/json")


async def _wait(request: Request, db: Database, ws: Any, position: int, limit: int, wait: float) -> changes.Page:
    """Read again after short pauses until a change comes, ``wait`` seconds pass or the client goes away."""
    waiters: _Waiters | None = getattr(request.app.state, "change_waiters", None)
    if waiters is None:
        waiters = request.app.state.change_waiters = _Waiters()
    if waiters.count >= MAX_WAITERS:
        raise Unavailable("too many clients are waiting for changes; retry later", target="wait", retry_after=1)
    waiters.count += 1
    try:
        deadline = time.monotonic() + wait
        page = changes.Page([], position)
        for attempt in itertools.count():
            left = deadline - time.monotonic()
            if left <= 0 or await request.is_disconnected():
                break
            await anyio.sleep(min(PAUSES[min(attempt, len(PAUSES) - 1)], left))
            page = await anyio.to_thread.run_sync(changes.read, db, ws, position, limit, True)
            if page.events:
                break
        return page
    finally:
        waiters.count -= 1
