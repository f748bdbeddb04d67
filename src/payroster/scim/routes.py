"""The SCIM 2.0 door: ``/scim/v2/{workspaceSlug}/...`` (README.md, "SCIM provisioning").

Every request: credentials (a provisioning token, or a full admin's API key, as Bearer or any form the
JSON API takes), the workspace of the URL (another workspace's token gets 404, like an unknown id), then
the resource. Bodies are validated and serialised by scim2-models; changes go through ``store`` and the
services in one transaction; every error is a SCIM Error body with its ``scimType``.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ForbiddenException,
    InvalidSyntaxException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    NotImplementedException,
    PatchOp,
    PreconditionFailedException,
    ResponseParameters,
    SCIMException,
    SearchRequest,
)
from scim2_models.path.expressions import ValuePath
from starlette.concurrency import run_in_threadpool

from payroster.auth.apikey import authenticate, presented_key
from payroster.db.engine import Database
from payroster.db.models import Team, User
from payroster.domain import normalize
from payroster.http.body import Accepts, check_media, content_type, read_bytes
from payroster.http.errors import as_domain_error
from payroster.http.errors import headers as transported
from payroster.observability.requests import current as current_request_id
from payroster.scim import body, store
from payroster.scim.filters import Compiler, check_terms
from payroster.scim.models import (
    CONFIG,
    MAX_RESULTS,
    PAYROSTER_SCHEMA,
    PROVIDER,
    PayRosterUser,
    UserModel,
)
from payroster.scim.models import (
    Group as ScimGroup,
)
from payroster.services import reads
from payroster.services.apikeys import Principal
from payroster.services.scoping import in_workspace
from payroster.urls import public_base

log = logging.getLogger("payroster.scim")
router = APIRouter(include_in_schema=False)
MEDIA = "application/scim+json"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_MAX_BODY = 4 * 1024 * 1024  # a group PATCH carrying thousands of members fits
# SCIM's own type and plain JSON; a body sent without a type, or as text/plain, is read as JSON too.
ACCEPTS = Accepts(("application/scim+json", "application/json"), suffix=False, send="application/scim+json")
# Identity providers present their provisioning token as a Bearer token.
CHALLENGE = 'Bearer realm="PayRoster"'
MAX_START_INDEX = 2**31 - 1


@router.api_route("/scim/v2/{slug}", methods=_METHODS)
@router.api_route("/scim/v2/{slug}/{path:path}", methods=_METHODS)
async def scim(request: Request, slug: str, path: str = "") -> Response:
    """Every SCIM request of a workspace."""
    try:
        # Refused before reading when the declared size is over the limit, and cut off while reading.
        raw = await read_bytes(request, _MAX_BODY)
        return await run_in_threadpool(_handle, request, slug, [p for p in path.split("/") if p], raw)
    except SCIMException as exc:
        return error(exc.status, exc.scim_type or None, exc.detail)
    except Exception as exc:  # never a traceback: a domain error, an outage, a 500 (http.errors.as_domain_error)
        failure = as_domain_error(exc, log)
        # SCIM has no 422: a refused value is a 400 with scimType invalidValue (set on the error, domain/errors.py).
        response = error(400 if failure.status == 422 else failure.status, failure.scim_type, failure.message)
        response.headers.update(transported(failure))
        return response


@functools.cache
def _list_response(model: Any) -> Any:
    """``ListResponse[model]``, built once: parametrising a pydantic generic creates a class each time."""
    return ListResponse[model]


def error(status: int, scim_type: str | None, detail: str) -> Response:
    """A SCIM Error body, the door's one rendering of every error, its own and the domain's; its detail names the
    request id (SCIM's Error has no field of its own for it)."""
    request_id = current_request_id()
    if request_id is None or request_id not in detail:  # a 500's message names it already
        detail = f"{detail} (request id {request_id})"
    payload = Error(status=status, scim_type=scim_type, detail=detail).model_dump()
    return Response(json.dumps(payload), status_code=status, media_type=MEDIA)


def respond(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload, default=str), status_code=status, media_type=MEDIA, headers=headers)


def _handle(request: Request, slug: str, segments: list[str], raw: bytes) -> Response:
    db: Database = request.app.state.db
    key = presented_key(request) or ""
    principal = authenticate(db, request, "scim" if key.startswith("prs_") else "api", CHALLENGE)
    if principal.workspace_slug != slug:
        raise NotFoundException(detail=f"no SCIM service at /scim/v2/{slug}")
    door = Door(request, db, principal, slug, raw)
    return door.route(segments)


