"""Hypothesis against the SCIM door: generated filters, query strings, PATCH operations and resource bodies.
Never a 5xx; every refusal is a SCIM Error (RFC 7644 §3.12) whose ``status`` is the HTTP status."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
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


# What an outside review found turning into 500s and 503s: numbers past SQLite's integers and Python's 4,300
# digits, lone surrogates and NULs (as JSON escapes inside a filter's string, and raw), nesting past the parser's
# depth and filters past the term and length limits (tests/scim/test_limits.py holds one example of each).
NUMBERS = st.sampled_from(
    ["0", "-1", "1", "2147483647", "2147483648", str(2**63), str(2**64), str(10**23), "-" + str(10**23), "1" * 5_000,
     "1e23", "-0", "NaN", "Infinity", "0x10", " 7 ", "\u0661", "1.5"]
)  # fmt: skip
ODD_TEXT = st.sampled_from(["\ud800", "\udfff", "a\x00b", "\x00", "\ufeff", "\U0001f600", "%00", "\\u0000"])
QUOTED = st.sampled_from(['"\\ud800"', '"a\\udfffb"', '"\\u0000"', '"x\\u0000"', '"\ud800"', '"\x00"'])
ODD_FILTERS = st.one_of(
    st.builds(lambda a, v: f"{a} eq {v}", ATTRIBUTES, QUOTED),
    st.builds(lambda a, n: f"{a} eq {n}", ATTRIBUTES, NUMBERS),
    st.builds(lambda a, v: f"emails[value eq {v}]", ATTRIBUTES, QUOTED),
    # Long ones as (shape, size, joint), written out by expand(): Hypothesis prints what it drew.
    st.tuples(
        st.just("nest"),
        st.sampled_from([1, 15, 16, 17, 31, 32, 33, 100, 2_500, 6_000]),
        st.sampled_from(["(", "not (", "not(", "emails["]),
    ),
    st.tuples(st.just("terms"), st.sampled_from([99, 100, 101, 999, 1_000]), st.sampled_from(["or", "and"])),
)
QUERY_VALUES = st.one_of(NUMBERS, ODD_TEXT, ODD_FILTERS, st.text(max_size=8))
QUERY = st.dictionaries(
    st.sampled_from(["filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"]),
    QUERY_VALUES,
    min_size=1,
    max_size=4,
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


def expand(value: str | tuple[str, int, str]) -> str:
    """A drawn value, a long filter written out."""
    if isinstance(value, str):
        return value
    shape, size, joint = value
    if shape == "terms":
        return f" {joint} ".join(f'userName eq "u{i}@x.com"' for i in range(size))
    return joint * size + 'userName eq "x"' + ("]" if joint == "emails[" else ")") * size


def query_string(params: dict[str, Any]) -> str:
    """``params`` percent-encoded as UTF-8, a lone surrogate as the bytes it would have (what no client library
    sends, and a hostile one can)."""
    return "&".join(f"{k}={quote(expand(v).encode('utf-8', 'surrogatepass'), safe='')}" for k, v in params.items())


@FUZZ
@given(params=QUERY, resource=st.sampled_from(["Users", "Groups"]))
def test_query_string_extremes(door: tuple[Scim, str, str], params: dict[str, Any], resource: str) -> None:
    scim, _, _ = door
    url = f"{scim.url(resource)}?{query_string(params)}"
    assume(len(url) < 60_000)  # httpx sends no longer URL; the longest filters go in test_search_body_extremes
    r = scim.http.get(url, headers=scim.headers)
    assert_scim_answer(r, (resource, params))


@FUZZ
@given(params=QUERY, path=st.sampled_from(["Users/.search", "Groups/.search", ".search"]), numbers=st.booleans())
def test_search_body_extremes(door: tuple[Scim, str, str], params: dict[str, Any], path: str, numbers: bool) -> None:
    """The same values in a SearchRequest, written by Python's json (a lone surrogate as its ``\\ud800`` escape);
    ``numbers`` writes startIndex and count as bare JSON numbers when they look like one."""
    scim, _, _ = door
    parts = [f'"schemas": {json.dumps(["urn:ietf:params:scim:api:messages:2.0:SearchRequest"])}']
    for name, drawn in params.items():
        value = expand(drawn)
        bare = numbers and name in ("startIndex", "count") and value.strip().lstrip("-").replace(".", "", 1).isdigit()
        parts.append(f"{json.dumps(name)}: {value.strip() if bare else json.dumps(value)}")
    raw = "{" + ", ".join(parts) + "}"
    headers = {**scim.headers, "Content-Type": "application/scim+json"}
    r = scim.http.post(scim.url(path), content=raw, headers=headers)
    assert_scim_answer(r, (path, raw[:300]))


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
