"""Credentials on the API, OData and SCIM doors: ``X-ApiKey``, Bearer, or Basic with the key as password."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import threading
import time
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from payroster import clock
from payroster.auth.ratelimit import RateLimiter
from payroster.db.engine import Database
from payroster.domain.errors import Unauthorized, Unavailable
from payroster.services import apikeys, timelines
from payroster.services.apikeys import Principal

TOUCH_WAIT = 0.05  # seconds a request waits to record its key's use (a single write's turn takes about a millisecond)
# How long a verified key is believed without asking the database again: the bound within which a revoked key,
# a deactivated or demoted owner is refused by every server process (tests/http/test_auth_cache.py).
KEY_TTL = 1.0
KEY_CACHE_SIZE = 4096  # verified keys kept per process; past it the cache starts over


class KeyCache:
    """Keys verified in the last ``ttl`` seconds, in this process.

    The key check was one database round trip per request, half of ``GET /api/v1/me``'s cost (bench/JOURNAL.md).
    Only successes are kept, under a SHA-256 of the whole presented key (never the key itself), with what the
    check read; a failure always asks the database, so revocation, demotion and a wrong secret are never
    answered from memory for longer than ``ttl``."""

    def __init__(self, ttl: float = KEY_TTL, size: int = KEY_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._found: dict[tuple[bytes, str, tuple[str, ...]], tuple[float, dt.date, Principal]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(presented: str | None, kind: str, roles: tuple[str, ...]) -> tuple[bytes, str, tuple[str, ...]]:
        return hashlib.sha256((presented or "").encode()).digest(), kind, roles

    def get(self, presented: str | None, kind: str, roles: tuple[str, ...]) -> Principal | None:
        """The principal of a key verified less than ``ttl`` seconds ago, on the same day, else None (a new day
        may make the workspace's timelines stale: the check that reads the database refreshes them)."""
        found = self._found.get(self._key(presented, kind, roles))
        if found is None or time.monotonic() >= found[0] or clock.today() != found[1]:
            return None
        return found[2]

    def put(self, presented: str | None, kind: str, roles: tuple[str, ...], principal: Principal) -> None:
        """Remember a successful check for ``ttl`` seconds."""
        with self._lock:
            if len(self._found) >= self.size:
                self._found.clear()
            self._found[self._key(presented, kind, roles)] = (time.monotonic() + self.ttl, clock.today(), principal)

    def clear(self) -> None:
        """Forget every key (this process only)."""
        with self._lock:
            self._found.clear()


def forget_verified_keys(app: Any) -> None:
    """After a revocation, this process believes no key from memory: the revoked one is refused by the server
    process that revoked it at once (the others refuse it within ``KEY_TTL``)."""
    cache: KeyCache | None = getattr(app.state, "key_cache", None)
    if cache is not None:
        cache.clear()


def presented_key(request: Request) -> str | None:
    """The key a request carries, whichever of the three forms it uses."""
    if key := request.headers.get("x-apikey"):
        return key.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2].strip()
    return None


def authenticate(
    db: Database, request: Request, kind: str, challenge: str, roles: tuple[str, ...] = ("FullAdmin",)
) -> Principal:
    """Verify the request's key (401/403 as domain errors) and record its use at most once a minute.

    A 401 carries ``challenge``, the door's ``WWW-Authenticate``: the schemes that door takes. A key verified in
    this process less than ``KEY_TTL`` seconds ago is believed without the database (``KeyCache``)."""
    presented = presented_key(request)
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    principal = cache.get(presented, kind, roles) if cache is not None else None
    if principal is None:
        principal, settled = _verify(db, presented, kind, roles, challenge)
        if cache is not None and settled:
            cache.put(presented, kind, roles, principal)
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        limiter.hit(kind, str(principal.workspace_id), principal.key_id)
    return principal


async def authenticate_async(
    db: Database, request: Request, kind: str, challenge: str, roles: tuple[str, ...] = ("FullAdmin",)
) -> Principal:
    """``authenticate`` for an ``async`` dependency: a cached key is answered on the event loop, anything else
    (a check in the database, a limiter in Redis) in the thread pool. The hop to a thread and back was a fifth
    of ``GET /api/v1/me``'s time once the key came from the cache (bench/JOURNAL.md)."""
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if cache is not None and (limiter is None or not limiter.shared):
        principal = cache.get(presented_key(request), kind, roles)
        if principal is not None:
            if limiter is not None:
                limiter.hit(kind, str(principal.workspace_id), principal.key_id)
            return principal
    return await run_in_threadpool(authenticate, db, request, kind, challenge, roles)


def _verify(
    db: Database, presented: str | None, kind: str, roles: tuple[str, ...], challenge: str
) -> tuple[Principal, bool]:
    """The key checked against the database; the day's timelines refreshed and the key's use recorded when due.
    Also whether nothing is left for the next check to do (else its principal is not cached: a use that could
    not be recorded is recorded by the next request that reads the database)."""
    try:
        with db.reader.connect() as conn:  # one statement: a plain connection, no ORM session around it
            principal, due = apikeys.verify(conn, presented, kind, roles)
    except Unauthorized as exc:
        exc.challenge = challenge
        raise
    if principal.timeline_stale:
        # The first request on a day a recorded change takes effect makes it current (docs/architecture.md).
        with db.write(principal.workspace_id) as session:
            timelines.refresh(session, principal.workspace_id)
        principal = replace(principal, timeline_stale=False)  # current for today (cached until the day ends)
    if due:
        # Recording the key's use is worth no wait: while SQLite's write turn is taken for long (an import in this
        # process or another), the request goes on, and a later one records it (tests/http/test_errors.py). A
        # cached key is not recorded again: the next check that reads the database sees this one's time.
        try:
            with db.write(wait=TOUCH_WAIT) as session:
                apikeys.touch(session, principal.key_id)
        except Unavailable:
            return principal, False
    return principal, True