class Door:
    """One request against one workspace."""

    def __init__(self, request: Request, db: Database, principal: Principal, slug: str, body: bytes) -> None:
        self.request = request
        self.db = db
        self.principal = principal
        self.ws = principal.workspace_id
        self.actor = principal.actor("scim")
        self.urls = store.Urls(f"{public_base(request)}/scim/v2/{slug}")
        self.body = body
        self.method = request.method
        self.params = {k.lower(): v for k, v in request.query_params.items()}
        self.user_defaults: dict[str, Any] = {}

    # --- dispatch --------------------------------------------------------------------------------

    def route(self, segments: list[str]) -> Response:
        if not segments:
            raise NotFoundException(detail="see /ServiceProviderConfig, /ResourceTypes, /Schemas, /Users, /Groups")
        head, rest = segments[0].lower(), segments[1:]
        if head in ("serviceproviderconfig", "resourcetypes", "schemas"):
            return self.discovery(head, rest)
        if head == ".search" and not rest:
            self.allow("POST")
            return self.search_all()
        if head in ("bulk", "me"):
            raise NotImplementedException(detail=f"/{segments[0]} is not supported by PayRoster")
        if head in ("users", "groups"):
            kind = "User" if head == "users" else "Group"
            if not rest:
                self.allow("GET", "POST")
                return self.listing_of(kind, self.params) if self.method == "GET" else self.create(kind)
            if rest == [".search"]:
                self.allow("POST")
                return self.search(kind)
            if len(rest) == 1:
                self.allow("GET", "PUT", "PATCH", "DELETE")
                return self.one(kind, rest[0])
        raise NotFoundException(detail=f"no SCIM endpoint /{'/'.join(segments)}")

    def allow(self, *methods: str) -> None:
        if self.method == "HEAD" and "GET" in methods:
            return
        if self.method not in methods:
            raise MethodNotAllowed(f"{self.method} is not allowed here; use {', '.join(methods)}")

    def json_body(self) -> Any:
        media, _ = content_type(self.request.headers.get("content-type"))
        check_media(media, ACCEPTS)
        return body.decode(self.body)

    def validate(self, model: Any, payload: Any, ctx: Context) -> Any:
        if not isinstance(payload, dict):
            raise InvalidSyntaxException(detail="the body must be a JSON object")
        if model is UserModel and ctx != Context.RESOURCE_PATCH_REQUEST:
            payload = with_email_from_user_name(payload)
            payload = with_defaults(payload, self.user_defaults)
        try:
            with PROVIDER:
                return model.model_validate(payload, scim_ctx=ctx)
        except ValidationError as exc:
            first = Error.from_validation_errors(exc)[0]
            raise SCIMException.from_error(first) from None

    # --- discovery -------------------------------------------------------------------------------

    def discovery(self, head: str, rest: list[str]) -> Response:
        self.allow("GET")
        if "filter" in self.params:
            raise ForbiddenException(detail="discovery endpoints do not take filters")
        if head == "serviceproviderconfig":
            if rest:
                raise NotFoundException(detail="ServiceProviderConfig has no sub-resources")
            payload = CONFIG.model_copy(update={"meta": None}).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            payload["meta"] = {
                "resourceType": "ServiceProviderConfig",
                "location": f"{self.urls.base}/ServiceProviderConfig",
            }
            return respond(payload)
        items = list(PROVIDER.resource_types if head == "resourcetypes" else PROVIDER.schemas)
        dumped = []
        for item in items:
            data = item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            kind = "ResourceType" if head == "resourcetypes" else "Schema"
            data["meta"] = {
                "resourceType": kind,
                "location": f"{self.urls.base}/{'ResourceTypes' if kind == 'ResourceType' else 'Schemas'}/{data['id']}",
            }
            dumped.append(data)
        if rest:
            wanted = "/".join(rest).lower()
            for data in dumped:
                if str(data["id"]).lower() == wanted:
                    return respond(data)
            raise NotFoundException(detail=f"no {head} {'/'.join(rest)}")
        listing = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(dumped),
            "startIndex": 1,
            "itemsPerPage": len(dumped),
            "Resources": dumped,
        }
        return respond(listing)

    # --- queries ---------------------------------------------------------------------------------

    def query_options(self, params: dict[str, Any]) -> tuple[int, int, str | None, str | None, bool]:
        def integer(name: str, default: int) -> int:
            raw = params.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except (TypeError, ValueError):
                raise InvalidValueException(detail=f"{name} must be an integer") from None

        start = max(1, integer("startindex", 1))
        if start > MAX_START_INDEX:  # past any workspace, and past what OFFSET takes on SQLite (a 64-bit integer)
            raise InvalidValueException(detail=f"startIndex must be at most {MAX_START_INDEX}")
        count = min(MAX_RESULTS, max(0, integer("count", 100)))
        order = str(params.get("sortorder") or "ascending").lower()
        if order not in ("ascending", "descending"):
            raise InvalidValueException(detail="sortOrder is ascending or descending")
        return start, count, params.get("filter"), params.get("sortby"), order == "descending"

    def response_parameters(self, params: dict[str, Any]) -> ResponseParameters[Any] | None:
        def names(value: Any) -> list[str] | None:
            if value is None:
                return None
            items = value if isinstance(value, list) else str(value).split(",")
            return [i.strip() for i in items if str(i).strip()] or None

        attributes = names(params.get("attributes"))
        excluded = names(params.get("excludedattributes"))
        body.check_attribute_names(attributes, "attributes")
        body.check_attribute_names(excluded, "excludedAttributes")
        if not attributes and not excluded:
            return None
        try:
            return ResponseParameters(attributes=attributes, excluded_attributes=excluded)
        except ValidationError as exc:
            raise InvalidValueException(detail=f"bad attributes: {exc.errors()[0]['msg']}") from None

    def wants_members(self, rp: ResponseParameters[Any] | None) -> bool:
        if rp is None:
            return True
        if rp.excluded_attributes and any(str(a).lower().endswith("members") for a in rp.excluded_attributes):
            return False
        if rp.attributes:
            return any("members" in str(a).lower() for a in rp.attributes)
        return True

    def query(
        self, kind: str, params: dict[str, Any], rp: ResponseParameters[Any] | None, *, total: bool = True
    ) -> tuple[int, list[Any], int]:
        """``(totalResults, resources, startIndex)`` in one read session; the count only when ``total``."""
        start, count, filter_text, sort_by, descending = self.query_options(params)
        model = User if kind == "User" else Team
        with self.db.read() as s:
            compiler = Compiler(kind, s.get_bind().dialect.name, self.ws)
            conds = [in_workspace(model, self.ws)]
            if kind == "User":
                conds.append(User.scim_hidden.is_(False))
            if filter_text:
                node = compiler.parse(str(filter_text))
                if not sort_by and (found_by := compiler.unique_key(node)) is not None:
                    matches = store.users_by_key(s, self.ws, *found_by)
                    page = matches[start - 1 : start - 1 + count]
                    return len(matches), store.user_resources(s, page, self.urls), start
                conds.append(compiler.node(node, None))
            order: list[Any] = []
            if sort_by:
                col = compiler.sort_column(str(sort_by))
                order += [col.is_(None), col.desc() if descending else col]
            order.append(model.id)
            rows: list[Any] = []
            if count:
                rows = reads.rows_where(s, model, conds, order, start - 1, count)
            found = 0
            if total:
                # A page that is not full, and holds rows or starts at the first, ends the set: its size gives
                # the total without counting (a userName lookup, most of an identity provider's traffic).
                if len(rows) < count and (rows or start == 1):
                    found = start - 1 + len(rows)
                else:
                    found = reads.count_where(s, model, conds)
            if not count:
                return found, [], start
            if kind == "User":
                return found, store.user_resources(s, rows, self.urls), start
            return found, store.group_resources(s, rows, self.urls, with_members=self.wants_members(rp)), start

    def listing_of(self, kind: str, params: dict[str, Any]) -> Response:
        rp = self.response_parameters(params)
        total, resources, start = self.query(kind, params, rp)
        return self.listing(kind, total, start, resources, rp)

    def listing(
        self, kind: str, total: int, start: int, resources: list[Any], rp: ResponseParameters[Any] | None
    ) -> Response:
        model = UserModel if kind == "User" else ScimGroup
        with PROVIDER:
            payload = _list_response(model)(
                total_results=total, start_index=start, items_per_page=len(resources), resources=resources
            ).model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=rp)
        payload.setdefault("Resources", [])
        return respond(payload)

    def search_payload(self) -> dict[str, Any]:
        payload = self.json_body()
        body.check_search(payload)
        search = self.validate(SearchRequest, payload, Context.SEARCH_REQUEST)
        params: dict[str, Any] = {
            "filter": str(search.filter) if search.filter else None,
            "sortby": str(search.sort_by) if search.sort_by else None,
            "sortorder": search.sort_order.value if search.sort_order else None,
            "startindex": search.start_index,
            "count": search.count,
            "attributes": [str(a) for a in search.attributes] if search.attributes else None,
            "excludedattributes": [str(a) for a in search.excluded_attributes] if search.excluded_attributes else None,
        }
        return params

    def search(self, kind: str) -> Response:
        return self.listing_of(kind, self.search_payload())

    def search_all(self) -> Response:
        """``/.search`` at the root: Users, then Groups, paged as one list."""
        params = self.search_payload()
        rp = self.response_parameters(params)
        start, count, *_ = self.query_options(params)
        user_total, _, _ = self.query("User", {**params, "count": 0}, rp)
        group_total, _, _ = self.query("Group", {**params, "count": 0}, rp)
        found: list[Any] = []
        if count and start <= user_total:
            found += self.query("User", params, rp, total=False)[1]
        remaining = count - len(found)
        if remaining > 0:
            paged = {**params, "startindex": max(1, start - user_total), "count": remaining}
            found += self.query("Group", paged, rp, total=False)[1]
        with PROVIDER:
            dumped = [r.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=rp) for r in found]
        return respond(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": user_total + group_total,
                "startIndex": start,
                "itemsPerPage": len(dumped),
                "Resources": dumped,
            }
        )

    # --- writes ----------------------------------------------------------------------------------

    def dump_one(self, resource: Any, ctx: Context, status: int = 200, extra: dict[str, str] | None = None) -> Response:
        rp = self.response_parameters(self.params)
        with PROVIDER:
            payload = resource.model_dump(scim_ctx=ctx, response_parameters=rp)
        headers = {"ETag": resource.meta.version} if resource.meta and resource.meta.version else {}
        return respond(payload, status, {**headers, **(extra or {})})

    def create(self, kind: str) -> Response:
        payload = self.json_body()
        if kind == "User":
            # The workspace's default role came with the key (one statement fewer per create).
            self.user_defaults = {"active": True, "role": self.principal.default_scim_role}
            role_given = names_role(payload)
            resource = self.validate(UserModel, payload, Context.RESOURCE_CREATION_REQUEST)
            with self.db.write(self.ws) as s:
                user = store.create_user(s, self.actor, resource, role_given=role_given)
                s.flush()
                made = store.user_resources(s, [user], self.urls)[0]
        else:
            resource = self.validate(ScimGroup, payload, Context.RESOURCE_CREATION_REQUEST)
            with self.db.write(self.ws) as s:
                team = store.create_group(s, self.actor, resource)
                s.flush()
                made = store.group_resources(s, [team], self.urls)[0]
        return self.dump_one(made, Context.RESOURCE_CREATION_RESPONSE, 201, {"Location": made.meta.location})

    def one(self, kind: str, ident: str) -> Response:
        if self.method in ("GET", "HEAD"):
            with self.db.read() as s:
                if kind == "User":
                    found = store.user_resources(s, [store.visible_user(s, self.ws, ident)], self.urls)[0]
                else:
                    team = store.visible_team(s, self.ws, ident)
                    rp = self.response_parameters(self.params)
                    found = store.group_resources(s, [team], self.urls, with_members=self.wants_members(rp))[0]
            if_none = self.request.headers.get("if-none-match")
            if if_none and found.meta and if_none.strip() == found.meta.version:
                return Response(status_code=304, headers={"ETag": found.meta.version})
            return self.dump_one(found, Context.RESOURCE_QUERY_RESPONSE)
        payload = self.json_body() if self.method in ("PUT", "PATCH") else None
        with self.db.write(self.ws) as s:
            if kind == "User":
                user = store.visible_user(s, self.ws, ident, lock=True)
                current = store.user_resources(s, [user], self.urls)[0]
                self.check_version(current)
                if self.method == "DELETE":
                    store.delete_user(s, self.actor, user)
                    return Response(status_code=204)
                if self.method == "PUT":
                    ext = current[PayRosterUser]
                    self.user_defaults = {
                        "active": user.active,
                        "role": user.role,
                        "extension": ext.model_dump(exclude_none=True, by_alias=True) if ext else None,
                    }
                    wanted = self.validate(UserModel, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
                    store.replace_user(s, self.actor, user, wanted)
                else:
                    self.apply_patch(UserModel, payload, current)
                    store.replace_user(s, self.actor, user, current, patched=True)
                s.flush()
                result = store.user_resources(s, [user], self.urls)[0]
            else:
                team = store.visible_team(s, self.ws, ident, lock=True)
                current = store.group_resources(s, [team], self.urls)[0]
                self.check_version(current)
                if self.method == "DELETE":
                    store.delete_group(s, self.actor, team)
                    return Response(status_code=204)
                if self.method == "PUT":
                    wanted = self.validate(ScimGroup, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
                    store.replace_group(s, self.actor, team, wanted)
                else:
                    self.apply_patch(ScimGroup, payload, current)
                    store.replace_group(s, self.actor, team, current)
                s.flush()
                rp = self.response_parameters(self.params)
                result = store.group_resources(s, [team], self.urls, with_members=self.wants_members(rp))[0]
        ctx = Context.RESOURCE_REPLACEMENT_RESPONSE if self.method == "PUT" else Context.RESOURCE_PATCH_RESPONSE
        return self.dump_one(result, ctx)

    def check_version(self, current: Any) -> None:
        wanted = self.request.headers.get("if-match")
        if wanted and wanted.strip() != "*" and current.meta and wanted.strip() != current.meta.version:
            raise PreconditionFailedException(detail="the resource changed since that version (If-Match)")

    def apply_patch(self, model: Any, payload: Any, resource: Any) -> None:
        body.check_patch(payload)
        op = self.validate(PatchOp[model], payload, Context.RESOURCE_PATCH_REQUEST)
        for operation in op.operations or []:
            if operation.path is not None and isinstance(selected := operation.path.ast, ValuePath):
                check_terms(selected.val_filter, "path")
        with PROVIDER:
            op.patch(resource)


def names_role(payload: Any) -> bool:
    """Whether a request body sets our extension's role itself."""
    if not isinstance(payload, dict):
        return False
    ext = next((v for k, v in payload.items() if k.lower() == PAYROSTER_SCHEMA.lower()), None)
    return isinstance(ext, dict) and any(k.lower() == "role" and v is not None for k, v in ext.items())


def with_defaults(payload: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``active`` and our extension's ``role`` are always present: a request leaving them out gets the
    defaults (on creation: active, the workspace's default SCIM role; on PUT: what is stored, and the
    whole extension as stored when the request does not carry it)."""
    if not defaults:
        return payload
    keys = {k.lower(): k for k in payload}
    out = dict(payload)
    if "active" not in keys or payload[keys["active"]] is None:
        out["active"] = defaults["active"]
    ext_key = keys.get(PAYROSTER_SCHEMA.lower(), PAYROSTER_SCHEMA)
    given = payload.get(ext_key)
    ext = dict(given) if isinstance(given, dict) else dict(defaults.get("extension") or {})
    ext.pop("schemas", None)
    if not any(k.lower() == "role" for k in ext):
        ext["role"] = defaults["role"]
    out[ext_key] = ext
    schemas = out.get(keys.get("schemas", "schemas"))
    if isinstance(schemas, list) and PAYROSTER_SCHEMA not in schemas:
        out[keys.get("schemas", "schemas")] = [*schemas, PAYROSTER_SCHEMA]
    return out


def with_email_from_user_name(payload: dict[str, Any]) -> dict[str, Any]:
    """``emails`` is published as required; a userName that is an address stands in for it (README.md, "SCIM
    provisioning")."""
    keys = {k.lower(): k for k in payload}
    if "emails" in keys and payload[keys["emails"]]:
        return payload
    user_name = payload.get(keys.get("username", ""))
    if isinstance(user_name, str) and normalize.email_problem(user_name.strip()) is None:
        return {**payload, "emails": [{"value": user_name.strip(), "type": "work", "primary": True}]}
    return payload


class MethodNotAllowed(SCIMException):
    """405 with a SCIM Error body."""

    status = 405

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)
