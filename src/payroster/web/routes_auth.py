"""Log in, sign up, log out, invitation and password-reset links."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.responses import Response

from payroster.db.models import User
from payroster.domain import normalize
from payroster.domain.errors import Detail, DomainError, Forbidden, Invalid, NotFound, RateLimited
from payroster.domain.text import MESSAGE, shown, unusable
from payroster.services import accounts, reads, sso, workspaces
from payroster.urls import client_address
from payroster.web import forms
from payroster.web.core import (
    SESSION_COOKIE,
    current,
    database,
    field,
    form,
    query_text,
    redirect,
    render,
    session_token,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])


def _home(who: accounts.SessionUser) -> str:
    return "/users" if who.is_admin else f"/users/{who.user_id}"


def _safe_next(value: str) -> str | None:
    """Only local paths are followed after log-in (never another site)."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else None


@router.get("/")
def home(request: Request) -> Response:
    """Signed in: the user's home page; otherwise the log-in page."""
    who = current(request)
    return redirect(request, _home(who) if who else "/login")


@router.get("/login")
def login_page(request: Request, next: str = "", workspace: str = "") -> Response:  # noqa: A002
    """The log-in form (a signed-in visit goes home); with ``workspace``, its identity providers' buttons."""
    who = current(request)
    if who is not None:
        return redirect(request, _home(who))
    choices = None
    if workspace:
        with database(request).read() as s:
            choices = sso.login_choices(s, workspace[:63])
    signup = request.app.state.settings.signup == "open"
    return render(request, "login.html", next=_safe_next(next), signup=signup, sso=choices)


def _chooser(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(request.app.state.secret_key), salt="payroster.login-choice")


def _begin(request: Request, user: User, target: str | None) -> Response:
    """Start a fresh session (a new token at every log-in: no fixation) and drop the old one."""
    db = database(request)
    old = session_token(request)
    try:
        with db.write() as s:
            if old:
                accounts.end(s, old)
            accounts.sweep(s)
            token = accounts.start(s, user, request.app.state.settings.session_lifetime)
    except NotFound:  # deactivated meanwhile
        return redirect(request, "/login", error="That account can no longer log in.")
    response = redirect(request, target or ("/users" if user.role != "Participant" else f"/users/{user.id}"))
    set_session_cookie(request, response, token)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the e-mail and password; failed attempts are throttled per account and per address."""
    data = await form(request)
    email, password = field(data, "email").strip(), field(data, "password")
    target = _safe_next(field(data, "next"))
    limiter = request.app.state.limiter
    signup = request.app.state.settings.signup == "open"
    if unusable(email) or unusable(password):
        # Refused before the database sees it: PostgreSQL cannot compare text holding NUL.
        error = f"The e-mail or password cannot be checked: {MESSAGE}."
        return render(request, "login.html", 422, email=shown(email), next=target, signup=signup, error=error)
    account, address = normalize.email_key(email)[:320], client_address(request)
    wait = limiter.login_wait(account, address)
    if wait:
        exc = RateLimited(f"too many failed log-ins: try again in {wait} seconds", retry_after=wait)
        response = render(request, "login.html", 429, email=email, next=target, signup=signup, error=exc.message)
        response.headers["Retry-After"] = str(wait)
        return response
    with database(request).read() as s:
        matches = accounts.check_login(s, email, password)
        allowed = sso.password_allowed(s, matches)
        buttons = sso.login_choices(s, _slug_of(s, matches[0])) if matches and not allowed else None
        names = reads.workspace_names(s, [u.workspace_id for u in matches])
    if not matches:
        limiter.login_failed(account, address)
        error = "That e-mail and password do not match an account that can log in."
        return render(request, "login.html", 401, email=email, next=target, signup=signup, error=error)
    if not allowed:  # the password is right, but the workspace signs in through its identity provider
        error = "Your workspace signs in through its identity provider: use its button."
        return render(request, "login.html", 403, next=target, signup=signup, error=error, sso=buttons)
    matches = allowed
    if len(matches) == 1:
        return _begin(request, matches[0], target)
    signer = _chooser(request)
    choices = [
        (names[u.workspace_id], signer.dumps({"w": str(u.workspace_id), "u": str(u.id)}))
        for u in sorted(matches, key=lambda u: names[u.workspace_id])
    ]
    return render(request, "choose.html", choices=choices, next=target)


def _slug_of(session: Session, user: User) -> str:
    return reads.workspace_slug(session, user.workspace_id)


@router.post("/login/choose")
async def login_choose(request: Request) -> Response:
    """Finish a log-in whose e-mail and password matched accounts in several workspaces."""
    data = await form(request)
    try:
        chosen = _chooser(request).loads(field(data, "choice"), max_age=300)
        ws_id, user_id = uuid.UUID(chosen["w"]), uuid.UUID(chosen["u"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return redirect(request, "/login", error="That choice has expired: log in again.")
    with database(request).read() as s:
        user = reads.user_or_none(s, ws_id, user_id)
    if user is None or not user.active:
        return redirect(request, "/login", error="That account can no longer log in.")
    return _begin(request, user, _safe_next(field(data, "next")))


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (its row is deleted) and forget the cookie."""
    await form(request)
    token = session_token(request)
    if token:
        with database(request).write() as s:
            accounts.end(s, token)
    response = redirect(request, "/login", notice="You are logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/signup")
