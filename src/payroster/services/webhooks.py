"""Webhook endpoints: where a workspace's changes are POSTed, signed as Standard Webhooks, and what an admin does
with them (create, change, rotate the secret, read the delivery log, send a test, resend, replay).

The change feed's events are the outbox: written in the change's own transaction, numbered per workspace
(services/changes.py). An endpoint holds its position in that feed; services/delivery.py sends what follows it.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete
from sqlalchemy.orm import Session

from payroster import outbound
from payroster.db.engine import Database
from payroster.db.models import WebhookAttempt, WebhookEndpoint, WebhookSend, utcnow
from payroster.domain.errors import Conflict, Detail, Gone, Invalid, NotFound
from payroster.domain.wire import time as wire_time
from payroster.ids import new_id, parse_id
from payroster.services import audit, changes, sealing
from payroster.services.context import Actor
from payroster.services.listings import ACTIONS
from payroster.services.scoping import get_scoped, scoped

MAX_ENDPOINTS = 50  # per workspace: each one is polled and sent to on its own
MAX_PATTERNS = 50
MAX_DESCRIPTION = 1024
LOG_SIZE = 100  # attempts kept per endpoint
ROTATION_OVERLAP = dt.timedelta(hours=24)  # the old secret keeps signing beside the new one this long
TEST_TYPE = "webhook.test"

# The event types an endpoint may ask for: the change feed's actions (README.md, "Webhooks").
EVENT_TYPES: tuple[str, ...] = tuple(ACTIONS)
_PREFIXES = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)


# -- event types -------------------------------------------------------------------------------------------------


def pattern_problem(pattern: object) -> str | None:
    """Why an event-type pattern is refused (None: it is known): ``*``, ``user.*`` or an exact type."""
    if not isinstance(pattern, str):
        return "an event type is a string"
    if pattern == "*" or pattern in EVENT_TYPES:
        return None
    if pattern.endswith(".*") and pattern[:-2] in _PREFIXES:
        return None
    return f"unknown event type {pattern!r} (known: *, {', '.join(sorted(_PREFIXES))}.*, or an exact type)"


def matches(patterns: list[str], event_type: str) -> bool:
    """True when an event of this type goes to an endpoint asking for ``patterns``."""
    return any(p in ("*", event_type) or (p.endswith(".*") and event_type.startswith(p[:-1])) for p in patterns)


# -- secrets -----------------------------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# -- messages ----------------------------------------------------------------------------------------------------


def message_id(endpoint_id: uuid.UUID, sequence: int) -> str:
    """The ``webhook-id`` of a change sent to an endpoint: the same on every retry, resend and replay."""
    return f"msg_{endpoint_id.hex}_{sequence}"


def event_body(event: changes.Event) -> bytes:
    """A change as the receiver gets it: ``{"type", "timestamp", "data"}``, data being the change feed's event."""
    doc = changes.document(event)
    return orjson.dumps({"type": event.action, "timestamp": doc["occurredAt"], "data": doc})


# -- endpoints ---------------------------------------------------------------------------------------------------


@dataclass
class EndpointInput:
    """An endpoint as a door gives it; None: not given (a PATCH leaves it as it is)."""

    url: str | None = None
    description: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


_FIELDS = {"url": "url", "description": "description", "eventtypes": "event_types", "enabled": "enabled"}


def parse_endpoint(body: object, require_url: bool) -> EndpointInput:
    """An endpoint from a door's JSON object; every problem at once (422), unknown fields refused."""
    if not isinstance(body, dict):
        raise Invalid("invalid webhook", details=[Detail("invalidValue", "a JSON object is required", "/")])
    inp = EndpointInput()
    problems: list[Detail] = []
    for key, value in body.items():
        name = _FIELDS.get(str(key).lower())
        if name is None:
            problems.append(Detail("unknownField", f"unknown field {key!r}", f"/{key}"))
            continue
        problem = _field_problem(name, value)
        if problem:
            problems.append(Detail("invalidValue", problem, f"/{key}"))
        else:
            setattr(inp, name, value)
    if require_url and inp.url is None and not any(d.target == "/url" for d in problems):
        problems.append(Detail("required", "url is required", "/url"))
    if problems:
        raise Invalid("invalid webhook", details=problems)
    return inp


def _field_problem(name: str, value: Any) -> str | None:
    if name == "url":
        return None if isinstance(value, str) else "a URL string is required"
    if name == "description":
        ok = isinstance(value, str) and len(value) <= MAX_DESCRIPTION
        return None if ok else f"a string of at most {MAX_DESCRIPTION} characters"
    if name == "enabled":
        return None if isinstance(value, bool) else "true or false"
    if not isinstance(value, list) or not value or len(value) > MAX_PATTERNS:
        return f"a list of 1 to {MAX_PATTERNS} event types"
    return next((p for p in map(pattern_problem, value) if p), None)


