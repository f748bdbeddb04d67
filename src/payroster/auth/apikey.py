"""Credentials on the API, OData and SCIM doors: ``X-ApiKey``, Bearer, or Basic with the key as password."""

from __future__ import annotations

import base64
import binascii
import contextlib

from starlette.requests import Request

from payroster.auth.ratelimit import RateLimiter
from payroster.db.engine import Database
from payroster.domain.errors import Unauthorized, Unavailable
from payroster.services import apikeys, timelines
from payroster.services.apikeys import Principal

TOUCH_WAIT = 0.05  # seconds a request waits to record its key's use (a single write's turn takes about a millisecond)


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

    A 401 carries ``challenge``, the door's ``WWW-Authenticate``: the schemes that door takes."""
    try:
        with db.reader.connect() as conn:  # one statement: a plain connection, no ORM session around it
            principal, due = apikeys.verify(conn, presented_key(request), kind, roles)
    except Unauthorized as exc:
        exc.challenge = challenge
        raise
    if principal.timeline_stale:
        # The first request on a day a recorded change takes effect makes it current (docs/architecture.md).
        with db.write(principal.workspace_id) as session:
            timelines.refresh(session, principal.workspace_id)
    if due:
        # Recording the key's use is worth no wait: while SQLite's write turn is taken for long (an import in this
        # process or another), the request goes on, and a later one records it (tests/http/test_errors.py).
        with contextlib.suppress(Unavailable), db.write(wait=TOUCH_WAIT) as session:
            apikeys.touch(session, principal.key_id)
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        limiter.hit(kind, str(principal.workspace_id), principal.key_id)
    return principal
