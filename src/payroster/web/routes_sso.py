"""Sign-in through a workspace's identity provider (``/sso/``) and its settings page (``/settings/sso``).

The rules are ``services.sso``'s; the provider conversation is ``auth.oidc``'s. The browser that starts a
sign-in gets a random secret in a cookie of its own; the attempt row keeps its digest, so a callback from
another browser is refused (README.md, "Sign-in with an identity provider").
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from payroster.auth.oidc import Clients, OidcRefusal
from payroster.domain.errors import DomainError, Invalid
from payroster.services import sso
from payroster.urls import public_base
from payroster.web.core import (
    database,
    describe,
    field,
    form,
    need_admin,
    need_full_admin,
    query_text,
    redirect,
    render,
    secure_cookies,
)
from payroster.web.routes_auth import _begin, _safe_next

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
log = logging.getLogger("payroster.sso")
BROWSER_COOKIE = "payroster_sso"
CALLBACK = "/sso/callback"


def _clients(request: Request) -> Clients:
    """The application's provider clients (discovery documents and keys kept between sign-ins)."""
    state = request.app.state
    if not hasattr(state, "oidc"):
        state.oidc = Clients()
    clients: Clients = state.oidc
    return clients


def _secret_key(request: Request) -> str:
    return str(request.app.state.secret_key)


def redirect_uri(request: Request) -> str:
    """The one redirect URI of this server, pasted into every provider's application."""
    return public_base(request) + CALLBACK


def _refused(
    request: Request, exc: sso.Refused, ws: uuid.UUID | None, provider: uuid.UUID | None, detail: str = ""
) -> Response:
    """Tell the person why, and the workspace's admins (an audit event) and the operator (a log line)."""
    log.warning("sso sign-in refused: reason=%s workspace=%s provider=%s %s", exc.code, ws, provider, detail)
    if ws is not None and provider is not None:
        with database(request).write(ws) as s:
            sso.record_refusal(s, ws, provider, exc.code, exc.target)
    return render(request, "sso_refused.html", exc.status, reason=exc.code, message=exc.message)


@router.get("/sso/start")
def start(request: Request, workspace: str = "", provider: str = "", next: str = "") -> Response:  # noqa: A002
    """Send the browser to the chosen provider of the workspace, with fresh state, nonce and PKCE challenge.

    A link, not a form: the pages' policy lets forms post only to this site, and a browser follows a form's
    redirect to the provider under that policy. Starting is harmless: finishing needs this browser's cookie."""
    slug, provider_id, back = workspace[:63], provider[:64], _safe_next(next[:2048])
    with database(request).read() as s:
        ws, pid = sso.find_provider(s, slug, provider_id)
    try:
        with database(request).read() as s:
            cfg = sso.provider_config(s, ws, pid, _secret_key(request))
    except sso.Refused as exc:
        return _refused(request, exc, ws, pid)
    try:
        auth = _clients(request).authorization(cfg, redirect_uri(request))
    except OidcRefusal as exc:
        return _refused(request, sso.Refused.because(exc.reason), ws, pid, exc.detail)
    browser = request.cookies.get(BROWSER_COOKIE) or ""
    if len(browser) != 43:
        browser = secrets.token_urlsafe(32)
    with database(request).write(ws) as s:
        sso.begin(s, ws, pid, browser, auth.state, auth.nonce, auth.code_verifier, back)
    response = redirect(request, auth.url)
    response.set_cookie(
        BROWSER_COOKIE, browser, httponly=True, samesite="lax", secure=secure_cookies(request), path="/sso/"
    )
    return response


