"""Webhook delivery: threads that send each endpoint the change feed's events after its position, in order,
signed as Standard Webhooks (docs/architecture.md, "Webhook delivery").

A thread finds endpoints with work by a read (events after the position, events not numbered yet, messages
asked for by hand), then takes one by a short write: a lease on its row (PostgreSQL skips rows another worker
is locking at that moment; on SQLite writers take turns anyway). It sends outside any transaction, and after
each answer records the attempt and moves the position in one write that holds only if the lease is still its
own and the endpoint was not changed meanwhile (``generation``: a replay, a new URL). A position moves only
after a 2xx, so a crash between a 2xx and that write sends the event again: at least once, ids unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, and_, delete, exists, func, insert, or_, select, update

from payroster import __version__, clock, outbound
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.db.models import WebhookAttempt, WebhookEndpoint, WebhookSend, Workspace, table, utcnow
from payroster.domain.errors import DomainError, Gone, NotFound
from payroster.ids import new_id
from payroster.services import changes, timelines, webhooks

log = logging.getLogger("payroster.webhooks")

ENDPOINTS = table(WebhookEndpoint)
ATTEMPTS = table(WebhookAttempt)
SENDS = table(WebhookSend)

# Delays after the 1st, 2nd... failed attempt of an event (then 10% jitter added, never removed): 75 h 35 min
# in all, more than three days, before the endpoint is disabled. README.md, "Webhooks", prints it.
SCHEDULE = (
    dt.timedelta(seconds=5), dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2),
    dt.timedelta(hours=5), dt.timedelta(hours=10), dt.timedelta(hours=10), dt.timedelta(hours=12),
    dt.timedelta(hours=12), dt.timedelta(hours=12), dt.timedelta(hours=12),
)  # fmt: skip
JITTER = 0.1
PAGE = 100  # events read at a time
CANDIDATES = 20  # endpoints looked at per round
# How often a delivery thread looks for workspaces with an endpoint whose recorded changes reach their date today:
# it makes them current (timelines.refresh), so their events are sent that day even when nobody uses the workspace.
TAKE_EFFECT_EVERY = 60.0


def retry_delay(failures: int, scale: float, rng: Callable[[], float] = random.random) -> dt.timedelta | None:
    """The wait after an event's ``failures``-th failed attempt; None when the schedule is spent."""
    if failures > len(SCHEDULE):
        return None
    return SCHEDULE[failures - 1] * scale * (1 + JITTER * rng())


