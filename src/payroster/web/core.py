"""What every page shares: the signed session cookie, CSRF tokens, flash messages, role guards, rendering.

Sessions live in the database (``services.accounts``); the cookie carries the session token signed with
``PAYROSTER_SECRET_KEY`` (itsdangerous), so a forged cookie is refused before any lookup. CSRF tokens are an
HMAC of a per-session secret (or, before log-in, of a random per-browser cookie): a page can only post a
form it was given. This is a dozen lines on the standard library; a middleware package would add a
second cookie scheme beside ours for nothing.

Every change answers with a redirect (post/redirect/get): what the next page shows of it (a notice, an error,
the refused form's values and messages beside its fields, a new secret shown once) travels in the one-shot
flash cookie, encrypted (Fernet) so that a secret in it is unreadable outside the server, and dropped by the
page that shows it, so a reload shows it no more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from payroster.db.engine import Database
from payroster.domain import wire
from payroster.domain.errors import DomainError, Forbidden, Unauthorized
from payroster.http.body import capped, refuse_declared
from payroster.http.body import query_text as query_text
from payroster.observability.requests import current as current_request_id
from payroster.services import accounts, sealing, timelines
from payroster.services.accounts import SessionUser
from payroster.urls import public_base

SESSION_COOKIE = "payroster_session"
BROWSER_COOKIE = "payroster_browser"
FLASH_COOKIE = "payroster_flash"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
PAGE_SIZE = 50


class LoginRequired(Unauthorized):
    """No signed-in user: pages answer with a redirect to the log-in page."""


def _secret(request: Request) -> str:
    return str(request.app.state.secret_key)


def _cookie_signer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(_secret(request), salt="payroster.session")


FLASH_SECONDS = 120
FLASH_MAX_BYTES = 3600  # under the 4 KiB browsers keep per cookie


def _flash_box(request: Request) -> Fernet:
    """Seals the one-shot flash with a key of its own derived from PAYROSTER_SECRET_KEY."""
    return sealing.box(_secret(request), b"payroster.flash")


def database(request: Request) -> Database:
    """The application's database."""
    db: Database = request.app.state.db
    return db


