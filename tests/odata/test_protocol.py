"""The OData rules (README.md, "OData feed"), one test each, over a live server on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.conftest import WS
from tests.odata.conftest import Seeded


def get(client: httpx.Client, s: Seeded, path: str, **params: Any) -> httpx.Response:
    """GET on the feed with workspace A's key."""
    return client.get(s.root + path, params=params or None, headers=s.ws.headers)


def rows(client: httpx.Client, s: Seeded, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a collection, following nextLinks."""
    r = get(client, s, path, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    out = list(body["value"])
    while "@odata.nextLink" in body:
        body = client.get(body["@odata.nextLink"], headers=s.ws.headers).json()
        out.extend(body["value"])
    return out


def emails(found: list[dict[str, Any]]) -> set[str]:
    return {u["emailAddress"] for u in found}


def users_where(s: Seeded, pred: Any) -> set[str]:
    return {u["emailAddress"] for u in s.users if pred(u)}


def test_service_document_lists_sets(client: httpx.Client, feed: Seeded, base_url: str) -> None:
    """The root is a service document with an absolute context URL."""
    r = get(client, feed, "")
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"] == f"{base_url}{feed.root}$metadata"
    assert {v["name"] for v in body["value"]} == {
        "Users",
        "Teams",
        "TeamMembers",
        "CustomVariables",
        "AuditEvents",
        "MembershipPeriods",
        "ManagerPeriods",
        "TeamPeriods",
    }


def test_metadata_is_xml(client: httpx.Client, feed: Seeded) -> None:
    """$metadata is CSDL XML served as application/xml."""
    r = get(client, feed, "$metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert b'<EntityType Name="User">' in r.content


@pytest.mark.parametrize(
    "path",
    ["", "$metadata", "Users", "Users?$filter=nope eq 1", "Users?$apply=x", "Nope", "Users(1)", "$batch"],
)
def test_odata_version_on_every_response(client: httpx.Client, feed: Seeded, path: str) -> None:
    """OData-Version: 4.0 on successes and errors alike; errors have a non-empty code."""
    r = client.get(feed.root + path, headers=feed.ws.headers)
    assert r.headers["OData-Version"] == "4.0"
    if r.status_code >= 400:
        assert r.status_code < 500 or r.status_code == 501
        assert r.json()["error"]["code"]


def test_no_credentials_prompts_basic(client: httpx.Client, feed: Seeded) -> None:
    """No key -> 401 with WWW-Authenticate: Basic realm="PayRoster" (Excel and Power BI prompt)."""
    r = client.get(feed.root + "Users")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="PayRoster"'
    assert r.headers["OData-Version"] == "4.0"


def test_basic_with_key_as_password(client: httpx.Client, feed: Seeded) -> None:
    """Basic auth with any user name and the key as password works, as does Bearer."""
    basic = base64.b64encode(f"anyone:{feed.ws.key}".encode()).decode()
    assert client.get(feed.root + "Users/$count", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    bearer = {"Authorization": f"Bearer {feed.ws.key}"}
    assert client.get(feed.root + "Users/$count", headers=bearer).status_code == 200


def test_other_workspace_key_is_404(client: httpx.Client, seeded: Seeded, ws_b: WS) -> None:
    """A key of workspace B on A's feed gets 404, the same as an unknown slug."""
    foreign = client.get(seeded.root + "Users", headers=ws_b.headers)
    unknown = client.get("/odata/no-such-workspace/Users", headers=ws_b.headers)
    assert foreign.status_code == unknown.status_code == 404
    assert seeded.users[0]["emailAddress"] not in foreign.text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_405(client: httpx.Client, feed: Seeded, method: str) -> None:
    """The feed is read-only."""
    r = client.request(method, feed.root + "Users", headers=feed.ws.headers, json={})
    assert r.status_code == 405
    assert r.json()["error"]["code"]


@pytest.mark.parametrize(
    "path",
    ["$batch", "Users?$apply=groupby((role))", "Users?$search=smith", "Users?$compute=x"],
)
def test_unsupported_features_are_501(client: httpx.Client, feed: Seeded, path: str) -> None:
    """$batch, $apply, $search, $compute -> 501 with an OData error."""
    r = client.get(feed.root + path, headers=feed.ws.headers)
    assert r.status_code == 501
    assert r.json()["error"]["code"] == "NotImplemented"


def test_track_changes_on_a_set_without_it_is_501(client: httpx.Client, feed: Seeded) -> None:
    """Prefer: odata.track-changes on a set that does not track changes -> 501 (tests/odata/test_delta.py has the
    tracked sets); a made-up delta token on a tracked one -> 400."""
    r = client.get(feed.root + "AuditEvents", headers={**feed.ws.headers, "Prefer": "odata.track-changes"})
    assert r.status_code == 501
    r = client.get(feed.root + "Users?$deltatoken=abc", headers=feed.ws.headers)
    assert r.status_code == 400 and r.json()["error"]["target"] == "$deltatoken"


@pytest.mark.parametrize(
    "query",
    ["$filter=lastName eq", "$filter=lastName eq 'x", "$filter=(lastName eq 'x'", "$orderby=", "$top=-1", "$top=x"],
)
def test_bad_syntax_is_400(client: httpx.Client, feed: Seeded, query: str) -> None:
    """Malformed options -> 400 with a non-empty code, never 500."""
    r = client.get(f"{feed.root}Users?{query}", headers=feed.ws.headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"]


@pytest.mark.parametrize(
    "query",
    [
        "$filter=nope eq 1",
        "$select=nope",
        "$orderby=nope",
        "$expand=nope",
        "$filter=lastName eq 1",
        "$filter=active gt true",
    ],
)
def test_unknown_property_or_type_mismatch_is_400(client: httpx.Client, feed: Seeded, query: str) -> None:
    """Unknown properties and meaningless comparisons -> 400."""
    r = client.get(f"{feed.root}Users?{query}", headers=feed.ws.headers)
    assert r.status_code == 400, r.text


FILTERS = [
    ("lastName eq 'Smith'", lambda u: u["lastName"] == "Smith"),
    ("lastName ne 'Smith'", lambda u: u["lastName"] != "Smith"),
    ("lastName gt 'Smith'", lambda u: u["lastName"] is not None and u["lastName"] > "Smith"),
    ("lastName ge 'Smith'", lambda u: u["lastName"] is not None and u["lastName"] >= "Smith"),
    ("lastName lt 'Smith'", lambda u: u["lastName"] is not None and u["lastName"] < "Smith"),
    ("lastName le 'Smith'", lambda u: u["lastName"] is not None and u["lastName"] <= "Smith"),
    ("lastName eq null", lambda u: u["lastName"] is None),
    ("lastName ne null", lambda u: u["lastName"] is not None),
    ("not (lastName eq 'Smith')", lambda u: u["lastName"] != "Smith"),
    (
        "lastName eq 'Smith' or firstName eq 'Name1'",
        lambda u: u["lastName"] == "Smith" or u["firstName"] == "Name1",
    ),
    ("lastName eq 'Smith' and active eq true", lambda u: u["lastName"] == "Smith" and u["active"]),
    ("role in ('FullAdmin', 'Deactivated')", lambda u: u["role"] in ("FullAdmin", "Deactivated")),
    ("role eq 'Deactivated'", lambda u: not u["active"]),
    ("tolower(lastName) eq 'smith'", lambda u: (u["lastName"] or "").lower() == "smith" and u["lastName"]),
    ("toupper(lastName) eq 'SMITH'", lambda u: u["lastName"] is not None and u["lastName"].upper() == "SMITH"),
    ("length(lastName) eq 3", lambda u: u["lastName"] is not None and len(u["lastName"]) == 3),
    ("contains(lastName, '%')", lambda u: "%" in (u["lastName"] or "")),
    ("contains(lastName, '_')", lambda u: "_" in (u["lastName"] or "")),
    ("startswith(lastName, 'sm')", lambda u: (u["lastName"] or "").startswith("sm")),
    ("endswith(lastName, 'ith')", lambda u: (u["lastName"] or "").endswith("ith")),
    ("contains(lastName, '''')", lambda u: "'" in (u["lastName"] or "")),
    ("indexof(lastName, 'i') eq 2", lambda u: (u["lastName"] or "").find("i") == 2),
    ("substring(lastName, 1) eq 'mith'", lambda u: (u["lastName"] or "")[1:] == "mith"),
    ("year(createdAt) ge 2020 and month(createdAt) ge 1", lambda u: True),
    ("createdAt lt 2000-01-01T00:00:00Z", lambda u: False),
    ("tags/any(t: t eq '50%_off')", lambda u: "50%_off" in u["tags"]),
    # eq on a tag is exact although it is also looked up by the tag's case-folded key
    ("tags/any(t: t eq 'ae')", lambda u: "ae" in u["tags"]),
    ("tags/any(t: t eq 'Été' or t eq 'ÉTÉ')", lambda u: "Été" in u["tags"] or "ÉTÉ" in u["tags"]),
    ("tags/any(t: t eq 'O''Brien')", lambda u: "O'Brien" in u["tags"]),
    ("tags/any(t: 'SE' eq t)", lambda u: "SE" in u["tags"]),
    ("tags/any(t: t in ('West', 'east'))", lambda u: "West" in u["tags"] or "east" in u["tags"]),
    ("not tags/any(t: t eq 'West')", lambda u: "West" not in u["tags"]),
    ("tags/all(t: t eq 'AE' or t eq 'se')", lambda u: all(t in ("AE", "se") for t in u["tags"])),
    ("tags/any(t: contains(t, '\\'))", lambda u: any("\\" in t for t in u["tags"])),
    ("tags/all(t: t eq 'AE')", lambda u: all(t == "AE" for t in u["tags"])),
    ("aliases/any()", lambda u: bool(u["aliases"])),
    ("not aliases/any()", lambda u: not u["aliases"]),
    ("tags/$count eq 1", lambda u: len(u["tags"]) == 1),
]


def test_filter(client: httpx.Client, seeded: Seeded) -> None:
    """Each operator and function answers exactly the rows the same predicate selects in Python."""
    wrong = []
    for expr, pred in FILTERS:
        found = rows(client, seeded, "Users", **{"$filter": expr, "$select": "emailAddress"})
        expected = users_where(seeded, pred)
        if emails(found) != expected:
            wrong.append(f"{expr}: extra {emails(found) - expected}, missing {expected - emails(found)}")
    assert not wrong, "\n".join(wrong)


def test_filter_on_navigation(client: httpx.Client, seeded: Seeded) -> None:
    """any/all over navigation, and single-valued navigation paths."""
    team0 = seeded.teams[0]
    in_team0 = {uid for tid, uid in seeded.members if tid == team0["id"]}
    found = rows(client, seeded, "Users", **{"$filter": f"teams/any(t: t/id eq {team0['id']})", "$select": "id"})
    assert {u["id"] for u in found} == in_team0
    children = rows(client, seeded, "Teams", **{"$filter": "parent/name eq 'Team 0'", "$select": "name"})
    assert {t["name"] for t in children} == {"Team 1", "Team 2", "Team 3"}
    counted = rows(client, seeded, "Teams", **{"$filter": "members/$count gt 0", "$select": "name"})
    assert {t["name"] for t in counted} == {
        t["name"] for t in seeded.teams if any(m[0] == t["id"] for m in seeded.members)
    }
    none = rows(client, seeded, "Teams", **{"$filter": "parent eq null", "$select": "name"})
    assert {t["name"] for t in none} == {"Team 0"}


def test_select_and_context(client: httpx.Client, seeded: Seeded, base_url: str) -> None:
    """$select returns only those properties; the context URL names them."""
    r = get(client, seeded, "Users", **{"$select": "emailAddress,tags", "$top": "2"})
    body = r.json()
    assert body["@odata.context"] == f"{base_url}{seeded.root}$metadata#Users(emailAddress,tags)"
    assert all(set(v) == {"emailAddress", "tags"} for v in body["value"])


def test_orderby_several_keys(client: httpx.Client, seeded: Seeded) -> None:
    """$orderby with several keys, nulls first ascending; the key breaks ties."""
    found = rows(
        client, seeded, "Users", **{"$orderby": "lastName desc,emailAddress", "$select": "lastName,emailAddress"}
    )
    expected = sorted(seeded.users, key=lambda u: u["emailAddress"])
    expected = sorted(expected, key=lambda u: (u["lastName"] is not None, u["lastName"] or ""), reverse=True)
    assert [u["emailAddress"] for u in found] == [u["emailAddress"] for u in expected]


def test_top_skip_count(client: httpx.Client, seeded: Seeded) -> None:
    """$top/$skip page a stable order; $count=true reports the filtered total."""
    every = rows(client, seeded, "Users", **{"$orderby": "emailAddress", "$select": "emailAddress"})
    r = get(
        client,
        seeded,
        "Users",
        **{
            "$orderby": "emailAddress",
            "$select": "emailAddress",
            "$top": "5",
            "$skip": "3",
            "$count": "true",
            "$filter": "active eq true",
        },
    )
    body = r.json()
    active = sorted(u["emailAddress"] for u in seeded.users if u["active"])
    assert [v["emailAddress"] for v in body["value"]] == active[3:8]
    assert body["@odata.count"] == len(active)
    assert "@odata.nextLink" not in body
    assert len(every) == len(seeded.users)


def test_dollar_count_is_text(client: httpx.Client, seeded: Seeded) -> None:
    """/$count answers text/plain and honours $filter."""
    r = get(client, seeded, "Users/$count", **{"$filter": "active eq false"})
    assert r.headers["content-type"].startswith("text/plain")
    assert int(r.text) == sum(1 for u in seeded.users if not u["active"])


def test_expand_nested(client: httpx.Client, seeded: Seeded, base_url: str) -> None:
    """$expand with nested $select/$filter/$orderby/$top and a nested $expand."""
    r = get(
        client,
        seeded,
        "Teams",
        **{
            "$expand": "members($select=emailAddress;$filter=active eq true;"
            "$orderby=emailAddress desc;$top=2;$expand=directManager)",
            "$orderby": "name",
        },
    )
    body = r.json()
    assert body["@odata.context"] == f"{base_url}{seeded.root}$metadata#Teams(*,members(emailAddress,directManager))"
    by_id = {u["id"]: u for u in seeded.users}
    for team in body["value"]:
        expected = sorted(
            (by_id[uid]["emailAddress"] for tid, uid in seeded.members if tid == team["id"] and by_id[uid]["active"]),
            reverse=True,
        )[:2]
        assert [m["emailAddress"] for m in team["members"]] == expected
        assert all(m["directManager"] is None for m in team["members"])


def test_key_and_navigation_access(client: httpx.Client, seeded: Seeded, base_url: str) -> None:
    """Users(<guid>), Teams(<guid>)/members, a property, and an unknown key -> 404."""
    user = seeded.users[0]
    one = get(client, seeded, f"Users({user['id']})")
    assert one.status_code == 200
    assert one.json()["@odata.context"] == f"{base_url}{seeded.root}$metadata#Users/$entity"
    assert one.json()["emailAddress"] == user["emailAddress"]
    team = seeded.teams[0]
    members = rows(client, seeded, f"Teams({team['id']})/members", **{"$select": "id"})
    assert {m["id"] for m in members} == {uid for tid, uid in seeded.members if tid == team["id"]}
    prop = get(client, seeded, f"Users({user['id']})/emailAddress")
    assert prop.json()["value"] == user["emailAddress"]
    assert get(client, seeded, f"Users({user['id']})/emailAddress/$value").text == user["emailAddress"]
    missing = get(client, seeded, "Users(00000000-0000-7000-8000-000000000000)")
    assert missing.status_code == 404


def test_format_and_metadata_levels(client: httpx.Client, seeded: Seeded) -> None:
    """$format=json, odata.metadata=none drops the context, full adds type and id annotations."""
    plain = get(client, seeded, "Users", **{"$format": "json", "$top": "1"})
    assert plain.status_code == 200 and "@odata.context" in plain.json()
    none = get(client, seeded, "Users", **{"$format": "application/json;odata.metadata=none", "$top": "1"})
    assert "@odata.context" not in none.json()
    full = client.get(
        seeded.root + "Users?$top=1", headers={**seeded.ws.headers, "Accept": "application/json;odata.metadata=full"}
    )
    entity = full.json()["value"][0]
    assert entity["@odata.type"] == "#PayRoster.User"
    assert entity["@odata.id"].endswith(f"Users({entity['id']})")
    assert entity["id@odata.type"] == "#Guid"
    assert full.headers["content-type"].startswith("application/json;odata.metadata=full")


def test_dollarless_case_insensitive_options(client: httpx.Client, seeded: Seeded) -> None:
    """4.01: options without $ and in any case mean the same."""
    a = client.get(seeded.root + "Users?$filter=active eq false&$select=emailAddress", headers=seeded.ws.headers)
    b = client.get(seeded.root + "Users?filter=active eq false&SELECT=emailAddress", headers=seeded.ws.headers)
    c = client.get(seeded.root + "Users?$Filter=active EQ false&$Select=emailAddress", headers=seeded.ws.headers)
    assert a.json()["value"] == b.json()["value"] == c.json()["value"]
    assert a.json()["value"]


def test_exact_decimals(client: httpx.Client, seeded: Seeded) -> None:
    """numberValue keeps its exact digits; IEEE754Compatible=true sends them as strings."""
    r = get(client, seeded, "CustomVariables", **{"$filter": "numberValue ne null", "$select": "numberValue"})
    assert '"numberValue": 1.1' in r.text or '"numberValue":1.1' in r.text
    assert "12345678901234567890.123456789" in r.text
    ieee = client.get(
        seeded.root + "CustomVariables?$filter=numberValue ne null",
        headers={**seeded.ws.headers, "Accept": "application/json;IEEE754Compatible=true"},
    )
    assert {v["numberValue"] for v in ieee.json()["value"]} == {"1.1", "12345678901234567890.123456789"}
