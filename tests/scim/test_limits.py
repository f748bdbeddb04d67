"""The limits of a SCIM request (README.md, SCIM provisioning): a filter's terms and length, startIndex, the
strings and numbers of a body, sortBy, attribute lists, PATCH operations and paths. Each is a quick 400 SCIM
Error with its scimType, decided before any SQL, never a 5xx (both databases)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from payroster.scim.body import MAX_ATTRIBUTES, MAX_PATCH_OPERATIONS
from payroster.scim.filters import MAX_FILTER_DEPTH, MAX_FILTER_LENGTH, MAX_FILTER_TERMS, MAX_PATH_LENGTH
from payroster.scim.routes import MAX_START_INDEX
from tests.scim.conftest import EXT, GROUP, PATCH, USER, Scim, is_error

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def send(scim: Scim, method: str, path: str, body: Any) -> httpx.Response:
    """``body`` as Python's json writes it: a lone surrogate as the escape ``\\ud800`` (httpx's own encoder
    cannot send one)."""
    headers = {**scim.headers, "Content-Type": "application/scim+json"}
    return scim.http.request(method, scim.url(path), content=json.dumps(body), headers=headers)


def search(scim: Scim, path: str = "Users/.search", **fields: Any) -> httpx.Response:
    return send(scim, "POST", path, {"schemas": [SEARCH], **fields})


def user_names(count: int) -> str:
    return " or ".join(f'userName eq "u{i}@example.com"' for i in range(count))


def refused(r: httpx.Response, scim_type: str, *words: str) -> bool:
    """A 400 SCIM Error of this scimType whose detail names ``words`` (the limit), without Retry-After."""
    detail = r.json().get("detail", "")
    return is_error(r, 400, scim_type) and all(w in detail for w in words) and "retry-after" not in r.headers


# --- filters ---------------------------------------------------------------------------------------------


def test_a_filter_over_the_term_limit_is_refused_before_sql(scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    over = user_names(MAX_FILTER_TERMS + 1)
    assert len(over) < MAX_FILTER_LENGTH  # refused for its terms, not its length
    assert refused(scim.get("Users", filter=over), "invalidFilter", str(MAX_FILTER_TERMS))
    assert refused(search(scim, filter=over), "invalidFilter", str(MAX_FILTER_TERMS))
    assert refused(scim.get("Groups", filter=over.replace("userName", "displayName")), "invalidFilter")
    # 999 terms made SQLite's expression tree too deep: a 503 "database unavailable" and an ERROR logged.
    assert refused(search(scim, filter=user_names(999)), "invalidFilter", str(MAX_FILTER_LENGTH))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_filter_of_half_a_megabyte_is_refused_by_its_length(scim: Scim) -> None:
    huge = user_names(20_000)  # ~500 KB: seconds of CPU and hundreds of megabytes when it was compiled
    assert len(huge) > 400_000
    assert refused(search(scim, filter=huge), "invalidFilter", str(MAX_FILTER_LENGTH))
    assert refused(search(scim, path=".search", filter=huge), "invalidFilter", str(MAX_FILTER_LENGTH))


def test_a_filter_at_the_term_limit_runs_on_both_databases(scim: Scim) -> None:
    wanted = scim.create_user("u7@example.com")
    flat = scim.get("Users", filter=user_names(MAX_FILTER_TERMS))
    assert flat.status_code == 200, flat.text
    assert [u["id"] for u in flat.json()["Resources"]] == [wanted["id"]]
    # Nested as deep as allowed, each level a not() around an or-chain: far from SQLite's 1,000 levels of
    # expression, and within its parser's stack.
    levels, per_level = (MAX_FILTER_DEPTH - 1) // 2, 12
    nested = 'userName eq "nobody@example.com"'
    terms = 1
    for level in range(levels):
        others = " or ".join(f'displayName eq "d{level}-{i}"' for i in range(per_level))
        nested = f"not ({others} or {nested})"
        terms += per_level
    remaining = MAX_FILTER_TERMS - terms
    nested = " and ".join([nested] + [f'externalId ne "e{i}"' for i in range(remaining)])
    r = scim.get("Users", filter=nested)
    assert r.status_code == 200, r.text
    assert wanted["id"] in [u["id"] for u in r.json()["Resources"]]


@pytest.mark.parametrize(
    ("inner", "depth"),
    [
        ('displayName eq "x"', 0),
        ('userName eq "x"', 0),
        (f'{EXT}:tags eq "x"', 0),
        ('emails[type eq "work" and value eq "x"]', 2),
        ('(displayName eq "x" or groups eq "00000000-0000-7000-8000-000000000000")', 1),
    ],
)
def test_the_deepest_filters_allowed_run_and_one_level_more_is_refused(scim: Scim, inner: str, depth: int) -> None:
    nested = inner
    while depth < MAX_FILTER_DEPTH:
        nested, depth = f"not ({nested})", depth + 1
    r = scim.get("Users", filter=nested)
    assert r.status_code == 200, r.text  # 27 to 30 of them overflowed SQLite's parser: a 503
    assert refused(scim.get("Users", filter=f"not ({nested})"), "invalidFilter", str(MAX_FILTER_DEPTH))


@pytest.mark.parametrize(
    "filter_",
    [
        "not (" * 40 + "userName pr" + ")" * 40,  # nested past the limit
        "emails[" * 40 + 'value eq "x"' + "]" * 40,
        "(" * 6_000 + "userName pr" + ")" * 6_000,  # longer than the limit
        "not(" * 3_000 + "userName pr" + ")" * 3_000,
    ],
    ids=["not", "brackets", "parentheses", "long-not"],
)
def test_deep_nesting_is_an_invalid_filter(scim: Scim, filter_: str) -> None:
    assert refused(search(scim, filter=filter_), "invalidFilter")


def test_strings_no_database_stores_are_invalid_filters(scim: Scim) -> None:
    for value in ("a\\u0000b", "a\\ud800b", "\\udfff"):
        for filter_ in (f'userName eq "{value}"', f'emails[value eq "{value}"]', f'displayName co "{value}"'):
            assert refused(scim.get("Users", filter=filter_), "invalidFilter"), filter_
        assert refused(scim.get("Groups", filter=f'displayName eq "{value}"'), "invalidFilter")
    # Unescaped in a search's body, the surrogate is a string of the body.
    assert refused(search(scim, filter='userName eq "\ud800"'), "invalidValue", "surrogate")


# --- paging ----------------------------------------------------------------------------------------------


def test_start_index_and_count_at_their_extremes(scim: Scim) -> None:
    scim.create_user("paged@example.com")
    for start in (str(10**23), str(MAX_START_INDEX + 1)):
        assert refused(scim.get("Users", startIndex=start), "invalidValue", str(MAX_START_INDEX))
        assert refused(scim.get("Groups", startIndex=start), "invalidValue", str(MAX_START_INDEX))
    assert refused(search(scim, startIndex=MAX_START_INDEX + 1), "invalidValue", str(MAX_START_INDEX))
    assert refused(search(scim, path=".search", startIndex=2**62), "invalidValue", str(MAX_START_INDEX))
    for fields in ({"startIndex": 10**23}, {"count": 10**23}, {"count": -(10**23)}):
        assert refused(search(scim, **fields), "invalidValue", "digits"), fields
        assert refused(search(scim, path=".search", **fields), "invalidValue", "digits"), fields
    last = scim.get("Users", startIndex=str(MAX_START_INDEX)).json()
    assert last["Resources"] == [] and last["totalResults"] == 2  # the admin and paged@
    # RFC 7644 §3.4.2.4: a count above the maximum is the maximum, a negative one is 0, a startIndex below 1 is 1.
    many = scim.get("Users", count=str(10**23)).json()
    assert many["itemsPerPage"] == 2
    assert scim.get("Users", count="-5").json()["itemsPerPage"] == 0
    assert scim.get("Users", startIndex="-5").json()["startIndex"] == 1
    assert search(scim, count=-1).json()["itemsPerPage"] == 0
    assert refused(scim.get("Users", count="1" * 5_000), "invalidValue")


# --- bodies ----------------------------------------------------------------------------------------------


def _user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, **extra}


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]}


def _add_members(*ids: str) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}]}


def _writes(scim: Scim, text: str) -> list[tuple[str, str, Any]]:
    """Every SCIM write carrying ``text`` in one of its strings."""
    user = scim.create_user("target@example.com", displayName="Target")
    group = scim.create_group("Target group")
    u, g = f"Users/{user['id']}", f"Groups/{group['id']}"
    return [
        ("POST", "Users", _user(f"new{text}@example.com")),
        ("POST", "Users", _user("new@example.com", name={"givenName": text, "familyName": "X"})),
        ("POST", "Users", _user("new@example.com", **{EXT: {"tags": [text]}})),
        ("POST", "Users", _user("new@example.com", externalId=text)),
        ("POST", "Users", _user("new@example.com", password=text)),
        ("POST", "Users", _user("new@example.com", **{text: "x"})),  # a key
        ("PUT", u, _user("target@example.com", displayName=text)),
        ("PUT", u, _user("target@example.com", emails=[{"value": f"t{text}@example.com", "primary": True}])),
        ("PATCH", u, _replace("displayName", text)),
        ("PATCH", u, _replace("userName", f"t{text}@example.com")),
        ("POST", "Groups", {"schemas": [GROUP], "displayName": text}),
        ("PUT", g, {"schemas": [GROUP], "displayName": text}),
        ("PATCH", g, _replace("displayName", text)),
        (
            "PATCH",
            g,
            {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": text}]}]},
        ),
    ]


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "nul\x00"], ids=["high-surrogate", "low-surrogate", "nul"])
def test_strings_no_database_stores_are_invalid_values_in_every_write(scim: Scim, text: str) -> None:
    for method, path, body in _writes(scim, text):
        r = send(scim, method, path, body)
        assert refused(r, "invalidValue", "string"), (method, path, body, r.status_code, r.text)
    # Nothing was written.
    names = [u["userName"] for u in scim.get("Users", count="10").json()["Resources"]]
    assert sorted(names) == ["admin@example.com", "target@example.com"]
    assert [
        u.get("displayName") for u in scim.get("Users", filter='userName eq "target@example.com"').json()["Resources"]
    ] == ["Target"]


def test_numbers_too_long_to_print_are_invalid_values(scim: Scim) -> None:
    user = scim.create_user("numbers@example.com")
    group = scim.create_group("Numbers")
    huge = "1" * 5_000  # past the 4,300 digits Python converts between int and str
    headers = {**scim.headers, "Content-Type": "application/scim+json"}
    bodies = [
        ("POST", "Users", f'{{"schemas": ["{USER}"], "userName": "big@example.com", "active": {huge}}}'),
        ("PUT", f"Users/{user['id']}", f'{{"schemas": ["{USER}"], "userName": "numbers@example.com", "x": -{huge}}}'),
        ("PATCH", f"Users/{user['id']}", json.dumps(_replace("displayName", 0)).replace("0}", huge + "}")),
        ("POST", "Groups", f'{{"schemas": ["{GROUP}"], "displayName": {huge}}}'),
        ("PATCH", f"Groups/{group['id']}", json.dumps(_replace("displayName", 0)).replace("0}", huge + "}")),
        ("POST", "Users/.search", f'{{"schemas": ["{SEARCH}"], "count": {huge}}}'),
    ]
    for method, path, raw in bodies:
        r = scim.http.request(method, scim.url(path), content=raw, headers=headers)
        assert refused(r, "invalidValue", "digits"), (method, path, r.status_code, r.text)
    nan = scim.http.post(
        scim.url("Users/.search"), content=f'{{"schemas": ["{SEARCH}"], "count": NaN}}', headers=headers
    )
    assert refused(nan, "invalidSyntax")
    assert refused(scim.get("Users", filter=f"displayName eq {huge}"), "invalidFilter")


# --- the rest of a request -------------------------------------------------------------------------------


def test_sort_by_and_attribute_lists_are_bounded(scim: Scim) -> None:
    long_path = "name." + "x" * MAX_PATH_LENGTH
    assert refused(scim.get("Users", sortBy=long_path), "invalidFilter", str(MAX_PATH_LENGTH))
    assert refused(search(scim, sortBy="a" * 1_000_000), "invalidFilter", str(MAX_PATH_LENGTH))
    many = [f"name.givenName{i}" for i in range(MAX_ATTRIBUTES + 1)]
    assert refused(scim.get("Users", attributes=",".join(many)), "invalidValue", str(MAX_ATTRIBUTES))
    assert refused(scim.get("Groups", excludedAttributes=",".join(many)), "invalidValue", str(MAX_ATTRIBUTES))
    assert refused(search(scim, attributes=[f"a{i}" for i in range(50_000)]), "invalidValue", str(MAX_ATTRIBUTES))
    assert refused(search(scim, excludedAttributes=[long_path]), "invalidValue", str(MAX_PATH_LENGTH))
    fine = scim.get("Users", sortBy="name.familyName", attributes="userName,name.givenName")
    assert fine.status_code == 200, fine.text


def test_patch_operations_and_paths_are_bounded(scim: Scim) -> None:
    members = [scim.create_user(f"m{i}@example.com")["id"] for i in range(3)]
    group = scim.create_group("Bounded", members)
    path = f"Groups/{group['id']}"
    ops = [{"op": "replace", "path": "displayName", "value": f"d{i}"} for i in range(MAX_PATCH_OPERATIONS + 1)]
    r = send(scim, "PATCH", path, {"schemas": [PATCH], "Operations": ops})
    assert refused(r, "invalidValue", str(MAX_PATCH_OPERATIONS))
    long_path = "members[" + " or ".join(f'value eq "{i}"' for i in range(2_000)) + "]"
    r = send(scim, "PATCH", path, {"schemas": [PATCH], "Operations": [{"op": "remove", "path": long_path}]})
    assert refused(r, "invalidPath", str(MAX_FILTER_LENGTH))
    ids = [*members[:1], *(f"{i:08d}-0000-7000-8000-000000000000" for i in range(MAX_FILTER_TERMS))]
    over = "members[" + " or ".join(f'value eq "{i}"' for i in ids) + "]"
    r = send(scim, "PATCH", path, {"schemas": [PATCH], "Operations": [{"op": "remove", "path": over}]})
    assert refused(r, "invalidFilter", str(MAX_FILTER_TERMS))
    assert refused(send(scim, "PATCH", path, _replace('members[value eq "\u0000"]', None)), "invalidValue")
    at_limit = "members[" + " or ".join(f'value eq "{i}"' for i in ids[:MAX_FILTER_TERMS]) + "]"
    r = send(scim, "PATCH", path, {"schemas": [PATCH], "Operations": [{"op": "remove", "path": at_limit}]})
    assert r.status_code == 200, r.text
    assert sorted(m["value"] for m in r.json()["members"]) == sorted(members[1:])
