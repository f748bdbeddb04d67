"""Every request's id and measurements: one pure ASGI middleware around the whole application.

A pure ASGI class rather than Starlette's ``BaseHTTPMiddleware``, which runs the application in a task of its
own and copies every response through a stream (a cost on each request). It wraps the application outside
Starlette's own error middleware (``install`` in this package), so a 500 rendered there carries the same
``X-Request-ID`` as its body, and is counted with its status.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from payroster.observability import metrics

HEADER = b"x-request-id"
# What an id from the client may be: short and printable, so it can go into a header, a log line and a body
# as it came (an id from a proxy or a client's own trace); anything else is replaced by a fresh one.
VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_current: ContextVar[str | None] = ContextVar("payroster_request_id", default=None)


def current() -> str | None:
    """The id of the request being handled (None outside a request: the CLI, start-up)."""
    return _current.get()


def fresh() -> str:
    """A new request id."""
    return uuid.uuid4().hex


def chosen(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is valid, else a fresh id."""
    for name, value in headers:
        if name == HEADER:
            text = value.decode("latin-1")
            return text if VALID.fullmatch(text) else fresh()
    return fresh()


class Observed:
    """Gives each HTTP request an id (header, logs, error bodies) and counts it by door, route and status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = chosen(scope["headers"])
        # Each request runs in a task of its own, with its own copy of the context: the id is not reset after
        # the request, so the server's own line about an exception that escaped still names it.
        _current.set(request_id)
        id_header = (HEADER, request_id.encode())
        status = 500  # when the application fails before it answers
        started = time.perf_counter()

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.observe_request(scope, status, time.perf_counter() - started)