def _check_url(url: str, guard: outbound.Guard) -> None:
    """422 for a malformed or unsafe URL, resolving its host (a name that answers a private address)."""
    problem = outbound.url_problem(url, guard.allow)
    if problem is None:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        problem = guard.check_host(parts.hostname or "", port)
    if problem is not None:
        raise Invalid("invalid webhook URL", target="url", details=[Detail("invalidValue", problem, "/url")])


def wire(e: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as every door shows it (never its secret)."""

    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else wire_time(value, "seconds")

    return {
        "id": str(e.id),
        "url": e.url,
        "description": e.description,
        "eventTypes": orjson.loads(e.event_types),
        "enabled": e.enabled,
        "disabledReason": e.disabled_reason,
        "position": e.position,
        "failures": e.failures,
        "failingSince": when(e.failing_since),
        "nextAttemptAt": when(e.next_attempt_at),
        "previousSecretUntil": when(e.previous_until) if e.previous_until and e.previous_until > utcnow() else None,
        "createdAt": when(e.created_at),
        "updatedAt": when(e.updated_at),
    }


def _shown(e: WebhookEndpoint) -> dict[str, Any]:
    return {"url": e.url, "description": e.description, "eventTypes": orjson.loads(e.event_types), "enabled": e.enabled}


def number_pending(db: Database, workspace_id: uuid.UUID) -> None:
    """Number the workspace's committed changes before an endpoint is created in its own transaction, so that it
    starts after every change committed before it (and receives every one committed after)."""
    while changes.number(db, workspace_id, 10_000) == 10_000:
        pass


def create(
    s: Session, actor: Actor, secret_key: str, inp: EndpointInput, guard: outbound.Guard
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the actor's workspace and its secret (shown this once). It receives the changes numbered
    from now on (``number_pending`` first: then every change committed after it), earlier ones by a replay."""
    assert inp.url is not None
    _check_url(inp.url, guard)
    count = len(s.execute(scoped(WebhookEndpoint, actor.workspace_id).limit(MAX_ENDPOINTS)).all())
    if count >= MAX_ENDPOINTS:
        raise Conflict(f"a workspace has at most {MAX_ENDPOINTS} webhook endpoints", target="url")
    secret = new_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        workspace_id=actor.workspace_id, id=new_id(), url=inp.url, description=inp.description or "",
        event_types=orjson.dumps(inp.event_types or ["*"]).decode(), enabled=inp.enabled is not False,
        secret_sealed=sealing.seal(secret_key, sealing.WEBHOOK_SECRET, secret),
        position=_last_sequence(s, actor.workspace_id), generation=0, failures=0, created_at=now, updated_at=now,
    )  # fmt: skip
    s.add(endpoint)
    s.flush()
    audit.record(
        s, actor, "webhook.created", "webhook", endpoint.id, audit.created({**_shown(endpoint), "secret": "(changed)"})
    )
    return endpoint, secret


def _last_sequence(s: Session, workspace_id: uuid.UUID) -> int:
    return changes.counter(s, workspace_id)[0]


def listing(s: Session, workspace_id: uuid.UUID) -> list[WebhookEndpoint]:
    """The workspace's endpoints, oldest first."""
    return list(s.scalars(scoped(WebhookEndpoint, workspace_id).order_by(WebhookEndpoint.id)))


def get(s: Session, workspace_id: uuid.UUID, endpoint_id: str | uuid.UUID, lock: bool = False) -> WebhookEndpoint:
    """One endpoint of the workspace (another workspace's id is unknown: 404)."""
    return get_scoped(s, WebhookEndpoint, workspace_id, parse_id(endpoint_id), "webhook", lock=lock)


def patch(s: Session, actor: Actor, endpoint_id: str, inp: EndpointInput, guard: outbound.Guard) -> WebhookEndpoint:
    """Change an endpoint. Enabling one again resumes where it stopped, its retry state cleared."""
    e = get(s, actor.workspace_id, endpoint_id, lock=True)
    before = _shown(e)
    if inp.url is not None and inp.url != e.url:
        _check_url(inp.url, guard)
        e.url = inp.url
    if inp.description is not None:
        e.description = inp.description
    if inp.event_types is not None:
        e.event_types = orjson.dumps(inp.event_types).decode()
    if inp.enabled is not None and inp.enabled != e.enabled:
        e.enabled = inp.enabled
        e.disabled_reason = None if inp.enabled else "disabled by an administrator"
        _clear_retries(e)
    changed = audit.diff(before, _shown(e))
    if changed:
        e.updated_at = utcnow()
        e.generation += 1  # a delivery thread holding the old settings stops at its next step
        audit.record(s, actor, "webhook.updated", "webhook", e.id, changed)
    return e


def _clear_retries(e: WebhookEndpoint) -> None:
    e.failures = 0
    e.failing_since = None
    e.next_attempt_at = None


