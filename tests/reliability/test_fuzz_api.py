"""Schemathesis against the JSON API's OpenAPI document on the live server: every operation, a bounded
number of generated requests each (PAYROSTER_FUZZ_EXAMPLES, 20 by default), with a valid key. No answer may
be a 5xx, and every answer must match the document (status code, content type, headers, body schema).
Then Hypothesis with what a schema does not describe: surrogates, NUL, huge numbers and duplicate keys in every body
and query parameter (half as many examples per endpoint)."""

from __future__ import annotations

import itertools
import json
import os
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.specs.openapi import checks as openapi_checks

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS

EXAMPLES = int(os.environ.get("PAYROSTER_FUZZ_EXAMPLES", "20"))
_app = create_app(Settings(database_url="sqlite:///:memory:", secret_key="fuzz"))
DOCUMENT = _app.openapi()
_app.state.db.dispose()
schema = schemathesis.openapi.from_dict(DOCUMENT)
# Every check of the document's promises; "schema-valid requests are accepted" is left out on purpose:
# business rules (an unknown manager id, a date that does not exist) answer a documented 422.
CHECKS: list[Any] = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
_turn = itertools.count()
TRIED: dict[str, int] = {}


def test_the_live_document_is_the_one_fuzzed(client: httpx.Client) -> None:
    assert client.get("/api/v1/openapi.json").json() == DOCUMENT


@pytest.fixture
def known(base_url: str, ws: WS, db: Database) -> dict[str, str]:
    """Ids that exist, so half the generated requests reach past the 404s into the real logic."""
    user = httpx.post(base_url + "/api/v1/users", json={"emailAddress": "fuzz@example.com", "role": "Participant"},
                      headers=ws.headers).json()  # fmt: skip
    team = httpx.post(base_url + "/api/v1/teams", json={"name": "Fuzzers"}, headers=ws.headers).json()
    return {"user_id": user["id"], "team_id": team["id"], "target_id": user["id"]}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_breaks_its_document(case: Case, base_url: str, ws: WS, known: dict[str, str]) -> None:
    if case.path_parameters and next(_turn) % 2 == 0:
        case.path_parameters = {k: known.get(k, v) for k, v in case.path_parameters.items()}
    headers = {**(case.headers or {}), "X-ApiKey": ws.key}
    case.headers = headers
    case.call_and_validate(base_url=base_url, checks=CHECKS)
    key = f"{case.operation.method.upper()} {case.operation.path}"
    TRIED[key] = TRIED.get(key, 0) + 1


def test_zz_report() -> None:
    """Print what was tried (figures for the closing note); fails if the fuzzer ran nothing."""
    total = sum(TRIED.values())
    print(f"\nschemathesis: {total} requests over {len(TRIED)} operations, {EXAMPLES} examples per operation")
    assert len(TRIED) >= 15 and total >= len(TRIED)


# Inputs the parser accepts but no door can keep, or that resolve silently (README.md, JSON API): unpaired surrogates
# and NUL in any string or key, numbers past Python's 4,300-digit conversion and past 64 bits, keys given twice
# (exactly or in another case), dates at the calendar's ends. Written as JSON text by hand: json.dumps cannot write a
# key twice.
FIELDS = [
    "emailAddress",
    "role",
    "firstName",
    "tags",
    "aliases",
    "name",
    "description",
    "value",
    "startDate",
    "endDate",
    "systemUserId",
    "teamId",
    "managerCanViewResults",
    "users",
]
_odd_text = st.text(
    st.one_of(st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\ude00", "é", "|", "~", "/"]), st.characters()),
    max_size=12,
)
_key = st.one_of(
    st.sampled_from(FIELDS).flatmap(lambda f: st.sampled_from([f, f.upper(), f.lower(), f.swapcase()])), _odd_text
)
_number = st.one_of(
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.sampled_from(["18446744073709551616", "-9223372036854775809", "1e1000", "1e-400", "1E+308", "0.1" + "1" * 40]),
    st.integers().map(str),
)
_date = st.sampled_from(
    ["0001-01-01", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01", "2024-01-01T00:00:00.5Z", "0999-12-31"]
)
_scalar = st.one_of(_odd_text.map(lambda s: json.dumps(s)), _number, _date.map(json.dumps), st.just("null"))


def _object(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.lists(st.tuples(_key, values), max_size=6)
    return pairs.map(lambda kv: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in kv) + "}")


_document = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        _object(inner), st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
    ),
    max_leaves=12,
)
# Per endpoint, half the schema fuzzer's count: fifteen endpoints on two databases.
ODD_EXAMPLES = max(EXAMPLES // 2, 5)
BODY_PATHS = [
    "POST /api/v1/users",
    "POST /api/v1/users:bulk",
    "POST /api/v1/teams",
    "POST /api/v1/team-members",
    "POST /api/v1/team-members:delete",
    "PATCH /api/v1/users/{user_id}",
    "PATCH /api/v1/teams/{team_id}",
    "PUT /api/v1/custom-variables/{user_id}",
    "POST /app/Api/SetCustomProperties?id={team_id}",
]
QUERY_PATHS = [
    "GET /api/v1/users?emailAddress=",
    "GET /api/v1/teams?name=",
    "DELETE /api/v1/users/{user_id}/tags?value=",
    "DELETE /api/v1/users/{user_id}/aliases?value=",
    "GET /api/v1/custom-variables/{user_id}?at=",
    "GET /app/Api/GetCustomProperties?id=",
]


@pytest.mark.parametrize("endpoint", BODY_PATHS)
@given(body=_document, as_string=st.booleans())
@settings(max_examples=ODD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_odd_json_bodies_never_break_a_door(
    endpoint: str, body: str, as_string: bool, base_url: str, ws: WS, known: dict[str, str]
) -> None:
    """Surrogates, NUL, huge numbers, duplicate keys and edge dates anywhere in any body: a 4xx in the JSON API's
    error format, or a success; never a 5xx."""
    method, path = endpoint.format(**known).split(" ")
    if as_string and "custom" in path.lower():  # the variables' array sent as a JSON string
        body = json.dumps(body)
    r = httpx.request(method, base_url + path, content=body.encode("utf-8", "surrogatepass"), headers=ws.headers)
    assert r.status_code < 500, (endpoint, body[:200], r.text[:300])
    if r.status_code >= 400:
        assert set(r.json()) == {"error"} and r.json()["error"]["code"], r.text[:300]


@pytest.mark.parametrize("endpoint", QUERY_PATHS)
@given(
    value=st.one_of(
        _odd_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.text(st.characters(max_codepoint=0x7FF), min_size=1000, max_size=2000).map(str.encode),
        st.sampled_from([b"\xed\xa0\x80", b"\x00", b"\xc0\x80", b"\xff"]),  # a surrogate's bytes, overlong NUL
    )
)
@settings(max_examples=ODD_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_odd_query_parameters_never_break_a_door(
    endpoint: str, value: bytes, base_url: str, ws: WS, known: dict[str, str]
) -> None:
    """NUL, surrogates as raw bytes, overlong UTF-8 and very long values in every query parameter: never a 5xx."""
    method, path = endpoint.format(**known).split(" ")
    r = httpx.request(method, base_url + path + quote(value, safe=""), headers=ws.headers)
    assert r.status_code < 500, (endpoint, value[:100], r.text[:300])
