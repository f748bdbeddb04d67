"""The smallest HTTP application: every request answered ``{}`` from memory, no routing, no key, no database.

Served by the same uvicorn as PayRoster (``uvicorn bench.ceiling_app:app --lifespan off``), it is the load
generator's ceiling on this machine: the requests/s wrk gets when the server does nearly nothing. Every other
figure of the run sits below it; were one close to it, the generator would be what is measured.
"""

from __future__ import annotations

from typing import Any

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
_BODY = {"type": "http.response.body", "body": b"{}"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with 200 ``{}``."""
    if scope["type"] == "http":
        await send(_START)
        await send(_BODY)
