"""Errors as the JSON API renders them, and the handlers that never let a traceback out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import simplejson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from payroster.api.schemas import ErrorBody
from payroster.domain.errors import Detail, DomainError, Invalid
from payroster.http.errors import as_domain_error
from payroster.http.errors import headers as transported
from payroster.observability.requests import current as current_request_id

log = logging.getLogger("payroster.api")
T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "malformed JSON"),
        (401, "missing, unknown or revoked key"),
        (403, "the key's owner is not an active FullAdmin"),
        (404, "unknown id, or an id of another workspace"),
        (409, "taken name, e-mail or alias; cycle; last FullAdmin"),
        (413, "body too large"),
        (415, "not JSON"),
        (422, "validation failed"),
        (429, "rate limited"),
        (503, "database unavailable"),
    )
}


def check(parsed: tuple[T, list[Detail]], message: str) -> T:
    """The parsed input, or a 422 listing every problem."""
    value, problems = parsed
    if problems:
        raise Invalid(f"{message}: " + "; ".join(p.message for p in problems[:5]), details=problems)
    return value


def exact_json(content: Any, status_code: int = 200) -> Response:
    """A JSON answer whose Decimals go out as numbers with their exact digits."""
    return Response(
        simplejson.dumps(content, use_decimal=True, ensure_ascii=False),
        status_code=status_code,
        media_type="application/json",
    )


def json_error(exc: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON API's error body for a domain error (README.md, "JSON API"), with its headers."""
    body = {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "target": exc.target,
            "details": [{"code": d.code, "message": d.message, "target": d.target} for d in exc.details],
            "requestId": current_request_id(),
        }
    }
    return JSONResponse(body, status_code=exc.status, headers=headers)


PageRenderer = Callable[[Request, DomainError, "dict[str, str] | None"], Response]


def method_table(routers: list[APIRouter]) -> Callable[[str], list[str]]:
    """The methods every route matching a path accepts: a 405 lists them all in ``Allow`` (the framework
    names only the first matching route's)."""
    table = [(r.path_regex, r.methods) for router in routers for r in router.routes if isinstance(r, APIRoute)]

    def allowed(path: str) -> list[str]:
        methods = {m for regex, ms in table if regex.match(path) for m in ms or ()}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    return allowed


def install(
    app: FastAPI,
    page: PageRenderer | None = None,
    is_page: Callable[[str], bool] | None = None,
    allowed: Callable[[str], list[str]] | None = None,
) -> None:
    """Register the handlers: every exception becomes a domain error (``http.errors.as_domain_error``: a unique
    index race a 409, an outage a 503, anything unexpected a 500 without details), framework errors the same.
    Requests for web pages (``is_page``) get ``page``'s HTML answer instead of a JSON body."""

    def error_response(
        exc: DomainError, headers: dict[str, str] | None = None, request: Request | None = None
    ) -> Response:
        headers = {**(headers or {}), **transported(exc)}
        if page is not None and is_page is not None and request is not None and is_page(request.url.path):
            return page(request, exc, headers)
        return json_error(exc, headers)

    @app.exception_handler(DomainError)
    async def domain(request: Request, exc: DomainError) -> Response:
        return error_response(exc, request=request)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        details = [
            Detail("invalidValue", str(e.get("msg")), "/".join(str(p) for p in e.get("loc", ())[1:]) or None)
            for e in exc.errors()
        ]
        return error_response(Invalid("invalid request parameters", details=details), request=request)

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "notFound", 405: "methodNotAllowed"}
        err = DomainError(str(exc.detail), code=codes.get(exc.status_code, "error"), status=exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and allowed is not None:
            headers["Allow"] = ", ".join(allowed(request.url.path)) or headers.get("Allow", "")
        return error_response(err, headers, request)

    @app.exception_handler(IntegrityError)
    @app.exception_handler(OperationalError)
    async def database(request: Request, exc: DBAPIError) -> Response:
        return error_response(as_domain_error(exc, log), request=request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The framework raises the exception again once this answer is sent (for the server to log), and the
        # server then closes the connection: the answer says so, or a client reusing the connection would
        # find it gone.
        return error_response(as_domain_error(exc, log), {"Connection": "close"}, request)
