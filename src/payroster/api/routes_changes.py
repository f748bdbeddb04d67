"""JSON API: the change feed, ``GET /api/v1/changes`` (README "Change feed")."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.background import BackgroundTask

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
AHEAD_KEPT = 8  # pages read ahead and kept per server process, each as large as its response
AHEAD_KEPT_FOR = 10.0  # seconds a page read ahead waits for its reader; then it is let go


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
    ahead = _Ahead.of(request)
    body = await ahead.take(db, ws, position, limit)
    if body is None:
        body = await anyio.to_thread.run_sync(_read_rendered, db, cursors, ws, position, limit)
    if not body.events and wait > 0:
        page = await _wait(request, db, ws, body.last, limit, wait)
        body = await anyio.to_thread.run_sync(_render, cursors, ws, page)
    # A reader going through the feed asks for the next page next: it is read once this page is sent, so that
    # the read's Python does not hold the GIL while the event loop writes this page out.
    later = BackgroundTask(ahead.start, db, cursors, ws, body.last, limit) if body.events == limit else None
    return Response(body.data, media_type="application/json", background=later)


class _Body(NamedTuple):
    """A page as its response's bytes, with how many events it holds and the position it ends at."""

    data: bytes
    events: int
    last: int


def _render(cursors: changes.Cursors, ws: uuid.UUID, page: changes.Page) -> _Body:
    """The page's response: the events as the database wrote them, joined (changes.read, ``as_json``)."""
    events = ",".join(page.events).encode()
    cursor = orjson.dumps(cursors.dump(ws, page.last))
    return _Body(b"".join((b'{"changes":[', events, b'],"next":', cursor, b"}")), len(page.events), page.last)


def _read_rendered(db: Database, cursors: changes.Cursors, ws: uuid.UUID, position: int | None, limit: int) -> _Body:
    """:func:`changes.read`'s page as its response."""
    return _render(cursors, ws, changes.read(db, ws, position, limit, True))


class _Ahead:
    """The page after each full page this process served, read in the thread pool while its reader receives and
    parses the one it got: a client going through the feed asks for it next, and finds it ready.

    A full page's successor that is full too holds events that are numbered and never change (numbers only
    grow, without gaps), so it is served as read unless a prune has since passed its start (then it is read
    again, and answers 410). A short one is read again: more may have been committed since. Nothing is read
    ahead while fewer than two of the pool's threads are free: a guess never takes the last one. Only the event
    loop's thread touches it.

    With a core to spare, a reader going through the feed read 43% (SQLite) to 47% (PostgreSQL) more events a
    second; its own parse and HTTP alone take about 0.3 of the raw ``SELECT``'s time, so the server's work
    counts only where it overlaps them (bench/JOURNAL.md, "the change feed's HTTP path")."""

    def __init__(self) -> None:
        self.pages: dict[tuple[uuid.UUID, int, int], asyncio.Task[_Body]] = {}  # oldest first

    @staticmethod
    def of(request: Request) -> _Ahead:
        """The application's pages read ahead (made at first use)."""
        ahead: _Ahead | None = getattr(request.app.state, "changes_ahead", None)
        if ahead is None:
            ahead = request.app.state.changes_ahead = _Ahead()
        return ahead

    async def start(self, db: Database, cursors: changes.Cursors, ws: uuid.UUID, position: int, limit: int) -> None:
        """Read the page after ``position`` in the background, unless it is being read or no thread is spare."""
        key = (ws, position, limit)
        if key in self.pages or anyio.to_thread.current_default_thread_limiter().available_tokens < 2:
            return
        task = asyncio.get_running_loop().create_task(
            anyio.to_thread.run_sync(_read_rendered, db, cursors, ws, position, limit)
        )
        task.add_done_callback(_settled)
        self.pages[key] = task
        while len(self.pages) > AHEAD_KEPT:
            del self.pages[next(iter(self.pages))]
        asyncio.get_running_loop().call_later(AHEAD_KEPT_FOR, self._let_go, key, task)

    async def take(self, db: Database, ws: uuid.UUID, position: int | None, limit: int) -> _Body | None:
        """The page after ``position`` when it was read ahead, is full and its start is still kept; else None."""
        if position is None:
            return None
        task = self.pages.pop((ws, position, limit), None)
        if task is None:
            return None
        try:
            body = await asyncio.shield(task)  # a reader that goes away leaves the read to end in its thread
        except Exception:  # noqa: BLE001 - read again: the reader gets that read's answer (410, 404, 503...)
            return None
        if body.events < limit or position < await anyio.to_thread.run_sync(changes.pruned_through, db, ws):
            return None
        return body

    def _let_go(self, key: tuple[uuid.UUID, int, int], task: asyncio.Task[_Body]) -> None:
        if self.pages.get(key) is task:
            del self.pages[key]


def _settled(task: asyncio.Task[_Body]) -> None:
    """A read ahead that failed or was cancelled is read again when asked for: its error is not this task's."""
    if not task.cancelled():
        task.exception()


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