def remove(s: Session, actor: Actor, endpoint_id: str) -> None:
    """Delete an endpoint with its log and queued messages."""
    e = get(s, actor.workspace_id, endpoint_id, lock=True)
    for model in (WebhookAttempt, WebhookSend):
        s.execute(delete(model).where(model.workspace_id == e.workspace_id, model.endpoint_id == e.id))
    audit.record(s, actor, "webhook.deleted", "webhook", e.id, [{"field": "url", "before": e.url, "after": None}])
    s.delete(e)


def rotate(s: Session, actor: Actor, secret_key: str, endpoint_id: str) -> tuple[WebhookEndpoint, str]:
    """A new secret for an endpoint (shown this once); the old one keeps signing beside it for 24 hours."""
    e = get(s, actor.workspace_id, endpoint_id, lock=True)
    secret = new_secret()
    e.previous_secret_sealed = e.secret_sealed
    e.secret_sealed = sealing.seal(secret_key, sealing.WEBHOOK_SECRET, secret)
    e.previous_until = utcnow() + ROTATION_OVERLAP
    e.updated_at = utcnow()
    audit.record(
        s,
        actor,
        "webhook.secretRotated",
        "webhook",
        e.id,
        [{"field": "secret", "before": "(changed)", "after": "(changed)"}],
    )
    return e, secret


def signing_secrets(e: WebhookEndpoint, secret_key: str, now: dt.datetime) -> list[str]:
    """The secrets a message is signed with now: the current one, and the previous one within its 24 hours."""
    found = [sealing.unseal(secret_key, sealing.WEBHOOK_SECRET, e.secret_sealed)]
    if e.previous_secret_sealed and e.previous_until and e.previous_until > now:
        found.append(sealing.unseal(secret_key, sealing.WEBHOOK_SECRET, e.previous_secret_sealed))
    return [f for f in found if f]


# -- the delivery log and messages by hand -----------------------------------------------------------------------


def attempts(s: Session, workspace_id: uuid.UUID, endpoint_id: str) -> list[WebhookAttempt]:
    """The endpoint's last attempts, newest first."""
    e = get(s, workspace_id, endpoint_id)
    query = (
        scoped(WebhookAttempt, workspace_id)
        .where(WebhookAttempt.endpoint_id == e.id)
        .order_by(WebhookAttempt.id.desc())
        .limit(LOG_SIZE)
    )
    return list(s.scalars(query))


def attempt_wire(a: WebhookAttempt) -> dict[str, Any]:
    """An attempt as the doors show it."""
    return {
        "id": str(a.id), "messageId": a.message_id, "sequence": a.sequence, "eventType": a.event_type,
        "attemptedAt": wire_time(a.attempted_at, "milliseconds"), "status": a.status,
        "error": a.error, "durationMs": a.duration_ms, "response": a.response,
    }  # fmt: skip


def send_test(s: Session, actor: Actor, endpoint_id: str) -> str:
    """Queue a test message for the endpoint (sent once, whether or not it is enabled); its id."""
    e = get(s, actor.workspace_id, endpoint_id)
    mid = f"msg_test_{new_id().hex}"
    now = wire_time(utcnow())
    body = {"type": TEST_TYPE, "timestamp": now, "data": {"endpointId": str(e.id), "message": "a test from PayRoster"}}
    _queue(s, e, mid, None, TEST_TYPE, orjson.dumps(body))
    return mid


def resend(s: Session, actor: Actor, endpoint_id: str, sequence: int) -> str:
    """Queue one change of the feed again for the endpoint (sent once, with its usual id); the id."""
    e = get(s, actor.workspace_id, endpoint_id)
    event = changes.at(s, actor.workspace_id, sequence)
    if event is None:
        raise NotFound(f"no change numbered {sequence} is kept", target="sequence")
    mid = message_id(e.id, sequence)
    _queue(s, e, mid, sequence, event.action, event_body(event))
    return mid


def _queue(s: Session, e: WebhookEndpoint, mid: str, sequence: int | None, event_type: str, body: bytes) -> None:
    s.add(
        WebhookSend(
            workspace_id=e.workspace_id, id=new_id(), endpoint_id=e.id, message_id=mid, sequence=sequence,
            event_type=event_type, body=body.decode(), created_at=utcnow(),
        )
    )  # fmt: skip


def replay(s: Session, actor: Actor, endpoint_id: str, sequence: int) -> WebhookEndpoint:
    """Deliver the feed again from change ``sequence`` on (in order, with their usual ids)."""
    e = get(s, actor.workspace_id, endpoint_id, lock=True)
    last, pruned = changes.counter(s, actor.workspace_id)
    if sequence < 1 or sequence > last + 1:
        raise Invalid(f"sequence must be between 1 and {last + 1}", target="sequence")
    if sequence <= pruned:
        raise Gone(f"changes up to {pruned} were pruned; replay from {pruned + 1} or later", target="sequence")
    before = e.position
    e.position = sequence - 1
    e.generation += 1
    _clear_retries(e)
    e.updated_at = utcnow()
    audit.record(
        s, actor, "webhook.replayed", "webhook", e.id, [{"field": "position", "before": before, "after": e.position}]
    )
    return e
