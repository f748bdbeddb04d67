"""SCIM's errors: the scimType each domain error carries from where it is raised (a taken name is "uniqueness",
a management cycle or the last full admin has none), and the refusals of the body reader every door shares, each
a SCIM Error body (docs/architecture.md, "Errors"). Both databases."""

from __future__ import annotations

import httpx

from tests.conftest import WS
from tests.scim.conftest import ENTERPRISE, EXT, USER, Scim, is_error


def _no_scim_type(r: httpx.Response) -> bool:
    return "scimType" not in r.json()


def test_a_management_cycle_is_409_without_scim_type(scim: Scim) -> None:
    boss = scim.create_user("boss@acme.example")
    seller = scim.create_user("seller@acme.example", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    op = {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": seller["id"]}}
    r = scim.patch(f"Users/{boss['id']}", op)
    assert is_error(r, 409) and _no_scim_type(r), r.text
    assert "cycle" in r.json()["detail"]


def test_the_last_full_admin_is_409_without_scim_type(scim: Scim, ws: WS) -> None:
    r = scim.patch(f"Users/{ws.admin_id}", {"op": "replace", "path": "active", "value": False})
    assert is_error(r, 409) and _no_scim_type(r), r.text
    r = scim.patch(f"Users/{ws.admin_id}", {"op": "replace", "path": f"{EXT}:role", "value": "Participant"})
    assert is_error(r, 409) and _no_scim_type(r), r.text


def test_renaming_to_a_taken_user_name_is_409_uniqueness(scim: Scim) -> None:
    scim.create_user("ann@acme.example")
    bob = scim.create_user("bob@acme.example")
    r = scim.put(f"Users/{bob['id']}", {"schemas": [USER], "userName": "ANN@acme.example"})
    assert is_error(r, 409, "uniqueness"), r.text


def test_a_body_of_another_type_is_415_in_a_scim_error(scim: Scim) -> None:
    headers = {**scim.headers, "Content-Type": "application/xml"}
    r = scim.http.post(scim.url("Users"), content=b"<User/>", headers=headers)
    assert is_error(r, 415) and _no_scim_type(r), r.text
    assert "application/scim+json" in r.json()["detail"]
    # Without a type, or as plain text, a body is read as JSON (what some provisioning scripts send).
    body = b'{"schemas": ["%s"], "userName": "plain@acme.example"}' % USER.encode()
    r = scim.http.post(scim.url("Users"), content=body, headers={**scim.headers, "Content-Type": "text/plain"})
    assert r.status_code == 201, r.text


def test_a_body_over_the_limit_is_413_in_a_scim_error(scim: Scim) -> None:
    body = b" " * (4 * 1024 * 1024 + 1)
    headers = {**scim.headers, "Content-Type": "application/scim+json"}
    r = scim.http.patch(scim.url("Users/x"), content=body, headers=headers)
    assert is_error(r, 413) and _no_scim_type(r), r.text
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_no_credentials_is_401_with_a_bearer_challenge(scim: Scim) -> None:
    r = scim.http.get(scim.url("Users"))
    assert is_error(r, 401), r.text
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="PayRoster"'