def signup_page(request: Request) -> Response:
    """Create a workspace and become its first full administrator."""
    if request.app.state.settings.signup != "open":
        raise Forbidden("sign-up is closed on this server: ask its operator for a workspace")
    if current(request) is not None:
        return redirect(request, "/")
    return render(request, "signup.html")


@router.post("/signup")
async def signup(request: Request) -> Response:
    """A new workspace whose first user is a FullAdmin; never access to an existing workspace."""
    if request.app.state.settings.signup != "open":
        raise Forbidden("sign-up is closed on this server: ask its operator for a workspace")
    data = await form(request)
    values = {k: field(data, k) for k in ("workspace", "email", "firstName", "lastName")}
    password, confirm = field(data, "password"), field(data, "confirm")
    problems = accounts.password_problems(password, confirm)
    if not values["workspace"].strip():
        problems.insert(0, Detail("required", "name your workspace", "workspace"))
    rename = {"emailAddress": "email", "name": "workspace"}
    if problems:
        found = forms.state("signup", data, problems, rename=rename)
        return render(request, "signup.html", 422, formstate=found, error=forms.summary(found))
    try:
        with database(request).write() as s:
            names = (values["firstName"].strip(), values["lastName"].strip())
            made = workspaces.create(s, values["workspace"], values["email"], password, "ui", admin_names=names)
            user = reads.user_or_none(s, made.workspace.id, uuid.UUID(made.admin_user_id))
            assert user is not None
    except DomainError as exc:
        found = forms.state("signup", data, exc, rename=rename)
        return render(request, "signup.html", 422, formstate=found, error=forms.summary(found))
    return _begin(request, user, "/users")


@router.get("/invitations/{token}")
def invitation_page(request: Request, token: str) -> Response:
    """Choose a password through a single-use link."""
    with database(request).read() as s:
        try:
            invitation, user, ws = accounts.open_link(s, token)
        except NotFound:
            return render(request, "invitation_gone.html", 404)
    return render(request, "invitation.html", purpose=invitation.purpose, email=user.email, workspace=ws.name)


@router.post("/invitations/{token}")
async def invitation(request: Request, token: str) -> Response:
    """Set the password; the link is spent, and any other session of the user ends."""
    data = await form(request)
    try:
        with database(request).write() as s:
            user = accounts.redeem(s, token, field(data, "password"), field(data, "confirm"))
            email = user.email
    except NotFound:
        return render(request, "invitation_gone.html", 404)
    except Invalid as exc:
        with database(request).read() as s:
            invitation, user, ws = accounts.open_link(s, token)
        found = forms.state("invitation", data, exc)
        return render(
            request, "invitation.html", 422, purpose=invitation.purpose, email=user.email, workspace=ws.name,
            formstate=found, error=forms.summary(found),
        )  # fmt: skip
    login_form = {"id": "login", "values": {"email": email}, "errors": {}, "links": {}}
    return redirect(request, "/login", notice="Your password is set: log in with it.", form=login_form)
