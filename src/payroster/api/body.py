"""Reading request bodies the way integrations send them (contract §3, Bodies)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from payroster.domain.errors import BadRequest, TooLarge, UnsupportedMediaType

# WebClient.UploadString sends no Content-Type, and .NET Framework encodes such bodies as Windows-1252.
LENIENT_TYPES = ("", "text/plain")


async def read_bytes(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"request body larger than {limit} bytes")
    return bytes(body)


def decode_json(raw: bytes, content_type: str | None) -> Any:
    """Parse a JSON body; numbers with a fraction become exact Decimals."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if media not in LENIENT_TYPES and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"unsupported Content-Type '{media}': send application/json")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    text = _decode(raw, charset, lenient=media in LENIENT_TYPES)
    if not text.strip():
        raise BadRequest("the request body is empty: send a JSON document")
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None


def _decode(raw: bytes, charset: str, lenient: bool) -> str:
    if charset and charset not in ("utf-8", "utf8"):
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            raise BadRequest(f"the body is not valid {charset}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if lenient:
            return raw.decode("cp1252", errors="replace")
        raise BadRequest("the body is not valid UTF-8") from None


async def json_body(request: Request) -> Any:
    """Dependency: the JSON body of an ordinary request (1 MiB by default)."""
    limit = request.app.state.settings.max_body_bytes
    return decode_json(await read_bytes(request, limit), request.headers.get("content-type"))


async def bulk_body(request: Request) -> Any:
    """Dependency: the JSON body of ``users:bulk`` (32 MiB by default)."""
    limit = request.app.state.settings.max_bulk_bytes
    return decode_json(await read_bytes(request, limit), request.headers.get("content-type"))
