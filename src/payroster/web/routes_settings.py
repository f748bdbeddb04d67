"""Account > My Profile > Security (API keys), Settings > Connections (OData explorer, SCIM), Activity Log."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from payroster import clock
from payroster.auth.apikey import forget_verified_keys
from payroster.db.engine import Budget
from payroster.domain.errors import DomainError, Invalid, NotFound
from payroster.services import apikeys, reads, workspaces
from payroster.services.listings import ACTIONS
from payroster.urls import public_base
from payroster.web import forms, shared
from payroster.web.core import (
    database,
    field,
    fmt_time,
    form,
    need_admin,
    need_full_admin,
    need_user,
    query_text,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
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
    """Create a key and redirect: its secret is shown once, on the page the browser lands on (a reload of that
    page creates no second key and shows the secret no more)."""
    who = need_full_admin(request)
    data = await form(request)
    name = field(data, "name").strip()[:MAX_NAME] or f"API key {dt.date.today().isoformat()}"
    with database(request).write(who.workspace_id) as s:
        key, row = apikeys.issue(s, who.actor(), who.user_id, name)
    return redirect(request, "/account/security", notice=f"Key {row.name} was created.", reveal={"key": key})


def _revoke_page(request: Request, kind: str, key_id: str, action: str, cancel: str) -> Response:
    """What revoking a key or token does, and the button that does it."""
    who = need_full_admin(request)
    with database(request).read() as s:
        mine = who.user_id if kind == "api" else None
        row = next((k for k in apikeys.list_keys(s, who.workspace_id, mine, kind) if k.key_id == key_id), None)
    if row is None or row.revoked_at is not None:
        raise NotFound("key not found", target="keyId")
    noun = "API key" if kind == "api" else "provisioning token"
    clients = "Programs that send it" if kind == "api" else "The identity provider that sends it"
    shown = f"{'pr' if kind == 'api' else 'prs'}_{row.key_id}_…"
    return render(
        request, "confirm.html", title=f"Revoke {noun} {row.name}", action=action, button=f"Revoke {row.name}",
        cancel=cancel,
        effects=[
            f"{clients} ({shown}) are refused from now on (401); it cannot be turned on again.",
            f"Created {fmt_time(row.created_at)}; last used {fmt_time(row.last_used_at)}.",
        ],
    )  # fmt: skip


@router.get("/account/security/keys/{key_id}/revoke")
def revoke_key_page(request: Request, key_id: str) -> Response:
    """The confirmation of revoking one of the signed-in user's keys."""
    return _revoke_page(request, "api", key_id, f"/account/security/keys/{key_id}/revoke", "/account/security")


@router.post("/account/security/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke one of the signed-in user's keys (401 on every door afterwards)."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        apikeys.revoke(s, who.actor(), key_id, who.user_id)
    forget_verified_keys(request.app)
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


@dataclass(frozen=True)
class Feed:
    """What the explorer uses of the OData door, handed to the pages by ``create_app`` (``app.state.feed``): a door
    does not import another (docs/architecture.md, "Layers")."""

    sets: Mapping[str, Any]  # the entity sets the page describes
    # Runs the page's work in the feed's threads under the feed's time budget.
    budgeted: Callable[[Request, Callable[[Budget], Response]], Awaitable[Response]]
    # A feed query of the signed-in admin's workspace: (request, slug, workspace id, path, query, rows, budget).
    explore: Callable[[Request, str, uuid.UUID, str, str, int, Budget], Response]


@router.get("/settings/connections/odata")
async def odata_explorer(request: Request, set: str = "", query: str = "") -> Response:  # noqa: A002
    """The OData explorer: the model, examples on this workspace's service root, "try it", client steps.

    The page is made in the feed's threads, its query under the feed's time budget (``Feed.budgeted``):
    run on the event loop, three "try it" queries held up every request of the server."""
    feed: Feed = request.app.state.feed
    return await feed.budgeted(request, lambda budget: _explorer(request, feed, set, query, budget))


def _explorer(request: Request, feed: Feed, set_name: str, query: str, budget: Budget) -> Response:
    who = need_admin(request)
    root = f"{public_base(request)}/odata/{who.workspace_slug}/"
    context: dict[str, Any] = {"root": root, "sets": feed.sets, "examples": examples()}
    context.update(set_name=set_name, query=query)
    if set_name:
        path = set_name.strip().lstrip("/")
        response = feed.explore(
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
    )  # fmt: skip


@router.post("/settings/connections/scim/tokens")
async def create_token(request: Request) -> Response:
    """A provisioning token for this workspace's SCIM door, shown once."""
    who = need_full_admin(request)
    data = await form(request)
    name = field(data, "name").strip()[:MAX_NAME] or f"Provisioning token {dt.date.today().isoformat()}"
    with database(request).write(who.workspace_id) as s:
        token, row = apikeys.issue(s, who.actor(), None, name, "scim")
    notice = f"Token {row.name} was created."
    return redirect(request, "/settings/connections/scim", notice=notice, reveal={"token": token})


@router.get("/settings/connections/scim/tokens/{key_id}/revoke")
def revoke_token_page(request: Request, key_id: str) -> Response:
    """The confirmation of revoking a provisioning token."""
    action = f"/settings/connections/scim/tokens/{key_id}/revoke"
    return _revoke_page(request, "scim", key_id, action, "/settings/connections/scim")


@router.post("/settings/connections/scim/tokens/{key_id}/revoke")
async def revoke_token(request: Request, key_id: str) -> Response:
    """Revoke a provisioning token."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        apikeys.revoke(s, who.actor(), key_id)
    forget_verified_keys(request.app)
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
        found = forms.state("default-role", data, exc)
        return redirect(request, "/settings/connections/scim", error=forms.summary(found), form=found)
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
    with database(request).read() as s:
        if not problems:
            events, more = shared.events(s, shared.events_query(who.workspace_id, flt, session=s), number)
        # The target box suggests the teams by name (people are found by any part of their name or e-mail).
        team_names = reads.team_names(s, who.workspace_id, 500)
    return render(
        request, "activity.html", 422 if problems else 200, events=events, more=more, flt=flt, page=number,
        error="; ".join(problems) or None, actions=ACTIONS, team_names=team_names,
    )  # fmt: skip


__all__ = ["router", "DomainError"]