def sign(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` per secret, space-separated.

    Five lines of the standard by hand: the ``standardwebhooks`` package verifies them in the tests."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(base64.b64decode(s.removeprefix("whsec_")), signed, hashlib.sha256).digest()
        ).decode()
        for s in secrets
    )


FLUSH_EVERY = 50  # delivered events between two writes of the position
FLUSH_AFTER = 0.1  # seconds a delivered event waits at most before its position is written


@dataclass
class _Done:
    """What a thread delivered and has not written yet: the position reached and the attempts that got there."""

    written: int
    position: int = -1
    rows: list[dict[str, Any]] = field(default_factory=list)
    since: float | None = None

    def __post_init__(self) -> None:
        self.position = max(self.position, self.written)

    def add(self, sequence: int, row: dict[str, Any]) -> None:
        self.position = sequence
        self.rows.append(row)
        if self.since is None:
            self.since = time.monotonic()

    def due(self) -> bool:
        return len(self.rows) >= FLUSH_EVERY or (self.since is not None and time.monotonic() - self.since > FLUSH_AFTER)


@dataclass(frozen=True)
class Claim:
    """An endpoint this thread holds the lease of, as it was when taken."""

    workspace_id: uuid.UUID
    id: uuid.UUID
    url: str
    patterns: list[str]
    enabled: bool
    due: bool
    position: int
    generation: int
    failures: int
    endpoint: WebhookEndpoint


class Deliverer:
    """One delivery thread's work: ``step`` handles one endpoint that has work, ``run`` loops until stopped."""

    def __init__(self, db: Database, settings: Settings, guard: outbound.Guard, secret_key: str) -> None:
        self.db = db
        self.settings = settings
        self.secret_key = secret_key
        self.sender = outbound.Sender(guard, settings.webhook_timeout)
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Longer than any attempt and the write after it; a crashed holder's endpoints wait this long.
        self.lease = dt.timedelta(seconds=3 * settings.webhook_timeout + 2)
        self.effects_looked_at: float | None = None

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; an error is logged and the loop goes on after a pause."""
        try:
            while not stop.is_set():
                try:
                    worked = self.step()
                except DomainError as exc:  # expected (a database busy or away): said in a line, no traceback
                    log.warning("webhook delivery paused: %s", exc.message)
                    worked = False
                except Exception:
                    log.exception("webhook delivery failed; trying again shortly")
                    worked = False
                if not worked:
                    stop.wait(self.settings.webhook_poll)
        finally:
            self.sender.close()

    def step(self) -> bool:
        """Take one endpoint with work and do it; False when none had any."""
        if self.effects_looked_at is None or time.monotonic() - self.effects_looked_at >= TAKE_EFFECT_EVERY:
            self.effects_looked_at = time.monotonic()
            self.take_effect()
        now = utcnow()
        with self.db.read() as s:
            found = list(s.execute(_candidates(now)).all())
        random.shuffle(found)
        for ws, endpoint_id in found:
            claim = self._claim(ws, endpoint_id)
            if claim is not None:
                try:
                    self._work(claim)
                finally:
                    self._release(claim)
                return True
        return False

    def take_effect(self) -> None:
        """Make today's values current in the workspaces with an enabled endpoint whose next recorded change is
        due: their ``schedule`` events then join the feed (docs/architecture.md, "Timelines")."""
        w, e = table(Workspace), ENDPOINTS
        listening = exists().where(e.c.workspace_id == w.c.id, e.c.enabled.is_(True))
        with self.db.read() as s:
            due = list(s.scalars(select(w.c.id).where(w.c.timeline_due <= clock.today(), listening)))
        for ws in due:
            with self.db.write(ws) as s:
                timelines.refresh(s, ws)

    # -- leases ----------------------------------------------------------------------------------------------

    def _claim(self, ws: uuid.UUID, endpoint_id: uuid.UUID) -> Claim | None:
        now = utcnow()
        with self.db.write() as s:
            row = s.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.workspace_id == ws, WebhookEndpoint.id == endpoint_id, _free(ENDPOINTS, now))
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            row.lease_owner, row.lease_until = self.owner, now + self.lease
            due = row.next_attempt_at is None or row.next_attempt_at <= now
            return Claim(
                ws, endpoint_id, row.url, orjson.loads(row.event_types), row.enabled, due, row.position,
                row.generation, row.failures, row,
            )  # fmt: skip

    def _release(self, claim: Claim) -> None:
        with self.db.write() as s:
            s.execute(
                update(ENDPOINTS)
                .where(*_mine(claim, self.owner, any_generation=True))
                .values(lease_owner=None, lease_until=None)
            )

    # -- work ------------------------------------------------------------------------------------------------

    def _work(self, claim: Claim) -> None:
        if not self._send_queued(claim):
            return
        if not (claim.enabled and claim.due):
            return
        done = _Done(claim.position)
        succeeded = False
        deadline = time.monotonic() + self.lease.total_seconds() / 2  # then let other threads have a turn
        while time.monotonic() < deadline:
            try:
                page = changes.read(self.db, claim.workspace_id, done.position, PAGE)
            except (Gone, NotFound) as exc:
                self._flush(claim, done)
                self._disable(claim, f"its position {done.position} is no longer in the change feed ({exc.message})")
                return
            if not page.events:
                break
            for event in page.events:
                if not webhooks.matches(claim.patterns, event.action):
                    done.position = event.sequence
                    continue
                mid = webhooks.message_id(claim.id, event.sequence)
                result = self._send(claim, mid, webhooks.event_body(event))
                row = _attempt(claim, mid, event.sequence, event.action, result)
                if result.status is not None and 200 <= result.status < 300:
                    succeeded = True
                    done.add(event.sequence, row)
                    if done.due() and not self._flush(claim, done):
                        return
                else:
                    if self._flush(claim, done):
                        self._failed(claim, 1 if succeeded else claim.failures + 1, result, row)
                    return
            done.position = max(done.position, page.last)
        self._flush(claim, done)

    def _flush(self, claim: Claim, done: _Done) -> bool:
        """Write the position reached and the attempts made since the last write; False when the endpoint is no
        longer this thread's. Written every ``FLUSH_EVERY`` events or ``FLUSH_AFTER`` seconds rather than after each
        one: on PostgreSQL every commit waits for its WAL flush, and a write per event capped one endpoint at ~40
        deliveries a second on the development machine (bench/JOURNAL.md)."""
        if done.position == done.written and not done.rows:
            return True
        if not self._advance(claim, done.position, done.rows):
            return False
        done.written, done.rows, done.since = done.position, [], None
        return True

    def _send_queued(self, claim: Claim) -> bool:
        """Send the messages asked for by hand, each once; False when the lease was lost."""
        with self.db.read() as s:
            queued = list(
                s.scalars(
                    select(WebhookSend)
                    .where(WebhookSend.workspace_id == claim.workspace_id, WebhookSend.endpoint_id == claim.id)
                    .order_by(WebhookSend.id)
                    .limit(PAGE)
                )
            )
        for q in queued:
            result = self._send(claim, q.message_id, q.body.encode())
            with self.db.write() as s:
                if not _renewed(s, claim, self.owner, utcnow() + self.lease, any_generation=True):
                    return False
                s.execute(delete(SENDS).where(SENDS.c.workspace_id == q.workspace_id, SENDS.c.id == q.id))
                _log(s, [_attempt(claim, q.message_id, q.sequence, q.event_type, result)])
        return True

    def _send(self, claim: Claim, mid: str, body: bytes) -> outbound.Outcome:
        now = int(time.time())
        keys = webhooks.signing_secrets(claim.endpoint, self.secret_key, utcnow())
        if not keys:
            return outbound.Outcome(None, "the secret cannot be read (the server key changed): rotate it", 0, b"")
        headers = {
            "content-type": "application/json",
            "user-agent": f"PayRoster-Webhooks/{__version__}",
            "webhook-id": mid,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(keys, mid, now, body),
        }
        return self.sender.post(claim.url, headers, body)

    def _advance(self, claim: Claim, position: int, attempts: list[dict[str, Any]]) -> bool:
        """Move the position after 2xx answers (or past filtered events); False when the endpoint is no longer ours."""
        with self.db.write() as s:
            values: dict[str, Any] = {"position": position}
            if attempts:
                values.update(failures=0, failing_since=None, next_attempt_at=None)
            if not _renewed(s, claim, self.owner, utcnow() + self.lease, **values):
                return False
            _log(s, attempts)
        return True

    def _failed(self, claim: Claim, failures: int, result: outbound.Outcome, attempt: dict[str, Any]) -> None:
        now = utcnow()
        delay = retry_delay(failures, self.settings.webhook_retry_scale)
        values: dict[str, Any] = {"failures": failures, "failing_since": func.coalesce(ENDPOINTS.c.failing_since, now)}
        if result.status == 410:
            values.update(enabled=False, disabled_reason="the receiver answered 410 Gone", next_attempt_at=None)
        elif delay is None:
            values.update(
                enabled=False, next_attempt_at=None,
                disabled_reason=f"every attempt failed for {failures} tries over the whole retry schedule",
            )  # fmt: skip
        else:
            values["next_attempt_at"] = now + delay
        with self.db.write() as s:
            if _renewed(s, claim, self.owner, now + self.lease, **values):
                _log(s, [attempt])
        if values.get("enabled") is False:
            log.warning("webhook endpoint %s disabled: %s", claim.id, values["disabled_reason"])

    def _disable(self, claim: Claim, reason: str) -> None:
        with self.db.write() as s:
            _renewed(s, claim, self.owner, utcnow(), enabled=False, disabled_reason=reason[:255])
        log.warning("webhook endpoint %s disabled: %s", claim.id, reason)


def _candidates(now: dt.datetime) -> Any:
    e, c = ENDPOINTS, changes.COUNTERS
    unnumbered = exists().where(changes.EVENTS.c.workspace_id == e.c.workspace_id, changes.EVENTS.c.sequence.is_(None))
    queued = exists().where(SENDS.c.workspace_id == e.c.workspace_id, SENDS.c.endpoint_id == e.c.id)
    due = and_(
        e.c.enabled.is_(True),
        or_(e.c.next_attempt_at.is_(None), e.c.next_attempt_at <= now),
        or_(e.c.position < func.coalesce(c.c.last_sequence, 0), unnumbered),
    )
    return (
        select(e.c.workspace_id, e.c.id)
        .select_from(e.outerjoin(c, c.c.workspace_id == e.c.workspace_id))
        .where(_free(e, now), or_(due, queued))
        .limit(CANDIDATES)
    )


def _free(e: Any, now: dt.datetime) -> Any:
    return or_(e.c.lease_until.is_(None), e.c.lease_until < now)


def _mine(claim: Claim, owner: str, any_generation: bool = False) -> list[Any]:
    e = ENDPOINTS
    found = [e.c.workspace_id == claim.workspace_id, e.c.id == claim.id, e.c.lease_owner == owner]
    if not any_generation:
        found.append(e.c.generation == claim.generation)
    return found


def _renewed(
    s: Any, claim: Claim, owner: str, until: dt.datetime, *, any_generation: bool = False, **values: Any
) -> bool:
    """Renew the lease with ``values`` written beside it; False when the endpoint is no longer this thread's (its
    lease taken over, the endpoint changed or deleted)."""
    statement = update(ENDPOINTS).where(*_mine(claim, owner, any_generation)).values(lease_until=until, **values)
    return int(cast(CursorResult[Any], s.execute(statement)).rowcount) == 1


def _attempt(claim: Claim, mid: str, sequence: int | None, event_type: str, result: outbound.Outcome) -> dict[str, Any]:
    return {
        "workspace_id": claim.workspace_id, "id": new_id(), "endpoint_id": claim.id, "message_id": mid,
        "sequence": sequence, "event_type": event_type, "attempted_at": utcnow(), "status": result.status,
        "error": None if result.error is None else result.error[:512], "duration_ms": result.duration_ms,
        "response": result.head.decode("utf-8", "replace"),
    }  # fmt: skip


def _log(s: Any, attempts: list[dict[str, Any]]) -> None:
    """Record attempts of one endpoint and forget those beyond its last ``LOG_SIZE``."""
    if not attempts:
        return
    s.execute(insert(ATTEMPTS), attempts[-webhooks.LOG_SIZE :])
    a, first = ATTEMPTS, attempts[0]
    mine = and_(a.c.workspace_id == first["workspace_id"], a.c.endpoint_id == first["endpoint_id"])
    oldest_kept = select(a.c.id).where(mine).order_by(a.c.id.desc()).limit(1).offset(webhooks.LOG_SIZE - 1)
    s.execute(delete(a).where(mine, a.c.id < oldest_kept.scalar_subquery()))


class Delivery:
    """Delivery threads running in this process (``payroster serve``, ``payroster worker``)."""

    def __init__(self, db: Database, settings: Settings, guard: outbound.Guard, secret_key: str) -> None:
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=Deliverer(db, settings, guard, secret_key).run, args=(self._stop,), name=f"webhooks-{i}",
                daemon=True,
            )
            for i in range(settings.webhook_threads)
        ]  # fmt: skip

    def start(self) -> Delivery:
        """Start the threads."""
        for t in self._threads:
            t.start()
        return self

    def alive(self) -> bool:
        """True while every thread runs."""
        return all(t.is_alive() for t in self._threads)

    def stop(self, wait: float = 15.0) -> None:
        """Ask the threads to stop and wait for them (an attempt in flight ends by its timeout)."""
        self._stop.set()
        for t in self._threads:
            t.join(wait)
