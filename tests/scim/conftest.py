"""A workspace's SCIM door on the live test server, with a provisioning token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from payroster.db.engine import Database
from payroster.services import apikeys
from payroster.services.context import Actor
from tests.conftest import WS

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
EXT = "urn:ietf:params:scim:schemas:extension:payroster:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Scim:
    """A SCIM client for one workspace."""

    http: httpx.Client
    ws: WS
    token: str
    root: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(self.url(path), params=params or None, headers=self.headers)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(self.url(path), json=body, headers=self.headers)

    def put(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return self.http.put(self.url(path), json=body, headers={**self.headers, **headers})

    def patch(self, path: str, *operations: dict[str, Any], **headers: str) -> httpx.Response:
        body = {"schemas": [PATCH], "Operations": list(operations)}
        return self.http.patch(self.url(path), json=body, headers={**self.headers, **headers})

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(self.url(path), headers=self.headers)

    def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        r = self.post("Users", {"schemas": [USER], "userName": user_name, **extra})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def create_group(self, name: str, members: list[str] | None = None) -> dict[str, Any]:
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members or []]}
        r = self.post("Groups", body)
        assert r.status_code == 201, r.text
        made: dict[str, Any] = r.json()
        return made


def scim_for(client: httpx.Client, db: Database, ws: WS) -> Scim:
    """A provisioning token for ``ws`` and a client on its SCIM root."""
    with db.write() as s:
        token, _ = apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), None, "IdP", "scim")
    return Scim(client, ws, token, f"/scim/v2/{ws.slug}")


@pytest.fixture
def scim(client: httpx.Client, db: Database, ws: WS) -> Scim:
    """Workspace A's SCIM door."""
    return scim_for(client, db, ws)


def is_error(r: httpx.Response, status: int, scim_type: str | None = None) -> bool:
    """A SCIM Error body with this status (as a string) and scimType."""
    body = r.json()
    ok = r.status_code == status and body.get("schemas") == [ERROR] and body.get("status") == str(status)
    ok = ok and bool(body.get("detail"))
    return ok and (scim_type is None or body.get("scimType") == scim_type)


def new_id() -> str:
    return str(uuid.uuid4())
