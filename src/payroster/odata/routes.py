"""The OData door: ``/odata/{workspaceSlug}/`` (README.md, "OData feed").

One endpoint owns the whole door so that every answer, errors included, carries ``OData-Version`` and the
OData error body, and credentials are checked before anything else.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import simplejson
from fastapi import APIRouter, Request
from sqlalchemy.exc import DataError
from starlette.responses import Response
from starlette.types import Message

from payroster.auth.apikey import authenticate
from payroster.db.engine import Budget, Database
from payroster.domain import wire
from payroster.domain.errors import BudgetSpent, InternalError
from payroster.http.errors import as_domain_error
from payroster.http.errors import headers as transported
from payroster.observability.requests import current as current_request_id
from payroster.odata import delta, temporal, tokens
from payroster.odata import parser as P
from payroster.odata.errors import (
    ODataBadQuery,
    ODataError,
    ODataGone,
    ODataMethodNotAllowed,
    ODataNotAcceptable,
    ODataNotFound,
    ODataUnsupported,
)
from payroster.odata.limits import Tally
from payroster.odata.metadata import csdl_xml
from payroster.odata.model import SETS, SETS_BY_KEY, EntitySet, Navigation
from payroster.odata.query import Entity, Options, Page, Reader, Via, decode_value, encode_value, json_ready, selected
from payroster.services import changes
from payroster.urls import public_base

log = logging.getLogger("payroster.odata")
T = TypeVar("T")
router = APIRouter(include_in_schema=False)

VERSION = {"OData-Version": "4.0"}
# Basic alone: Excel and Power BI prompt for a user name and password (the key) when they see it.
CHALLENGE = 'Basic realm="PayRoster"'
DEFAULT_PAGE = 1000
MAX_PAGE = 5000
JSON_TYPE = "application/json;odata.metadata={};odata.streaming=true;IEEE754Compatible={};charset=utf-8"
_SEGMENT = re.compile(r"^([A-Za-z_]\w*)(?:\((.*)\))?$")
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit() also takes "²", which int() refuses
# The property holding each single-valued navigation's foreign key.
FK_PROPERTIES = {
    "direct_manager_id": "directManagerId",
    "manager_id": "managerId",
    "parent_team_id": "parentTeamId",
    "team_id": "teamId",
    "user_id": "systemUserId",
}
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "MERGE", "OPTIONS"]


@router.api_route("/odata/{slug}", methods=_METHODS)
@router.api_route("/odata/{slug}/{path:path}", methods=_METHODS)
async def odata(request: Request, slug: str, path: str = "") -> Response:
    """Every OData request of a workspace."""
    return await budgeted(request, lambda budget: _guarded(lambda: _handle(request, slug, path, budget)))


async def budgeted(request: Request, work: Callable[[Budget], T]) -> T:
    """``work`` in the feed's own threads with the request's time budget, stopped when the client goes away.

    The feed's threads are not the other doors': eight slow feed queries took every thread of the server, and
    ``/healthz`` and ``/api/v1/me`` waited behind them. The handler itself waits on the event loop, where it
    also reads the ASGI channel for the client's ``http.disconnect``: a query whose client went away is
    stopped instead of running to its end (README, "OData feed").
    """
    budget = Budget(request.app.state.settings.query_budget)
    failure: Exception | None = None
    async with anyio.create_task_group() as watching:
        watching.start_soon(_watch_client, request.receive, budget)
        try:
            result = await anyio.to_thread.run_sync(work, budget, limiter=_threads(request))
        except Exception as exc:  # raised here it would leave the task group as an ExceptionGroup, which no
            failure = exc  # door's error handler knows (a participant's explorer visit answered 500, not 403)
        finally:
            watching.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result


async def _watch_client(receive: Callable[[], Awaitable[Message]], budget: Budget) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # a request body (the feed reads none: its writes answer 405)
    budget.stop()


def _threads(request: Request) -> anyio.CapacityLimiter:
    """The feed's threads: as many as the server's (``PAYROSTER_THREADS``), beside them."""
    state = request.app.state
    if getattr(state, "feed_threads", None) is None:
        state.feed_threads = anyio.CapacityLimiter(state.settings.threads)
    limiter: anyio.CapacityLimiter = state.feed_threads
    return limiter


def explore(
    request: Request, slug: str, workspace_id: uuid.UUID, path: str, query: str, page_size: int, budget: Budget
) -> Response:
    """Run a read-only feed query for a signed-in admin of the workspace (the explorer's "try it"): the
    same code as the feed, under the same budget (run it through :func:`budgeted`), without a second HTTP hop
    or an API key, at most ``page_size`` rows."""
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": request.url.scheme,
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "root_path": "",
        "path": f"/odata/{slug}/{path}",
        "query_string": query.encode(),
        "headers": [
            (b"host", request.headers.get("host", "localhost").encode()),
            (b"accept", b"application/json"),
            (b"prefer", f"odata.maxpagesize={page_size}".encode()),
        ],
        "app": request.app,
    }
    inner = Request(scope)
    return _guarded(lambda: _serve(inner, slug, workspace_id, path, budget))


def _guarded(handle: Callable[[], Response]) -> Response:
    """The door's answer for every outcome: each error in the OData error format, never a traceback.

    An unexpected exception is answered here too, with a request id that its one log line carries: left to the
    application, it was logged twice and the keep-alive connection was dropped after the 500."""
    try:
        response = handle()
    except ODataError as exc:
        response = error(exc.status, exc.code, exc.message, exc.target)
    except DataError as exc:  # a value the query computes past the database's range (a bigint sum)
        log.info("odata: the database refused a value of the query: %s", exc.orig)
        response = error(400, "InvalidQuery", "a value the query computes is out of the database's range")
    except Exception as exc:  # never a traceback: a domain error, an outage, a 500 (http.errors.as_domain_error)
        failure = as_domain_error(exc, log)
        if isinstance(failure, BudgetSpent):
            log.info("odata: %s", failure.message)
        code = "InternalError" if isinstance(failure, InternalError) else failure.code  # OData's own name for it
        response = error(failure.status, code, failure.message, failure.target)
        response.headers.update(transported(failure))
    if "odata-version" not in response.headers:  # a delta for a 4.01 client says 4.01
        response.headers.update(VERSION)
    return response


def error(status: int, code: str, message: str, target: str | None = None) -> Response:
    """The OData JSON error body: the door's one rendering of every error, its own and the domain's."""
    body: dict[str, Any] = {"code": code or "Error", "message": message}
    if target:
        body["target"] = target
    body["innererror"] = {"requestId": current_request_id()}
    return Response(simplejson.dumps({"error": body}), status_code=status, media_type="application/json")


def _handle(request: Request, slug: str, path: str, budget: Budget) -> Response:
    db: Database = request.app.state.db
    principal = authenticate(db, request, "api", CHALLENGE)
    if principal.workspace_slug != slug:
        raise ODataNotFound(f"no OData service at /odata/{slug}")
    if request.method not in ("GET", "HEAD"):
        raise ODataMethodNotAllowed("the OData feed is read-only")
    return _serve(request, slug, principal.workspace_id, path, budget)


def _serve(request: Request, slug: str, workspace_id: uuid.UUID, path: str, budget: Budget) -> Response:
    db: Database = request.app.state.db
    if request.headers.get("odata-maxversion", "4.0").strip() < "4.0":
        raise ODataUnsupported("this service speaks OData 4.0 and later")
    ctx = Context(request, slug, workspace_id)
    segments = [urllib.parse.unquote(s) for s in path.split("/")] if path.strip("/") else []
    if segments and segments[-1] == "":
        segments.pop()
    if not segments:
        return ctx.json({"@odata.context": ctx.root + "$metadata", "value": service_document()})
    head = segments[0]
    if head == "$metadata":
        fmt = ctx.format
        if fmt not in (None, "xml", "application/xml"):
            raise ODataNotAcceptable("$metadata is served as CSDL XML (application/xml)")
        return Response(csdl_xml(), media_type="application/xml")
    if head in ("$batch", "$crossjoin", "$all", "$entity"):
        raise ODataUnsupported(f"{head} is not supported")
    if (ctx.tracking and "skiptoken" not in ctx.options) or "deltatoken" in ctx.options:
        changes.number_pending(db, workspace_id)  # the position read next then covers the committed changes
    with db.read(budget) as session:
        reader = Reader(session, workspace_id, ctx.window.at)
        return Resource(ctx, reader, segments).respond()


def service_document() -> list[dict[str, str]]:
    """The entity sets, as the service document lists them."""
    return [{"name": name, "kind": "EntitySet", "url": name} for name in SETS]


class Context:
    """What the request asks for: options, format, paging preference, and the service root URL."""

    def __init__(self, request: Request, slug: str, workspace_id: uuid.UUID) -> None:
        self.request = request
        self.workspace_id = workspace_id
        self.slug = slug
        self.raw = urllib.parse.parse_qsl(request.url.query, keep_blank_values=True)
        self.options: dict[str, str] = {}
        for name, value in self.raw:
            canonical = P.option_name(name)
            if canonical is None:
                if name.startswith("$"):
                    raise ODataBadQuery(f"unknown system query option {name}")
                continue
            if canonical in self.options:
                raise ODataBadQuery(f"${canonical} is given twice")
            self.options[canonical] = value
        for unsupported in ("apply", "search", "compute", "index", "levels", "schemaversion", "id"):
            if unsupported in self.options:
                raise ODataUnsupported(f"${unsupported} is not supported")
        self.window = temporal.window(self.options)
        self.format = self.options.get("format")
        self.metadata, self.ieee754 = self.negotiate()
        self.root = f"{public_base(request)}/odata/{slug}/"
        self.prefer = parse_prefer(request.headers.get("prefer", ""))
        self.tracking = "odata.track-changes" in self.prefer or "track-changes" in self.prefer
        # A 4.01 client reads removed entities as ``@removed`` (delta.py); a 4.0 one as ``$deletedEntity``.
        self.v401 = request.headers.get("odata-maxversion", "4.0").strip() >= "4.01"

    def negotiate(self) -> tuple[str, bool]:
        """odata.metadata level and IEEE754Compatible from ``$format`` or ``Accept``."""
        params: dict[str, str] = {}
        if self.format is not None:
            media, params = split_media(self.format)
            if media not in ("json", "application/json"):
                raise ODataNotAcceptable(f"$format={self.format} is not available; use json")
        else:
            accept = self.request.headers.get("accept", "")
            if accept:
                choices = [split_media(part) for part in accept.split(",")]
                ok = [(m, p) for m, p in choices if m in ("application/json", "application/*", "*/*", "json")]
                if not ok and not any(m == "application/xml" for m, _ in choices):
                    raise ODataNotAcceptable("the feed answers application/json")
                params = ok[0][1] if ok else {}
        level = params.get("odata.metadata", params.get("metadata", "minimal")).lower()
        if level not in ("minimal", "none", "full"):
            raise ODataBadQuery(f"odata.metadata={level} is not one of minimal, none, full")
        return level, params.get("ieee754compatible", "false").lower() == "true"

    def json(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        """A JSON payload (service document, single entity, property)."""
        if self.metadata == "none":
            payload = {k: v for k, v in payload.items() if not k.startswith("@odata.context")}
        return Response(
            simplejson.dumps(payload, use_decimal=True),
            media_type=JSON_TYPE.format(self.metadata, str(self.ieee754).lower()),
            headers=headers,
        )

    def page_size(self) -> tuple[int, str | None]:
        """The page size and the Preference-Applied value when the client asked for one."""
        wanted = self.prefer.get("odata.maxpagesize") or self.prefer.get("maxpagesize")
        digits = wanted.lstrip("0") if wanted and _DIGITS.fullmatch(wanted) else ""
        if digits:
            size = MAX_PAGE if len(digits) > len(str(MAX_PAGE)) else min(int(digits), MAX_PAGE)
            return size, f"odata.maxpagesize={size}"
        return DEFAULT_PAGE, None


def split_media(text: str) -> tuple[str, dict[str, str]]:
    """``application/json;odata.metadata=none`` -> (media type, lower-cased parameters)."""
    parts = [p.strip() for p in text.split(";")]
    params = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip()
    return parts[0].lower(), params


def parse_prefer(header: str) -> dict[str, str]:
    """The Prefer header's preferences (lower-case names)."""
    prefs = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


# --- resources -------------------------------------------------------------------------------------


class Resource:
    """A resource path: an entity set, an entity, its property or navigation, and ``$count``."""

    def __init__(self, ctx: Context, reader: Reader, segments: list[str]) -> None:
        self.ctx = ctx
        self.reader = reader
        self.segments = segments

    def respond(self) -> Response:
        segs = list(self.segments)
        count_only = segs[-1] == "$count"
        if count_only:
            segs.pop()
        m = _SEGMENT.match(segs[0])
        es = SETS_BY_KEY.get(m.group(1).lower()) if m else None
        if m is None or es is None:
            raise ODataNotFound(f"no entity set {segs[0]}")
        self.ctx.window.check(es)
        key_text = m.group(2)
        if (self.ctx.tracking or "deltatoken" in self.ctx.options) and (key_text is not None or count_only):
            raise ODataUnsupported("changes are tracked on whole entity sets: " + ", ".join(delta.TRACKED))
        if key_text is None:
            if len(segs) > 1:
                raise ODataBadQuery("address an entity by its key before navigating")
            return self.collection(es, es.name, self.ctx.window.overlapping(es), count_only)
        key = parse_key(es, key_text)
        context_path = f"{es.name}({key_text})"
        missing = f"no {es.type_name} with key ({key_text})"
        # A page of the owner's pairs tests the owner itself (query.Via): the owner is looked up only when the
        # page is empty or the request fails, so a missing owner is a 404 as before, one statement fewer
        # (bench/JOURNAL.md).
        paired = es.navigations.get(segs[1]) if len(segs) == 2 and not count_only else None
        if paired is not None and paired.many and paired.via is not None:
            try:
                return self.collection(
                    SETS[paired.target], SETS[paired.target].name, navigation_base(es, paired, key, owned=True), False,
                    owner=lambda: self.exists(es, key), missing=missing,
                )  # fmt: skip
            except ODataNotFound:
                raise
            except ODataError:
                if not self.exists(es, key):
                    raise ODataNotFound(missing) from None
                raise
        if not self.exists(es, key):
            raise ODataNotFound(missing)
        if len(segs) == 1:
            if count_only:
                raise ODataBadQuery("$count applies to collections")
            return self.single(es, key)
        name = segs[1]
        if name in es.navigations:
            nav = es.navigations[name]
            rest = segs[2:]
            if rest:
                raise ODataUnsupported("paths beyond one navigation are not supported")
            target = SETS[nav.target]
            if nav.many:
                base = navigation_base(es, nav, key)
                return self.collection(target, target.name, base, count_only)
            if count_only:
                raise ODataBadQuery("$count applies to collections")
            return self.single_navigation(es, key, nav)
        if name in es.properties and not count_only:
            raw = len(segs) == 3 and segs[2] == "$value"
            if len(segs) > 3 or (len(segs) == 3 and not raw):
                raise ODataBadQuery("unexpected path after a property")
            return self.property(es, key, name, f"{context_path}/{name}", raw)
        raise ODataNotFound(f"{es.type_name} has no property or navigation {name}")

    def options(self, allow_paging: bool = True) -> Options:
        o = self.ctx.options
        options = Options()
        tally = Tally()  # the query's limits, checked before any SQL (odata/limits.py)
        if "filter" in o:
            options.filter = P.parse_expression(o["filter"])
            tally.expression(options.filter, "$filter")
        if "orderby" in o:
            options.orderby = P.parse_orderby(o["orderby"])
            tally.orderby(options.orderby, "$orderby")
        if "select" in o:
            options.select = P.parse_select(o["select"])
        if "expand" in o:
            options.expand = P.parse_expand(o["expand"])
            tally.expand(options.expand)
        for name in ("top", "skip"):
            if name in o:
                if _DIGITS.fullmatch(o[name]) is None:
                    raise ODataBadQuery(f"${name} takes a non-negative integer", target=f"${name}")
                setattr(options, name, P.integer(o[name], f"${name}"))
        if "count" in o:
            if o["count"] not in ("true", "false"):
                raise ODataBadQuery("$count takes true or false", target="$count")
            options.count = o["count"] == "true"
        return options

    def exists(self, es: EntitySet, key: dict[str, Any]) -> bool:
        base = key_condition(es, key)
        # A user or a team exists or not whatever the day ($at changes their dated properties only): today's row
        # says so without the period tables. A pair of TeamMembers exists on a day.
        return self.reader.count(es, Options(), base, today=es.name != "TeamMembers") > 0

    def collection(
        self, es: EntitySet, context_set: str, base: Any, count_only: bool,
        owner: Callable[[], bool] | None = None, missing: str = "",
    ) -> Response:  # fmt: skip
        """A page of ``es``; ``owner`` says whether the entity navigated from exists, asked when the page is
        empty (404 ``missing`` if not)."""
        options = self.options()
        if count_only:
            total = self.reader.count(es, Options(filter=options.filter), base)
            return Response(str(total), media_type="text/plain")
        size, applied = self.ctx.page_size()
        shaping = [(k, v) for k, v in self.ctx.options.items() if k not in ("skiptoken", "deltatoken", "format")]
        bound = tokens.fingerprint(str(self.ctx.workspace_id), "/".join(self.segments), shaping)
        secret = self.ctx.request.app.state.secret_key
        tracked = self.ctx.tracking or "deltatoken" in self.ctx.options
        if tracked:
            delta.check(es, options, bool(self.ctx.window.given))
            if self.ctx.tracking:
                applied = "odata.track-changes" + (f", {applied}" if applied else "")
        if "deltatoken" in self.ctx.options:
            return self.delta(es, options, bound, size, applied)
        after, sent, since = None, 0, None
        if "skiptoken" in self.ctx.options:
            state = tokens.verify(secret, self.ctx.options["skiptoken"], bound)
            after = [decode_value(v) for v in state["a"]]
            sent = int(state["n"])
            since = state.get("s")
            options.count = False  # the count rides on the first page only
        elif self.ctx.tracking:
            since = delta.start(self.reader.session, self.ctx.workspace_id)  # before the data: docs/architecture.md
        as_json = not options.expand and self.ctx.metadata != "full" and json_ready(es, selected(es, options.select))
        page = self.reader.page(es, options, size, after, sent, base, as_json=as_json)
        if owner is not None and not len(page) and not owner():
            raise ODataNotFound(missing)
        writer = Writer(self.ctx, es)
        payload_head: dict[str, Any] = {}
        if self.ctx.metadata != "none":
            payload_head["@odata.context"] = self.ctx.root + "$metadata#" + context_url(es, context_set, options)
        if "count" in self.ctx.options and self.ctx.options["count"] == "true" and page.total is not None:
            payload_head["@odata.count"] = page.total
        next_link = delta_link = None
        if page.after is not None:
            state = {"q": bound, "a": [encode_value(v) for v in page.after], "n": sent + len(page)}
            if since is not None:
                state["s"] = since  # the position of the first page rides on to the delta link
            next_link = self.next_link(tokens.sign(secret, state))
        elif since is not None:
            token = delta.dump(secret, bound, self.ctx.workspace_id, delta.Position(int(since)))
            delta_link = self.next_link(token, "$deltatoken")
        headers = {"Preference-Applied": applied} if applied else None
        media = JSON_TYPE.format(self.ctx.metadata, str(self.ctx.ieee754).lower())
        # One body, written in the handler's thread: the page is in memory already (at most MAX_PAGE
        # entities), and streaming it in chunks cost a thread-pool hop and an ASGI send per chunk, about a
        # quarter of a first page's time on the server (bench/JOURNAL.md).
        body = writer.page(payload_head, page, options, next_link, delta_link)
        return Response(body, media_type=media, headers=headers)

    def delta(self, es: EntitySet, options: Options, bound: str, size: int, applied: str | None) -> Response:
        """A page of a delta link: the entities changed since its position, the removed ones, and the link to
        the next page or the next delta link (odata/delta.py)."""
        ctx, ws = self.ctx, self.ctx.workspace_id
        secret = ctx.request.app.state.secret_key
        at = delta.load(secret, ctx.options["deltatoken"], ws, bound)
        last, pruned = changes.counter(self.reader.session, ws)
        if at.since < pruned:
            raise ODataGone(
                "the delta link is older than the kept changes: full resync needed (read the query again with "
                "Prefer: odata.track-changes)",
                target="$deltatoken",
            )
        if at.since > last:
            raise ODataBadQuery("the delta link is ahead of this workspace's changes", target="$deltatoken")
        upto = last if at.upto is None else at.upto
        names = selected(es, options.select)
        # As a read's page: the database writes each entity's JSON when it can (query.json_ready), here only when
        # the key is selected (otherwise each entity starts with its id, below).
        as_json = not options.expand and ctx.metadata != "full" and json_ready(es, names) and set(es.keys) <= set(names)
        found = delta.page(self.reader, es, options, at, upto, size, as_json)
        writer = Writer(ctx, es)
        values: list[Any] = [simplejson.RawJSON(doc) for doc in found.documents or []]
        for entity in found.entities:
            body = writer.entity(entity, options.select, options.expand, es)
            if not set(es.keys) <= set(body) and ctx.metadata != "full":  # the client needs to know which it is
                where = ctx.root + delta.location(es, delta.key(es, entity))
                body = {("@id" if ctx.v401 else "@odata.id"): where, **body}
            values.append(body)
        for key, reason in found.removed:
            values.append(self.removed(es, key, reason))
        payload: dict[str, Any] = {}
        if ctx.metadata != "none":
            payload["@odata.context"] = ctx.root + "$metadata#" + context_url(es, es.name, options) + "/$delta"
        payload["value"] = values
        if found.after is not None:
            token = delta.dump(secret, bound, ws, delta.Position(at.since, upto, found.after))
            payload["@odata.nextLink"] = self.next_link(token, "$deltatoken")
        else:
            token = delta.dump(secret, bound, ws, delta.Position(upto))
            payload["@odata.deltaLink"] = self.next_link(token, "$deltatoken")
        headers = {"OData-Version": "4.01" if ctx.v401 else "4.0"}
        if applied:
            headers["Preference-Applied"] = applied
        return Response(
            simplejson.dumps(payload, use_decimal=True),
            media_type=JSON_TYPE.format(ctx.metadata, str(ctx.ieee754).lower()),
            headers=headers,
        )

    def removed(self, es: EntitySet, key: Any, reason: str) -> dict[str, Any]:
        """A removed entity: ``@removed`` for 4.01 clients, the 4.0 ``$deletedEntity`` form otherwise."""
        where = self.ctx.root + delta.location(es, key)
        if self.ctx.v401:
            body: dict[str, Any] = {"@removed": {"reason": reason}, "@id": where}
            keys = key if isinstance(key, tuple) else (key,)
            body.update({name: str(value) for name, value in zip(es.keys, keys, strict=True)})
            return body
        context = f"{self.ctx.root}$metadata#{es.name}/$deletedEntity"
        return {"@odata.context": context, "id": where, "reason": reason}

    def next_link(self, token: str, option: str = "$skiptoken") -> str:
        kept = [(k, v) for k, v in self.ctx.raw if P.option_name(k) not in ("skiptoken", "deltatoken")]
        kept.append((option, token))
        path = "/".join(urllib.parse.quote(s, safe="()=,'$:-") for s in self.segments)
        return f"{self.ctx.root}{path}?{urllib.parse.urlencode(kept, quote_via=urllib.parse.quote, safe='$,')}"

    def single(self, es: EntitySet, key: dict[str, Any]) -> Response:
        options = self.options()
        options.top, options.skip, options.orderby, options.count = None, None, [], False
        page = self.reader.page(es, options, 1, None, 0, key_condition(es, key))
        if not page.entities:
            raise ODataNotFound(f"no {es.type_name} with that key")
        body: dict[str, Any] = {}
        if self.ctx.metadata != "none":
            body["@odata.context"] = self.ctx.root + "$metadata#" + context_url(es, es.name, options) + "/$entity"
        body.update(Writer(self.ctx, es).entity(page.entities[0], options.select, options.expand, es))
        return self.ctx.json(body)

    def single_navigation(self, es: EntitySet, key: dict[str, Any], nav: Navigation) -> Response:
        target = SETS[nav.target]
        assert nav.fk is not None
        fk_prop = FK_PROPERTIES[nav.fk]
        source = self.reader.page(es, Options(select=[(fk_prop,)]), 1, None, 0, key_condition(es, key)).entities[0]
        fk = source.values.get(fk_prop)
        if fk is None:
            return Response(status_code=204)
        return self.single(target, {"id": fk})

    def property(self, es: EntitySet, key: dict[str, Any], name: str, context_path: str, raw: bool) -> Response:
        page = self.reader.page(es, Options(select=[(name,)]), 1, None, 0, key_condition(es, key))
        entity = page.entities[0]
        value = Writer(self.ctx, es).value(es, name, entity.values.get(name))
        if value is None:
            return Response(status_code=204)
        if raw:
            return Response(str(value), media_type="text/plain")
        body: dict[str, Any] = {"@odata.context": f"{self.ctx.root}$metadata#{context_path}", "value": value}
        return self.ctx.json(body)


def parse_key(es: EntitySet, text: str) -> dict[str, Any]:
    """``(guid)``, ``(id=guid)`` or ``(teamId=..,systemUserId=..)`` into key values."""
    parts = [p.strip() for p in text.split(",")] if text else []
    values: dict[str, str] = {}
    if len(parts) == 1 and "=" not in parts[0] and len(es.keys) == 1:
        values[es.keys[0]] = parts[0]
    else:
        for part in parts:
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in es.keys:
                raise ODataBadQuery(f"invalid key ({text}) for {es.name}")
            values[name.strip()] = value.strip()
    if set(values) != set(es.keys):
        raise ODataBadQuery(f"{es.name} is keyed by {', '.join(es.keys)}")
    try:
        return {k: uuid.UUID(v.strip("'")) for k, v in values.items()}
    except ValueError:
        raise ODataBadQuery(f"invalid key ({text}): keys are GUIDs") from None


def key_condition(es: EntitySet, key: dict[str, Any]) -> Any:
    """A base condition selecting one entity by key."""
    from sqlalchemy import Uuid, and_, literal

    return lambda t, _c: and_(*(es.properties[k].sql(t) == literal(v, Uuid()) for k, v in key.items()))


def navigation_base(es: EntitySet, nav: Navigation, key: dict[str, Any], owned: bool = False) -> Any:
    """A base condition selecting the targets of a collection navigation from one source entity (``owned``: the
    pairs' page tests that the source exists, query.Via)."""
    from sqlalchemy import Uuid, literal

    owner = literal(key["id"], Uuid())
    if nav.via is not None:
        return Via(nav, owner, es.table if owned else None)
    return lambda t, compiler: _and(compiler.correlate(nav, owner, t))


def _and(conds: list[Any]) -> Any:
    from sqlalchemy import and_, true

    return and_(true(), *conds)


def context_url(es: EntitySet, context_set: str, options: Options) -> str:
    """The fragment after ``$metadata#``: the set, with the projection when ``$select``/``$expand`` shape it."""
    items = _projection(es, options.select, options.expand)
    return f"{context_set}({','.join(items)})" if items else context_set


def _projection(es: EntitySet, select_: list[tuple[str, ...]] | None, expand: list[P.ExpandItem]) -> list[str]:
    items: list[str] = []
    if select_ is not None:
        items.extend("/".join(item) for item in select_)
    nested = []
    for item in expand:
        nav = es.navigations.get(item.path[0])
        if nav is None:
            continue
        inner = _projection(SETS[nav.target], item.select, item.expand)
        if inner:
            nested.append(f"{nav.name}({','.join(inner)})")
        elif select_ is not None:
            nested.append(nav.name)
    if nested and select_ is None:
        items.append("*")
    return items + nested


# --- serialization ---------------------------------------------------------------------------------


class Writer:
    """Turns entities into OData JSON."""

    def __init__(self, ctx: Context, es: EntitySet) -> None:
        self.ctx = ctx
        self.es = es

    def page(
        self, head: dict[str, Any], page: Page, options: Options, next_link: str | None, delta_link: str | None = None
    ) -> bytes:
        """A collection page: the control information, the entities (documents written by the database
        joined as they are, else one encoder call for all) and the next link."""
        prefix = simplejson.dumps(head)[:-1]
        if page.documents is not None:
            value = ",".join(page.documents)
        else:
            bodies = [self.entity(e, options.select, options.expand, self.es) for e in page.entities]
            value = simplejson.dumps(bodies, use_decimal=True)[1:-1]
        tail = "]"
        if next_link is not None:
            tail += ',"@odata.nextLink":' + simplejson.dumps(next_link)
        if delta_link is not None:
            tail += ',"@odata.deltaLink":' + simplejson.dumps(delta_link)
        body: str = prefix + (',"value":[' if head else '"value":[') + value + tail + "}"
        return body.encode()

    def entity(
        self,
        entity: Entity,
        select_: list[tuple[str, ...]] | None,
        expand: list[P.ExpandItem],
        es: EntitySet,
    ) -> dict[str, Any]:
        full = self.ctx.metadata == "full"
        body: dict[str, Any] = {}
        location = ""
        if full:
            key_text = ",".join(f"{k}={v}" for k, v in entity.keys.items()) if len(es.keys) > 1 else None
            location = f"{es.name}({key_text or entity.keys[es.keys[0]]})"
            body["@odata.type"] = f"#{es.qualified_type}"
            body["@odata.id"] = self.ctx.root + location
            body["@odata.editLink"] = location
        for name in selected(es, select_):
            prop = es.properties[name]
            if full and prop.edm in ("Edm.Guid", "Edm.DateTimeOffset", "Edm.Decimal"):
                kind = prop.edm[4:]
                body[f"{name}@odata.type"] = f"#Collection({kind})" if prop.is_collection else f"#{kind}"
            body[name] = self.value(es, name, entity.values.get(name))
        for item in expand:
            nav = es.navigations[item.path[0]]
            target = SETS[nav.target]
            value = entity.expanded.get(nav.name)
            if nav.name in entity.counts:
                body[f"{nav.name}@odata.count"] = entity.counts[nav.name]
            if nav.many:
                body[nav.name] = [self.entity(e, item.select, item.expand, target) for e in value or []]
            else:
                body[nav.name] = self.entity(value, item.select, item.expand, target) if value else None
        if full:
            expanded = {i.path[0] for i in expand}
            for nav_name in es.navigations:
                if nav_name not in expanded:
                    body[f"{nav_name}@odata.navigationLink"] = f"{location}/{nav_name}"
        return body

    def value(self, es: EntitySet, name: str, value: Any) -> Any:
        """A property value on the wire."""
        if value is None:
            return None
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, dt.datetime):
            return wire.time(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        if es.name == "CustomVariables" and name == "numberValue":
            return self.number(value)
        if isinstance(value, Decimal):
            return str(value) if self.ctx.ieee754 else value
        return value

    def number(self, value_json: str) -> Any:
        """numberValue: the exact digits of a numeric JSON value, null for other values."""
        parsed = simplejson.loads(value_json, use_decimal=True)
        if isinstance(parsed, bool) or not isinstance(parsed, int | Decimal):
            return None
        text = value_json.strip()
        return text if self.ctx.ieee754 else simplejson.RawJSON(text)