def session_token(request: Request) -> str | None:
    """The verified session token of the request's cookie, if any."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        token = _cookie_signer(request).loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def current(request: Request) -> SessionUser | None:
    """The signed-in user (checked against the database once per request)."""
    if "who" in request.state._state:
        who: SessionUser | None = request.state.who
        return who
    who, due = None, False
    token = session_token(request)
    db = database(request)
    if token:
        with db.read() as s:
            who, due = accounts.load(s, token)
    if who is not None and due:
        with db.write() as s:
            accounts.touch(s, who.digest, request.app.state.settings.session_lifetime)
    if who is not None and who.timeline_stale:
        with db.write(who.workspace_id) as s:  # as the key check does (docs/architecture.md, "Timelines")
            timelines.refresh(s, who.workspace_id)
    request.state.who = who
    return who


def need_user(request: Request) -> SessionUser:
    """The signed-in user, or a redirect to the log-in page."""
    who = current(request)
    if who is None:
        raise LoginRequired("log in to continue")
    return who


def need_admin(request: Request) -> SessionUser:
    """A FullAdmin or LimitedAdmin (they read everything)."""
    who = need_user(request)
    if not who.is_admin:
        raise Forbidden("this page is for workspace administrators")
    return who


def need_full_admin(request: Request) -> SessionUser:
    """A FullAdmin (the only role that changes anything)."""
    who = need_user(request)
    if not who.is_full_admin:
        raise Forbidden("only a full administrator can make this change")
    return who


def _browser_id(request: Request) -> str:
    existing = request.cookies.get(BROWSER_COOKIE)
    if existing and len(existing) == 43:
        return existing
    if "new_browser_id" not in request.state._state:
        request.state.new_browser_id = secrets.token_urlsafe(32)
    value: str = request.state.new_browser_id
    return value


def csrf_token(request: Request) -> str:
    """The token every form of this page carries."""
    who = current(request)
    basis = f"session:{who.csrf_secret}" if who else f"browser:{_browser_id(request)}"
    return hmac.new(_secret(request).encode(), basis.encode(), hashlib.sha256).hexdigest()


async def form(request: Request, max_bytes: int | None = None, max_field: int | None = None) -> FormData:
    """The posted form, once its CSRF token is checked (403 without a valid one): at most ``max_bytes`` in all
    (a file part is spooled to disk by Starlette), each field that is not a file at most ``max_field``."""
    limit = max_bytes or request.app.state.settings.max_body_bytes
    if max_field is None:
        refuse_declared(request, limit, "the form is")
        data = await request.form(max_files=2, max_fields=20_000, max_part_size=limit)
    else:
        data = await capped(request, limit).form(max_files=2, max_fields=20_000, max_part_size=max_field)
    sent = data.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden("the form's security token is missing or out of date: reload the page and try again")
    return data


def field(data: FormData, name: str) -> str:
    """A text field of the form ('' when absent)."""
    value = data.get(name)
    return value if isinstance(value, str) else ""


def secure_cookies(request: Request) -> bool:
    """Cookies are ``Secure`` when the public address is HTTPS."""
    return public_base(request).startswith("https://")


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Give the browser its (new) session."""
    response.set_cookie(
        SESSION_COOKIE,
        _cookie_signer(request).dumps(token),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def redirect(
    request: Request,
    url: str,
    notice: str | None = None,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    reveal: dict[str, str] | None = None,
) -> RedirectResponse:
    """303 to ``url``, carrying a one-shot message for the next page; ``form`` is a refused form's state
    (``forms.FormState``), ``reveal`` a secret the next page shows once."""
    response = RedirectResponse(url, status_code=303)
    flash: dict[str, Any] = {k: v for k, v in (("notice", notice), ("error", error), ("reveal", reveal)) if v}
    if form:
        flash["form"] = form
    if flash:
        value = _flash_box(request).encrypt(json.dumps(flash).encode()).decode()
        if len(value) > FLASH_MAX_BYTES and form:  # a huge refused form: its message stays, its values go
            flash["form"] = {**form, "values": {}}
            value = _flash_box(request).encrypt(json.dumps(flash).encode()).decode()
        response.set_cookie(FLASH_COOKIE, value, httponly=True, samesite="lax", secure=secure_cookies(request))
    return response


def _flash(request: Request) -> dict[str, Any]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    try:
        value = json.loads(_flash_box(request).decrypt(raw.encode(), ttl=FLASH_SECONDS))
    except (InvalidToken, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the signed-in user, its CSRF token and any flash message."""
    who = current(request)
    flash = _flash(request)
    context.setdefault("error", flash.get("error"))
    context.setdefault("notice", flash.get("notice"))
    context.setdefault("formstate", flash.get("form"))
    context.setdefault("reveal", flash.get("reveal") or {})
    response = templates.TemplateResponse(
        request,
        template,
        {"who": who, "csrf": csrf_token(request), "path": request.url.path, **context},
        status_code=status,
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE)
    if flash.get("reveal"):  # a secret shown once: never kept in a cache
        response.headers["Cache-Control"] = "no-store"
    if "new_browser_id" in request.state._state:
        response.set_cookie(
            BROWSER_COOKIE, request.state.new_browser_id, httponly=True, samesite="lax", secure=secure_cookies(request)
        )
    return response


def error_page(request: Request, exc: DomainError, headers: dict[str, str] | None = None) -> Response:
    """How a page answers a domain error, the pages' one rendering of every error: log-in redirect for 401,
    otherwise an error page with the headers the error carries (``http.errors.headers``)."""
    if isinstance(exc, Unauthorized):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    titles = {403: "Not allowed", 404: "Not found", 413: "Too large", 429: "Too many attempts", 503: "Unavailable"}
    title = titles.get(exc.status, "Something went wrong")
    response = render(request, "error.html", exc.status, title=title, exc=exc, request_id=current_request_id())
    response.headers.update(headers or {})
    return response


def describe(exc: DomainError) -> str:
    """A domain error as one sentence for a page: its message and its first details."""
    details = [d.message for d in exc.details[:3] if d.message not in exc.message]
    return exc.message + (f" ({'; '.join(details)})" if details else "")


def is_page(path: str) -> bool:
    """Whether a path belongs to the web pages (not to the API, OData or SCIM doors)."""
    return not path.startswith(("/api/", "/app/Api/", "/odata/", "/scim/", "/healthz"))


def fmt_time(value: dt.datetime | None) -> str:
    """A stored UTC datetime as pages show it."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


templates.env.filters["when"] = fmt_time
templates.env.globals["shown_role"] = wire.shown_role  # the one role a user shows (an inactive one: Deactivated)
