"""Account > My Profile > Security (API keys), Settings > Connections (OData explorer, SCIM), Activity Log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from payroster import clock
from payroster.db.engine import Budget
from payroster.domain.errors import DomainError, Invalid
from payroster.odata import routes as odata_routes
from payroster.odata.model import SETS
from payroster.services import apikeys, workspaces
from payroster.urls import public_base
from payroster.web import shared
from payroster.web.core import database, field, form, need_admin, need_full_admin, need_user, redirect, render

router = APIRouter(include_in_schema=False)
TRY_ROWS = 50
MAX_NAME = 255


# -- API keys -------------------------------------------------------------------------------------------------


def _keys_page(request: Request, status: int = 200, **extra: Any) -> Response:
    who = need_user(request)
    keys = []
    if who.is_full_admin:
        with database(request).read() as s:
            keys = apikeys.list_keys(s, who.workspace_id, who.user_id)
    return render(request, "security.html", status, keys=keys, **extra)


@router.get("/account/security")
def security(request: Request) -> Response:
    """Account > My Profile > Security: the signed-in user's API keys (full administrators only)."""
    return _keys_page(request)


@router.post("/account/security/keys")
async def create_key(request: Request) -> Response:
    """Create a key; its secret is shown once, on this answer only."""
    who = need_full_admin(request)
    data = await form(request)
    name = field(data, "name").strip()[:MAX_NAME] or f"API key {dt.date.today().isoformat()}"
    with database(request).write(who.workspace_id) as s:
        key, row = apikeys.issue(s, who.actor(), who.user_id, name)
    response = _keys_page(request, new_key=key, new_key_id=row.key_id)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/security/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke one of the signed-in user's keys (401 on every door afterwards)."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        apikeys.revoke(s, who.actor(), key_id, who.user_id)
    return redirect(request, "/account/security", notice=f"Key {key_id} was revoked.")


# -- OData explorer -------------------------------------------------------------------------------------------

EXAMPLES = (
    ("Users", "$select=emailAddress,firstName,lastName,role&$orderby=lastName"),
    ("Users", "$filter=tags/any(t: t eq 'West')&$count=true"),
    ("Users", "$filter=role eq 'Participant' and active eq true"),
    ("Teams", "$expand=members($select=emailAddress)"),
    ("TeamMembers", "$top=100"),
    ("CustomVariables", "$filter=name eq 'Quota'"),
)


def examples() -> tuple[tuple[str, str], ...]:
    """The examples, with those of application time dated around today: the last day of the previous month for
    ``$at``, that month for ``$from``/``$to`` (README.md, "OData feed")."""
    first = clock.today().replace(day=1)
    last = first - dt.timedelta(days=1)
    dated = (
        ("Teams", f"$at={last}&$expand=members($select=emailAddress)"),
        ("Users", f"$at={last}&$select=emailAddress,directManagerId"),
        ("MembershipPeriods", f"$from={last.replace(day=1)}&$to={first}&$count=true"),
        ("ManagerPeriods", "$orderby=systemUserId,validFrom"),
    )
    return EXAMPLES[:4] + dated + EXAMPLES[4:]


@router.get("/settings/connections/odata")
async def odata_explorer(request: Request, set: str = "", query: str = "") -> Response:  # noqa: A002
    """The OData explorer: the model, examples on this workspace's service root, "try it", client steps.

    The page is made in the feed's threads, its query under the feed's time budget (odata.routes.budgeted):
    run on the event loop, three "try it" queries held up every request of the server."""
    return await odata_routes.budgeted(request, lambda budget: _explorer(request, set, query, budget))


