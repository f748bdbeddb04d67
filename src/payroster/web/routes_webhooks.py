"""Settings > Webhooks: endpoints, their secrets (shown once), the delivery log, test, resend and replay."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from payroster.domain.errors import DomainError, Invalid
from payroster.outbound import Guard
from payroster.services import webhooks
from payroster.web.core import database, field, form, need_full_admin, query_text, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
HOME = "/settings/webhooks"


def _problem(exc: DomainError) -> str:
    return "; ".join([exc.message, *(d.message for d in exc.details)])


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.webhook_guard
    return guard


@router.get(HOME)
def webhooks_page(request: Request) -> Response:
    """The workspace's endpoints, their state (a disabled one says why) and the form that adds one."""
    who = need_full_admin(request)
    with database(request).read() as s:
        endpoints = [webhooks.wire(e) for e in webhooks.listing(s, who.workspace_id)]
    return render(request, "webhooks.html", endpoints=endpoints, types=webhooks.EVENT_TYPES)


@router.post(HOME)
async def create(request: Request) -> Response:
    """Add an endpoint and redirect: its secret is shown once, on the page the browser lands on."""
    who = need_full_admin(request)
    data = await form(request)
    types = [t.strip() for t in field(data, "event_types").split(",") if t.strip()] or ["*"]
    db = database(request)
    try:
        inp = webhooks.parse_endpoint(
            {"url": field(data, "url").strip(), "description": field(data, "description"), "eventTypes": types}, True
        )
        webhooks.number_pending(db, who.workspace_id)
        with db.write(who.workspace_id) as s:
            endpoint, secret = webhooks.create(s, who.actor(), request.app.state.secret_key, inp, _guard(request))
    except DomainError as exc:
        return redirect(request, HOME, error=_problem(exc))
    return redirect(request, HOME, notice=f"Endpoint {endpoint.url} was added.", reveal={"secret": secret})


@router.get(HOME + "/{endpoint_id}")
def endpoint_page(request: Request, endpoint_id: str) -> Response:
    """One endpoint: its state, the last 100 attempts, test, resend, replay."""
    who = need_full_admin(request)
    with database(request).read() as s:
        endpoint = webhooks.wire(webhooks.get(s, who.workspace_id, endpoint_id))
        log = [webhooks.attempt_wire(a) for a in webhooks.attempts(s, who.workspace_id, endpoint_id)]
    return render(request, "webhook.html", endpoint=endpoint, log=log)


@router.post(HOME + "/{endpoint_id}/enabled")
async def set_enabled(request: Request, endpoint_id: str) -> Response:
    """Disable an endpoint, or enable it again (it resumes where it stopped)."""
    who = need_full_admin(request)
    data = await form(request)
    on = field(data, "enabled") == "true"
    with database(request).write(who.workspace_id) as s:
        webhooks.patch(s, who.actor(), endpoint_id, webhooks.EndpointInput(enabled=on), _guard(request))
    return redirect(request, HOME, notice="Endpoint enabled." if on else "Endpoint disabled.")


def _confirm(request: Request, endpoint_id: str, verb: str, effects: list[str]) -> Response:
    who = need_full_admin(request)
    with database(request).read() as s:
        e = webhooks.get(s, who.workspace_id, endpoint_id)
    return render(
        request, "confirm.html", title=f"{verb.capitalize()} the endpoint {e.url}", button=verb.capitalize(),
        action=f"{HOME}/{e.id}/{verb}", cancel=HOME, effects=effects,
    )  # fmt: skip


@router.get(HOME + "/{endpoint_id}/rotate")
def rotate_page(request: Request, endpoint_id: str) -> Response:
    """The confirmation of a new secret."""
    return _confirm(request, endpoint_id, "rotate", [
        "A new secret is made and shown once.",
        "The old secret keeps signing every message beside the new one for 24 hours, then stops.",
    ])  # fmt: skip


@router.post(HOME + "/{endpoint_id}/rotate")
async def rotate(request: Request, endpoint_id: str) -> Response:
    """A new secret, shown once."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        _, secret = webhooks.rotate(s, who.actor(), request.app.state.secret_key, endpoint_id)
    return redirect(request, HOME, notice="The secret was rotated.", reveal={"secret": secret})


@router.get(HOME + "/{endpoint_id}/delete")
def delete_page(request: Request, endpoint_id: str) -> Response:
    """The confirmation of deleting an endpoint."""
    return _confirm(request, endpoint_id, "delete", [
        "Nothing more is sent to this URL; changes not yet delivered are not sent.",
        "Its delivery log goes with it. This cannot be undone.",
    ])  # fmt: skip


@router.post(HOME + "/{endpoint_id}/delete")
async def delete(request: Request, endpoint_id: str) -> Response:
    """Delete an endpoint."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        webhooks.remove(s, who.actor(), endpoint_id)
    return redirect(request, HOME, notice="Endpoint deleted.")


@router.post(HOME + "/{endpoint_id}/test")
async def send_test(request: Request, endpoint_id: str) -> Response:
    """Queue a test message; its attempt shows in the log."""
    who = need_full_admin(request)
    await form(request)
    with database(request).write(who.workspace_id) as s:
        mid = webhooks.send_test(s, who.actor(), endpoint_id)
    return redirect(request, f"{HOME}/{endpoint_id}", notice=f"Test message {mid} queued.")


def _number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise Invalid("a change sequence number (1 or more) is required", target="sequence")
    return number


@router.post(HOME + "/{endpoint_id}/resend")
async def resend(request: Request, endpoint_id: str) -> Response:
    """Queue one change again, with its usual id."""
    who = need_full_admin(request)
    data = await form(request)
    try:
        with database(request).write(who.workspace_id) as s:
            mid = webhooks.resend(s, who.actor(), endpoint_id, _number(field(data, "sequence")))
    except DomainError as exc:
        if exc.target != "sequence":
            raise
        return redirect(request, f"{HOME}/{endpoint_id}", error=_problem(exc))
    return redirect(request, f"{HOME}/{endpoint_id}", notice=f"Message {mid} queued again.")


@router.post(HOME + "/{endpoint_id}/replay")
async def replay(request: Request, endpoint_id: str) -> Response:
    """Deliver every change again from a sequence number on."""
    who = need_full_admin(request)
    data = await form(request)
    try:
        sequence = _number(field(data, "sequence"))
        with database(request).write(who.workspace_id) as s:
            webhooks.replay(s, who.actor(), endpoint_id, sequence)
    except DomainError as exc:
        if exc.target != "sequence":
            raise
        return redirect(request, f"{HOME}/{endpoint_id}", error=_problem(exc))
    return redirect(request, f"{HOME}/{endpoint_id}", notice=f"Changes from {sequence} on will be delivered again.")
