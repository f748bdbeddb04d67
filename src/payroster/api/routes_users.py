"""JSON API: users (upsert by e-mail, read, patch, tag/alias removal, bulk)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from payroster.api import schemas
from payroster.api.body import bulk_body, json_body, query_text
from payroster.api.deps import actor, database, principal, schema_ref
from payroster.api.errors import ERRORS, check
from payroster.api.render import user_body
from payroster.api.routes_timelines import AS_OF, as_of, dated_manager
from payroster.db.engine import Database
from payroster.domain.errors import Detail, Invalid, NotFound, TooLarge
from payroster.ids import parse_id
from payroster.services import bulk, users
from payroster.services.apikeys import Principal
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_user
from payroster.urls import public_base

router = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS)
compat = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS, include_in_schema=False)


@router.post(
    "/api/v1/users",
    operation_id="upsertUser",
    tags=["users"],
    status_code=201,
    response_model=schemas.UserOut,
    responses={200: {"model": schemas.UserOut, "description": "updated"}},
    openapi_extra=schema_ref("UserUpsert"),
)
@compat.post("/app/Api/SetUser")
def upsert_user(
    body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Create (201) or update (200) a user by e-mail; tags and aliases are added."""
    inp = check(parse_user(body, field_pointer()), "invalid user")
    with db.write(who.workspace_id) as s:
        view, created = users.upsert(s, who, inp)
        out = user_body(view)
    return JSONResponse(out, status_code=201 if created else 200)


@router.get("/api/v1/users", operation_id="findUser", tags=["users"], response_model=schemas.UserOut)
def find_user(
    emailAddress: str = Query(..., description="matched like the upsert"),  # noqa: N803
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> JSONResponse:
    """The user with that e-mail (lists are the OData feed's job)."""
    with db.read() as s:
        user = users.find_by_email(s, who.workspace_id, emailAddress)
        if user is None:
            raise NotFound("user not found", target="emailAddress")
        return JSONResponse(user_body(users.view(s, user)))


@router.get("/api/v1/users/{user_id}", operation_id="getUser", tags=["users"], response_model=schemas.UserOut)
def get_user(
    user_id: str,
    asOf: str | None = AS_OF,
    db: Database = Depends(database),
    who: Actor = Depends(actor),  # noqa: N803
) -> JSONResponse:
    """One user by id; with ``asOf``, its direct manager on that date."""
    day = as_of(asOf)
    with db.read() as s:
        user = users.get(s, who.workspace_id, parse_id(user_id))
        body = user_body(users.view(s, user))
        if day is not None:
            body["directManagerId"] = dated_manager(s, who.workspace_id, user.id, day)
        return JSONResponse(body)


@router.patch(
    "/api/v1/users/{user_id}",
    operation_id="patchUser",
    tags=["users"],
    response_model=schemas.UserOut,
    openapi_extra=schema_ref("UserPatch"),
)
def patch_user(
    user_id: str, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Change any field, e-mail included; tags and aliases replace."""
    uid = parse_id(user_id)
    if uid is None:
        raise NotFound("user not found", target="user")
    inp = check(parse_user(body, field_pointer(), require_email=False), "invalid user")
    with db.write(who.workspace_id) as s:
        return JSONResponse(user_body(users.patch(s, who, uid, inp)))


def _remove(kind: str, user_id: str, value: str, db: Database, who: Actor) -> JSONResponse:
    with db.write(who.workspace_id) as s:
        return JSONResponse(user_body(users.remove_item(s, who, parse_id(user_id), kind, value)))


@router.delete(
    "/api/v1/users/{user_id}/tags", operation_id="removeUserTag", tags=["users"], response_model=schemas.UserOut
)
def remove_tag(
    user_id: str, value: str = Query(...), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Remove one tag (case-insensitive); a missing tag is a no-op."""
    return _remove("tags", user_id, value, db, who)


@router.delete(
    "/api/v1/users/{user_id}/aliases", operation_id="removeUserAlias", tags=["users"], response_model=schemas.UserOut
)
def remove_alias(
    user_id: str, value: str = Query(...), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Remove one alias (case-insensitive); a missing alias is a no-op."""
    return _remove("aliases", user_id, value, db, who)


@router.post(
    "/api/v1/users:bulk",
    operation_id="bulkUpsertUsers",
    tags=["users"],
    response_model=schemas.BulkOut,
    openapi_extra=schema_ref("UserUpsert", array=True),
)
def bulk_upsert(
    request: Request, body: Any = Depends(bulk_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> Response:
    """Apply up to 100,000 upserts in order, in one transaction; any bad row writes nothing."""
    rows = _rows(body, request.app.state.settings.max_bulk_rows)
    with bulk.collector_paused():
        inputs = bulk.parse_rows(rows)
        result = bulk.run(db, who, inputs)
        answer = {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "users": [{"id": i, "emailAddress": e, "created": c} for i, e, c in result.rows],
        }
        # orjson writes the 100,000 entries (UUIDs included) several times faster than the json module.
        return Response(orjson.dumps(answer), media_type="application/json")


def _rows(body: Any, limit: int) -> list[Any]:
    if isinstance(body, dict) and len(body) == 1 and str(next(iter(body))).casefold() == "users":
        body = next(iter(body.values()))
    if not isinstance(body, list):
        raise Invalid(
            'expected an array of users or {"users": [...]}', details=[Detail("invalidType", "expected an array", None)]
        )
    if len(body) > limit:
        raise TooLarge(f"at most {limit} rows per request")
    return body


@router.get("/api/v1/me", operation_id="getMe", tags=["me"], response_model=schemas.Me)
async def me(request: Request, who: Principal = Depends(principal)) -> JSONResponse:
    """The key's owner, workspace and the feed URLs."""
    base = public_base(request)  # PAYROSTER_BASE_URL, else a trusted proxy's forwarded host, else the request's
    return JSONResponse(
        {
            "userId": str(who.user_id),
            "emailAddress": who.email,
            "role": who.role,
            "workspaceId": str(who.workspace_id),
            "workspaceSlug": who.workspace_slug,
            "odataServiceRoot": f"{base}/odata/{who.workspace_slug}/",
            "scimBaseUrl": f"{base}/scim/v2/{who.workspace_slug}/",
            "keyId": who.key_id,
        }
    )
