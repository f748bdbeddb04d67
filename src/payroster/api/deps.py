"""FastAPI dependencies shared by the JSON API routes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request

from payroster.auth.apikey import authenticate_async
from payroster.db.engine import Database
from payroster.domain import wire
from payroster.services.apikeys import Principal
from payroster.services.context import Actor


# ``async def`` for dependencies that do no I/O: FastAPI runs a plain ``def`` dependency in the thread
# pool, one hop per dependency per request.
async def database(request: Request) -> Database:
    """The app's database."""
    db: Database = request.app.state.db
    return db


# The schemes the JSON API takes (X-ApiKey is not an HTTP authentication scheme).
CHALLENGE = 'Basic realm="PayRoster", Bearer'


async def principal(request: Request) -> Principal:
    """The verified API key owner; runs before the body is read."""
    found = await authenticate_async(request.app.state.db, request, "api", CHALLENGE)
    request.state.principal = found
    return found


async def admin_principal(request: Request) -> Principal:
    """The verified key owner, a FullAdmin or a LimitedAdmin: for the read-only exports (README.md, "Exports")."""
    found = await authenticate_async(request.app.state.db, request, "api", CHALLENGE, ("FullAdmin", "LimitedAdmin"))
    request.state.principal = found
    return found


async def actor(request: Request) -> Actor:
    """The audit actor of the request (channel ``api``)."""
    p: Principal = request.state.principal
    return p.actor("api")


def iso(value: dt.datetime) -> str:
    """A stored naive-UTC datetime on the wire."""
    return wire.time(value)


def schema_ref(name: str, array: bool = False) -> dict[str, Any]:
    """An OpenAPI request body pointing at one of our component schemas."""
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    if array:
        schema = {"type": "array", "items": schema}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