@router.get(CALLBACK)
def callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    """Finish a sign-in: the attempt is used once, the provider's ID token validated, the user matched."""
    try:
        with database(request).write() as s:
            attempt = sso.claim(s, state[:512], request.cookies.get(BROWSER_COOKIE))
            ws, pid, back = attempt.workspace_id, attempt.provider_id, attempt.return_to
            verifier, nonce = attempt.code_verifier, attempt.nonce
    except sso.Refused as exc:
        return _refused(request, exc, exc.workspace_id, exc.provider_id)
    if error or not code:
        return _refused(request, sso.Refused.because("providerError"), ws, pid, f"error={error[:64]!r}")
    try:
        with database(request).read() as s:
            cfg = sso.provider_config(s, ws, pid, _secret_key(request))
        claims = _clients(request).identify(cfg, redirect_uri(request), code, verifier, nonce)
    except sso.Refused as exc:
        return _refused(request, exc, ws, pid)
    except OidcRefusal as exc:
        return _refused(request, sso.Refused.because(exc.reason), ws, pid, exc.detail)
    try:
        with database(request).write(ws) as s:
            user = sso.sign_in(s, ws, pid, claims)
    except sso.Refused as exc:
        return _refused(request, exc, ws, pid)
    return _begin(request, user, _safe_next(back or ""))


@router.post("/sso/find")
async def find(request: Request) -> Response:
    """The log-in page of the workspace whose provider accepts the e-mail's domain."""
    data = await form(request)
    email = field(data, "email").strip()[:320]
    with database(request).read() as s:
        slugs = sso.workspaces_for_email(s, email)
    if len(slugs) == 1:
        return redirect(request, f"/login?workspace={slugs[0]}")
    return redirect(request, "/login", error="No identity provider is set up for that e-mail's domain.")


# -- settings ---------------------------------------------------------------------------------------------------


def _page(request: Request, status: int = 200, **extra: Any) -> Response:
    who = need_admin(request)
    with database(request).read() as s:
        providers = sso.list_providers(s, who.workspace_id)
        rules = sso.rules(s, who.workspace_id)
        admins = sso.full_admins(s, who.workspace_id)
    return render(
        request, "sso.html", status, providers=providers, rules=rules, admins=admins,
        redirect_uri=redirect_uri(request), default_scopes=sso.DEFAULT_SCOPES, **extra,
    )  # fmt: skip


@router.get("/settings/sso")
def settings_page(request: Request) -> Response:
    """Settings > SSO: providers, the redirect URI and setup steps, the workspace's sign-in rules."""
    return _page(request)


@router.post("/settings/sso/providers")
async def add_provider(request: Request) -> Response:
    """Add a provider; its client secret is never shown again."""
    who = need_full_admin(request)
    data = await form(request)
    inp = sso.ProviderInput(
        name=field(data, "name"), issuer=field(data, "issuer"), client_id=field(data, "clientId"),
        client_secret=field(data, "clientSecret"), scopes=field(data, "scopes") or sso.DEFAULT_SCOPES,
        domains=tuple(field(data, "domains").replace(",", " ").split()),
        trust_unverified_email=field(data, "trustUnverifiedEmail") == "on",
    )  # fmt: skip
    try:
        with database(request).write(who.workspace_id) as s:
            view = sso.add_provider(s, who.actor(), _secret_key(request), inp)
    except Invalid as exc:
        values = {k: field(data, k) for k in ("name", "issuer", "clientId", "scopes", "domains")}
        return _page(request, 422, values=values, problems=exc.details, error=exc.message)
    return redirect(request, "/settings/sso", notice=f"{view.name} was added.")


@router.post("/settings/sso/providers/{provider_id}/remove")
async def remove_provider(request: Request, provider_id: str) -> Response:
    """Remove a provider: its buttons disappear and its remembered identities are forgotten."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        sso.remove_provider(s, who.actor(), provider_id)
    _clients(request).forget(provider_id)
    return redirect(request, "/settings/sso", notice="The identity provider was removed.")


@router.post("/settings/sso/rules")
async def save_rules(request: Request) -> Response:
    """Require SSO, create users on first sign-in, and the break-glass administrators."""
    who = need_full_admin(request)
    data = await form(request)
    glass = [v for v in data.getlist("breakGlass") if isinstance(v, str)]
    try:
        with database(request).write(who.workspace_id) as s:
            sso.set_rules(s, who.actor(), field(data, "requireSso") == "on", field(data, "createUsers") == "on", glass)
    except DomainError as exc:
        return redirect(request, "/settings/sso", error=describe(exc))
    return redirect(request, "/settings/sso", notice="Sign-in rules saved.")
