"""Reading a request body, the same way in every door: its size within the door's limit (413, refused from the
declared length before reading, and cut off while reading), its ``Content-Type`` among those the door reads
(415) and its text in the declared charset (400). Each refusal is a domain error its door renders in its own
format. What a door then makes of the JSON (the JSON API's exact numbers and duplicate keys, SCIM's bounds on
integers and filters) is the door's own.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Message

from payroster.domain.errors import BadRequest, TooLarge, UnsupportedMediaType
from payroster.domain.text import refuse_unusable

# WebClient.UploadString sends no Content-Type, and .NET Framework encodes such bodies as Windows-1252.
LENIENT_TYPES = ("", "text/plain")


@dataclass(frozen=True)
class Accepts:
    """The media types a door reads a JSON body from, besides :data:`LENIENT_TYPES`."""

    types: tuple[str, ...]
    suffix: bool  # every ``application/...+json`` as well
    send: str  # the type a 415 asks for


def refuse_declared(request: Request, limit: int, what: str = "request body") -> None:
    """A 413 when the declared ``Content-Length`` is over ``limit`` bytes, before anything is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{what} larger than {limit} bytes")


async def read_bytes(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes before reading it all."""
    refuse_declared(request, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body larger than {limit} bytes")
    return bytes(body)


SPOOL_CHUNK = 1 << 20  # bytes gathered before each write to disk: one thread hop per MiB, not per network read


async def spool(request: Request, limit: int, path: Path) -> int:
    """Write the raw body to ``path`` a chunk at a time (never held whole), refusing (413) anything over ``limit``
    bytes, by its declared length before reading, else once that many have arrived; the bytes written."""
    refuse_declared(request, limit)
    size = 0
    pending = bytearray()
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body larger than {limit} bytes")
            pending += chunk
            if len(pending) >= SPOOL_CHUNK:
                await run_in_threadpool(out.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(out.write, bytes(pending))
    return size


@asynccontextmanager
async def scratch() -> AsyncIterator[Path]:
    """A temporary directory for an uploaded file, made and removed (a file of a GiB, maybe) in the thread pool."""
    path = Path(await run_in_threadpool(tempfile.mkdtemp, prefix="payroster-import-"))
    try:
        yield path
    finally:
        await run_in_threadpool(shutil.rmtree, path, True)


def capped(request: Request, limit: int) -> Request:
    """The same request, whose body stops being read (413) once more than ``limit`` bytes have arrived: a form
    whose files Starlette spools to disk would otherwise take a chunked body of any size."""
    refuse_declared(request, limit, "the form is")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message: Any = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise TooLarge(f"the form is larger than {limit} bytes")
        return dict(message)

    return Request(request.scope, receive)


def content_type(header: str | None) -> tuple[str, str]:
    """``(media type, charset)`` of a ``Content-Type`` value, both lower case ('' when absent)."""
    media, _, params = (header or "").partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def check_media(media: str, accepts: Accepts) -> None:
    """A 415 unless the door reads JSON from ``media``."""
    if media in LENIENT_TYPES or media in accepts.types or (accepts.suffix and media.endswith("+json")):
        return
    raise UnsupportedMediaType(f"unsupported Content-Type '{media}': send {accepts.send}")


def text(raw: bytes, charset: str, lenient: bool) -> str:
    """The body's text in its declared charset, else UTF-8 (a BOM allowed); a ``lenient`` body that is not UTF-8
    is read as Windows-1252. A 400 when the bytes are not what the charset says."""
    if charset and charset not in ("utf-8", "utf8"):
        try:
            decoded = raw.decode(charset)
            decoded.encode("utf-8")  # a codec that yields an unpaired surrogate: no escape, so no walk, would find it
        except (LookupError, UnicodeError):
            raise BadRequest(f"the body is not valid {charset}") from None
        return decoded
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if lenient:
            return raw.decode("cp1252", errors="replace")
        raise BadRequest("the body is not valid UTF-8") from None


async def query_text(request: Request) -> None:
    """Dependency of every JSON API route and page: a NUL or an unpaired surrogate in a query parameter is a 400
    (in the door's format) before the handler runs: PostgreSQL cannot compare text holding NUL, and the error
    could not be written out."""
    refuse_unusable(request.query_params.multi_items())
