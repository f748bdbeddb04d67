"""Inputs the feed's parsers accept but that once came back as 500s (tracebacks) or as 503 outages: each is
now a 4xx OData error, or works the same on SQLite and PostgreSQL; the limits of odata/limits.py answer 400
naming the limit, before any SQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from payroster.odata import limits
from payroster.odata.routes import _guarded
from tests.conftest import WS
from tests.odata.hostile import big_queries

BIG = 2**63
# (query options, status, a phrase of the error message); every case on both databases.
REFUSED: list[tuple[dict[str, str], int, str]] = [
    ({"$skip": str(BIG)}, 400, "$skip takes an integer up to"),
    ({"$top": str(BIG)}, 400, "$top takes an integer up to"),
    ({"$top": "9" * 5000}, 400, "$top takes an integer up to"),
    ({"$top": "²"}, 400, "non-negative integer"),
    ({"$filter": f"substring(lastName, {BIG}) eq 'x'"}, 400, "Edm.Int64"),
    ({"$filter": f"length(lastName) eq {BIG}"}, 400, "Edm.Int64"),
    ({"$filter": f"hour(createdAt) eq {BIG}"}, 400, "Edm.Int64"),
    ({"$filter": f"length(lastName) eq -{BIG + 1}"}, 400, "Edm.Int64"),
    ({"$filter": "length(lastName) eq 1e999999"}, 400, "1e308"),
    ({"$filter": "not " * 500 + "active"}, 400, "nests at most 32 levels"),
    ({"$filter": "(" * 2000 + "active" + ")" * 2000}, 400, "nests at most 32 levels"),
    ({"$filter": "concat(" * 500 + "lastName" + ",'x')" * 500 + " eq 'x'"}, 400, "nests at most 32 levels"),
    ({"$filter": " add ".join(["length(lastName)"] * 40) + " gt 0"}, 400, "nests at most 32 levels"),
    ({"$filter": " or ".join(["active eq true"] * 700)}, 400, "at most 2000 operators"),
    ({"$filter": "lastName eq 'a\x00b'"}, 400, "U+0000"),
    ({"$filter": 'lastName in ["a\\u0000"]'}, 400, "U+0000"),
    ({"$filter": 'lastName in ["\\ud800"]'}, 400, "unpaired surrogate"),
    ({"$filter": "id in (" + ",".join(str(uuid.UUID(int=i)) for i in range(501)) + ")"}, 400, "at most 500 values"),
    ({"$orderby": ",".join(["lastName"] * 33)}, 400, "at most 32 keys"),
    ({"$filter": "tags/any(a: tags/any(b: tags/any(c: tags/any(d: d eq a))))"}, 400, "nest at most 3 deep"),
    ({"$expand": "directManager($expand=" * 4 + "directManager" + ")" * 4}, 400, "nests at most 4 levels"),
    ({"$expand": ",".join(["teams"] * 21)}, 400, "at most 20 navigations"),
    ({"$expand": f"teams($top={BIG})"}, 400, "$top takes an integer up to"),
    ({"$expand": f"teams($skip={'9' * 5000})"}, 400, "$skip takes an integer up to"),
    ({"$at": "2" * 5000}, 400, "$at takes a date"),
    ({"$at": "-2026-02-28"}, 400, "$at takes a date"),
    ({"$at": "0000-01-01"}, 400, "$at takes a date"),
    ({"$at": "2026-02-28", "$from": "2026-01-01"}, 400, "not combined"),
    *((query, 400, "at most") for query in big_queries()),
]


@pytest.mark.parametrize(("query", "status", "phrase"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_hostile_inputs_are_odata_client_errors(
    client: httpx.Client, ws: WS, query: dict[str, str], status: int, phrase: str
) -> None:
    r = client.get(f"/odata/{ws.slug}/Users", params=query, headers=ws.headers)
    assert r.status_code == status, r.text[:500]
    error = r.json()["error"]
    assert phrase in error["message"], error
    assert "Retry-After" not in r.headers and r.headers["OData-Version"] == "4.0"
    assert "Traceback" not in r.text


def test_every_failure_the_review_met_answers_in_one_pass(client: httpx.Client, ws: WS) -> None:
    """The whole table on one keep-alive connection: no answer drops it, none is a 5xx."""
    with httpx.Client(base_url=str(client.base_url), headers=ws.headers, timeout=30) as c:
        statuses = [c.get(f"/odata/{ws.slug}/Users", params=q).status_code for q, _, _ in REFUSED]
    assert max(statuses) < 500, statuses


def test_integers_past_32_bits_and_at_the_limits_work_alike_on_both_databases(client: httpx.Client, ws: WS) -> None:
    for i, last in enumerate(["Smith", "Li", None]):
        body = {"emailAddress": f"p{i}@example.com", "role": "Participant", "lastName": last}
        assert client.post("/api/v1/users", json=body, headers=ws.headers).status_code == 201

    def emails(**query: str) -> list[str]:
        r = client.get(f"/odata/{ws.slug}/Users", params={"$select": "emailAddress", **query}, headers=ws.headers)
        assert r.status_code == 200, r.text
        return sorted(u["emailAddress"] for u in r.json()["value"])

    named = ["p0@example.com", "p1@example.com"]
    assert emails(**{"$filter": f"length(lastName) lt {2**31}"}) == named
    assert emails(**{"$filter": f"length(lastName) lt {2**63 - 1}"}) == named
    assert emails(**{"$filter": f"length(lastName) gt {-(2**63)}"}) == named
    everyone = sorted(["admin@example.com", *named, "p2@example.com"])
    assert emails(**{"$filter": f"hour(createdAt) lt {2**40}"}) == everyone
    assert emails(**{"$filter": f"substring(lastName, {2**31}) eq ''"}) == named
    assert emails(**{"$filter": f"substring(lastName, 1, {2**40}) eq 'mith'"}) == ["p0@example.com"]
    assert emails(**{"$skip": str(2**63 - 1)}) == []
    assert emails(**{"$top": str(2**63 - 1), "$filter": "lastName ne null"}) == named
    r = client.get(f"/odata/{ws.slug}/Users", params={"$expand": f"teams($skip={2**63 - 1};$top={2**63 - 1})"},
                   headers=ws.headers)  # fmt: skip
    assert r.status_code == 200 and all(u["teams"] == [] for u in r.json()["value"])
    prefer = {**ws.headers, "Prefer": "odata.maxpagesize=" + "9" * 50}
    r = client.get(f"/odata/{ws.slug}/Users", params={"$top": "1"}, headers=prefer)
    assert r.status_code == 200 and r.headers["Preference-Applied"] == "odata.maxpagesize=5000"


def test_lists_at_the_limits_are_answered(client: httpx.Client, ws: WS) -> None:
    guids = ",".join(str(uuid.UUID(int=i)) for i in range(limits.MAX_IN_ITEMS - 1))
    emails = ",".join(f"'user{i}@example.com'" for i in range(limits.MAX_IN_ITEMS - 1))
    r = client.get(f"/odata/{ws.slug}/Users", headers=ws.headers, params={
        "$filter": f"id in ({guids}) or emailAddress in ({emails},'admin@example.com')",
        "$orderby": ",".join(["lastName"] * (limits.MAX_ORDERBY - 1) + ["id"]),
    })  # fmt: skip
    assert r.status_code == 200, r.text[:500]
    assert [u["emailAddress"] for u in r.json()["value"]] == ["admin@example.com"]
    chain = " or ".join([f"emailAddress eq 'x{i}@example.com'" for i in range(600)] + ["active eq true"])  # 1,803 nodes
    r = client.get(f"/odata/{ws.slug}/Users", params={"$filter": chain, "$select": "emailAddress"}, headers=ws.headers)
    assert r.status_code == 200 and [u["emailAddress"] for u in r.json()["value"]] == ["admin@example.com"]


def test_an_unexpected_error_is_an_odata_500_without_traceback() -> None:
    def broken() -> httpx.Response:
        raise ZeroDivisionError("a bug")

    response = _guarded(broken)  # type: ignore[arg-type]
    assert response.status_code == 500
    body = bytes(response.body).decode()
    assert '"code": "InternalError"' in body and "request id" in body
    assert "ZeroDivisionError" not in body and "a bug" not in body
    assert response.headers["OData-Version"] == "4.0" and response.headers["content-type"] == "application/json"