def _explorer(request: Request, set_name: str, query: str, budget: Budget) -> Response:
    who = need_admin(request)
    root = f"{public_base(request)}/odata/{who.workspace_slug}/"
    context: dict[str, Any] = {"root": root, "sets": SETS, "examples": examples(), "set_name": set_name, "query": query}
    if set_name:
        path = set_name.strip().lstrip("/")
        response = odata_routes.explore(
            request, who.workspace_slug, who.workspace_id, path, query.strip().lstrip("?"), TRY_ROWS, budget
        )
        raw = bytes(response.body)
        context["try_status"] = response.status_code
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        context["raw"] = (
            json.dumps(payload, indent=2, ensure_ascii=False) if payload is not None else raw.decode(errors="replace")
        )
        if isinstance(payload, dict) and isinstance(payload.get("value"), list):
            rows = [r for r in payload["value"] if isinstance(r, dict)]
            columns = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("@")))
            context["columns"], context["rows"] = columns, rows
            context["more"] = "@odata.nextLink" in payload
            context["count"] = payload.get("@odata.count")
        elif isinstance(payload, dict) and "error" in payload:
            context["odata_error"] = payload["error"].get("message")
    return render(request, "odata.html", **context)


# -- SCIM -----------------------------------------------------------------------------------------------------


@router.get("/settings/connections/scim")
def scim_settings(request: Request) -> Response:
    """The SCIM base URL, provisioning tokens, default SCIM role, Okta and Entra ID steps."""
    who = need_admin(request)
    with database(request).read() as s:
        tokens = apikeys.list_keys(s, who.workspace_id, kind="scim")
        ws = workspaces.by_slug(s, who.workspace_slug)
    return render(
        request, "scim.html", base=f"{public_base(request)}/scim/v2/{who.workspace_slug}", tokens=tokens,
        default_role=ws.default_scim_role, roles=("FullAdmin", "LimitedAdmin", "Participant"),
        new_token=getattr(request.state, "new_token", None),
    )  # fmt: skip


@router.post("/settings/connections/scim/tokens")
async def create_token(request: Request) -> Response:
    """A provisioning token for this workspace's SCIM door, shown once."""
    who = need_full_admin(request)
    data = await form(request)
    name = field(data, "name").strip()[:MAX_NAME] or f"Provisioning token {dt.date.today().isoformat()}"
    with database(request).write(who.workspace_id) as s:
        token, _ = apikeys.issue(s, who.actor(), None, name, "scim")
    request.state.new_token = token
    response = scim_settings(request)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/settings/connections/scim/tokens/{key_id}/revoke")
async def revoke_token(request: Request, key_id: str) -> Response:
    """Revoke a provisioning token."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        apikeys.revoke(s, who.actor(), key_id)
    return redirect(request, "/settings/connections/scim", notice=f"Token {key_id} was revoked.")


@router.post("/settings/connections/scim/role")
async def default_role(request: Request) -> Response:
    """The role given to users the identity provider creates without one."""
    who = need_full_admin(request)
    data = await form(request)
    try:
        with database(request).write(who.workspace_id) as s:
            workspaces.set_default_scim_role(s, who.actor(), field(data, "role"))
    except Invalid as exc:
        return redirect(request, "/settings/connections/scim", error=exc.message)
    return redirect(request, "/settings/connections/scim", notice="Default SCIM role saved.")


# -- Activity log ---------------------------------------------------------------------------------------------


@router.get("/settings/activity")
def activity(
    request: Request,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
    page: str = "1",
) -> Response:
    """Settings > Activity Log: audit events filtered by actor, action, target and date, newest first."""
    who = need_admin(request)
    flt = shared.EventFilter(actor, action, target, since, until)
    number = int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1
    problems = flt.problems()
    events: list[dict[str, Any]] = []
    more = False
    if not problems:
        with database(request).read() as s:
            events, more = shared.events(s, shared.events_query(who.workspace_id, flt), number)
    return render(
        request, "activity.html", 422 if problems else 200, events=events, more=more, flt=flt, page=number,
        error="; ".join(problems) or None,
    )  # fmt: skip


__all__ = ["router", "DomainError"]
