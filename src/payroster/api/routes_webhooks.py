"""JSON API: webhook endpoints, ``/api/v1/webhooks`` (README.md, "Webhooks"). Full administrators' keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from payroster.api import schemas
from payroster.api.body import json_body, query_text
from payroster.api.deps import actor, database, principal, schema_ref
from payroster.api.errors import ERRORS
from payroster.db.engine import Database
from payroster.domain.errors import Detail, Invalid
from payroster.outbound import Guard
from payroster.services import webhooks
from payroster.services.context import Actor

router = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS, tags=["webhooks"])


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.webhook_guard
    return guard


def _sequence(body: Any, name: str = "sequence") -> int:
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(
            "invalid sequence", details=[Detail("invalidValue", "a change sequence number (1 or more)", f"/{name}")]
        )
    return value


@router.post(
    "/api/v1/webhooks",
    operation_id="createWebhook",
    status_code=201,
    response_model=schemas.WebhookOut,
    openapi_extra=schema_ref("WebhookIn"),
)
def create_webhook(
    request: Request, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Add an endpoint; the answer holds its secret, shown this once."""
    inp = webhooks.parse_endpoint(body, require_url=True)
    webhooks.number_pending(db, who.workspace_id)
    with db.write(who.workspace_id) as s:
        endpoint, secret = webhooks.create(s, who, request.app.state.secret_key, inp, _guard(request))
        return JSONResponse({**webhooks.wire(endpoint), "secret": secret}, status_code=201)


@router.get("/api/v1/webhooks", operation_id="listWebhooks", response_model=schemas.WebhookList)
def list_webhooks(db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """The workspace's endpoints."""
    with db.read() as s:
        return JSONResponse({"webhooks": [webhooks.wire(e) for e in webhooks.listing(s, who.workspace_id)]})


@router.post(
    "/api/v1/webhooks/{webhook_id}:rotate-secret", operation_id="rotateWebhookSecret", response_model=schemas.WebhookOut
)
def rotate_secret(
    request: Request, webhook_id: str, db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """A new secret (shown this once); the old one keeps signing beside it for 24 hours."""
    with db.write(who.workspace_id) as s:
        endpoint, secret = webhooks.rotate(s, who, request.app.state.secret_key, webhook_id)
        return JSONResponse({**webhooks.wire(endpoint), "secret": secret})


@router.get("/api/v1/webhooks/{webhook_id}", operation_id="getWebhook", response_model=schemas.WebhookOut)
def get_webhook(webhook_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """One endpoint."""
    with db.read() as s:
        return JSONResponse(webhooks.wire(webhooks.get(s, who.workspace_id, webhook_id)))


@router.patch(
    "/api/v1/webhooks/{webhook_id}",
    operation_id="patchWebhook",
    response_model=schemas.WebhookOut,
    openapi_extra=schema_ref("WebhookPatch"),
)
def patch_webhook(
    request: Request,
    webhook_id: str,
    body: Any = Depends(json_body),
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> JSONResponse:
    """Change an endpoint: URL, description, event types, enabled."""
    inp = webhooks.parse_endpoint(body, require_url=False)
    with db.write(who.workspace_id) as s:
        return JSONResponse(webhooks.wire(webhooks.patch(s, who, webhook_id, inp, _guard(request))))


@router.delete("/api/v1/webhooks/{webhook_id}", operation_id="deleteWebhook", status_code=204, response_class=Response)
def delete_webhook(webhook_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> Response:
    """Delete an endpoint with its delivery log."""
    with db.write(who.workspace_id) as s:
        webhooks.remove(s, who, webhook_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/webhooks/{webhook_id}/attempts", operation_id="listWebhookAttempts", response_model=schemas.WebhookAttempts
)
def list_attempts(webhook_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """The endpoint's last 100 delivery attempts, newest first: status, duration, the answer's first 1 KiB."""
    with db.read() as s:
        found = webhooks.attempts(s, who.workspace_id, webhook_id)
        return JSONResponse({"attempts": [webhooks.attempt_wire(a) for a in found]})


@router.post(
    "/api/v1/webhooks/{webhook_id}/test",
    operation_id="sendWebhookTest",
    status_code=202,
    response_model=schemas.WebhookQueued,
)
def send_test(webhook_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """Queue a `webhook.test` message (sent once; its attempt shows in the log)."""
    with db.write(who.workspace_id) as s:
        return JSONResponse({"messageId": webhooks.send_test(s, who, webhook_id)}, status_code=202)


@router.post(
    "/api/v1/webhooks/{webhook_id}/resend",
    operation_id="resendWebhookEvent",
    status_code=202,
    response_model=schemas.WebhookQueued,
    openapi_extra=schema_ref("WebhookSequence"),
)
def resend(
    webhook_id: str, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Queue one change again (sent once, with its usual ``webhook-id``)."""
    sequence = _sequence(body)
    with db.write(who.workspace_id) as s:
        return JSONResponse({"messageId": webhooks.resend(s, who, webhook_id, sequence)}, status_code=202)


@router.post(
    "/api/v1/webhooks/{webhook_id}/replay",
    operation_id="replayWebhook",
    response_model=schemas.WebhookOut,
    openapi_extra=schema_ref("WebhookSequence"),
)
def replay(
    webhook_id: str, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Deliver every change again from ``sequence`` on, in order."""
    sequence = _sequence(body)
    with db.write(who.workspace_id) as s:
        return JSONResponse(webhooks.wire(webhooks.replay(s, who, webhook_id, sequence)))
