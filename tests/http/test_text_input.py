"""Text, numbers, dates and keys the JSON parser, the query string and the log-in form accept but PayRoster cannot
keep: every door answers them with a 4xx in its own error format, on SQLite and PostgreSQL, never a 500."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from tests.conftest import WS, _Switch
from tests.http.test_errors import check, team, user
from tests.web.conftest import csrf_of, http_login, make_user

LONE = "\\ud800"  # a lone surrogate as JSON writes it: the parser accepts it, no encoder can write it out
NUL = "\\u0000"
BAD_TEXT = [LONE, NUL, "\\udfff", "a\\udc00b"]


def _endpoints(client: httpx.Client, ws: WS) -> list[tuple[str, str, str]]:
    """``(method, path, JSON template)``: every endpoint with a body; ``%s`` is where the bad text goes."""
    u, t = user(client, ws, "target@example.com"), team(client, ws, "Target")
    return [
        ("POST", "/api/v1/users", '{"emailAddress": "x@example.com", "role": "Participant", "firstName": "%s"}'),
        ("POST", "/app/Api/SetUser", '{"emailAddress": "x%s@example.com", "role": "Participant"}'),
        ("PATCH", f"/api/v1/users/{u['id']}", '{"tags": ["a%s"]}'),
        ("POST", "/api/v1/users:bulk", '[{"emailAddress": "y@example.com", "role": "Participant", "aliases": "%s"}]'),
        ("POST", "/api/v1/users:bulk", '{"users": [{"emailAddress": "y@example.com", "%s": "x"}]}'),
        ("POST", "/api/v1/teams", '{"name": "T%s"}'),
        ("PATCH", f"/api/v1/teams/{t['id']}", '{"description": "%s"}'),
        ("POST", "/api/v1/team-members", '{"systemUserId": "%s", "teamId": "' + t["id"] + '"}'),
        ("POST", "/api/v1/team-members:delete", '{"systemUserId": "' + u["id"] + '", "teamId": "%s"}'),
        ("PUT", f"/api/v1/custom-variables/{u['id']}", '[{"name": "Q", "value": "%s"}]'),
        ("POST", f"/api/v1/custom-variables/{t['id']}", '[{"name": "Q%s", "value": 1}]'),
        ("POST", f"/app/Api/SetCustomProperties?id={u['id']}", '[{"name": "Q", "value": 1, "startDate": "%s"}]'),
    ]


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_nul_and_lone_surrogates_in_json_strings_are_422(client: httpx.Client, ws: WS, bad: str) -> None:
    """A NUL (PostgreSQL cannot store it) or an unpaired surrogate (no encoder can write it back) anywhere in a
    JSON string, value or key, is refused by the body reader with a 422 naming where it is."""
    for method, path, template in _endpoints(client, ws):
        r = client.request(method, path, content=template % bad, headers=ws.headers)
        err = check(r, 422)
        assert err["code"] == "validationError" and err["details"][0]["code"] == "invalidCharacters", (path, err)
        assert err["details"][0]["target"], (path, err)


def test_a_surrogate_pair_is_one_character_and_kept(client: httpx.Client, ws: WS) -> None:
    """An escaped pair (\\ud83d\\ude00) is a real character: refused is only the unpaired half."""
    body = '{"emailAddress": "smile@example.com", "role": "Participant", "firstName": "\\ud83d\\ude00"}'
    r = client.post("/api/v1/users", content=body, headers=ws.headers)
    assert r.status_code == 201, r.text
    assert r.json()["firstName"] == "\U0001f600"


def test_the_custom_variables_string_body_is_read_by_the_same_rules(client: httpx.Client, ws: WS) -> None:
    """The commercial product's samples send the array as a JSON string: the text inside is held to the same rules
    (NUL, surrogates, duplicate keys) as a body."""
    u = user(client, ws, "s@example.com")
    for inner, code in (
        ('[{"name": "Q", "value": "\\u0000"}]', "invalidCharacters"),
        ('[{"name": "Q", "value": "\\ud800"}]', "invalidCharacters"),
        ('[{"name": "Q", "value": 1, "value": 2}]', "duplicateField"),
    ):
        r = client.put(f"/api/v1/custom-variables/{u['id']}", content=json.dumps(inner), headers=ws.headers)
        assert check(r, 422)["details"][0]["code"] == code, r.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users?emailAddress=a%00"),
        ("GET", "/api/v1/users?emailAddress=%00@example.com"),
        ("GET", "/api/v1/teams?name=%00"),
        ("DELETE", "/api/v1/users/{user}/tags?value=%00"),
        ("DELETE", "/api/v1/users/{user}/aliases?value=a%00"),
        ("GET", "/api/v1/custom-variables/{user}?at=2024-01-01%00"),
        ("GET", "/app/Api/GetCustomProperties?id=%00"),
    ],
)
def test_nul_in_query_parameters_is_400(client: httpx.Client, ws: WS, method: str, path: str) -> None:
    """A NUL in any query parameter of the JSON API is a 400 in the door's error format."""
    u = user(client, ws, "q@example.com", tags="a", aliases="a")
    r = client.request(method, path.replace("{user}", u["id"]), headers=ws.headers)
    err = check(r, 400)
    assert err["code"] == "badRequest" and err["details"][0]["code"] == "invalidCharacters", err


def test_an_unexpected_error_closes_the_connection_it_answered(
    http_server: tuple[_Switch, str], settings: Settings, db: Database
) -> None:
    """After a 500 the server drops the connection: it says so with ``Connection: close``, and the same client's
    next request goes out on a fresh connection and is answered."""
    switch, url = http_server
    app: FastAPI = create_app(settings, db)

    @app.get("/api/v1/test-only-broken")
    def broken() -> None:
        raise RuntimeError("a bug")

    switch.app = app
    with httpx.Client(base_url=url, timeout=10) as c:
        first = c.get("/api/v1/test-only-broken")
        assert first.status_code == 500
        assert first.json()["error"]["code"] == "internalError"
        assert "a bug" not in first.text and "Traceback" not in first.text
        assert first.headers.get("connection") == "close"
        second = c.get("/healthz")
        assert second.status_code == 200 and second.json()["status"] == "ok"


@pytest.mark.parametrize(
    "body",
    [
        '{"emailAddress": "d@example.com", "role": "Participant", "role": "FullAdmin"}',
        '{"emailAddress": "d@example.com", "role": "Participant", "ROLE": "FullAdmin"}',
        '{"emailAddress": "d@example.com", "emailAddress": "e@example.com", "role": "Participant"}',
    ],
)
def test_duplicate_keys_are_refused_whatever_their_case(client: httpx.Client, ws: WS, body: str) -> None:
    """A key given twice (exactly, or in another letter case) is refused, never resolved by the last one."""
    err = check(client.post("/api/v1/users", content=body, headers=ws.headers), 422)
    assert err["details"][0]["code"] == "duplicateField", err
    check(client.get("/api/v1/users", params={"emailAddress": "d@example.com"}, headers=ws.headers), 404)


@pytest.mark.parametrize(
    ("path", "body", "target"),
    [
        ("/api/v1/users:bulk", '[{"emailAddress": "a@example.com"}, {"emailAddress": "b@x.com", "Role": 1, "role": 2}]',
         "/1/role"),
        ("/api/v1/users:bulk", '{"users": [{"emailAddress": "a@example.com"}], "USERS": []}', "USERS"),
        ("/api/v1/teams", '{"name": "T", "name": "U"}', "name"),
        ("/api/v1/team-members", '{"teamId": "x", "systemUserId": "y", "TEAMID": "z"}', "TEAMID"),
        ("/api/v1/custom-variables/{user}", '[{"name": "Q", "value": 1, "Value": 2}]', "/0/Value"),
    ],
)  # fmt: skip
def test_duplicate_keys_at_every_level_are_422_with_their_pointer(
    client: httpx.Client, ws: WS, path: str, body: str, target: str
) -> None:
    """Duplicates inside arrays and wrappers are found too, and named by their JSON pointer."""
    u = user(client, ws, "dup@example.com")
    r = client.post(path.replace("{user}", u["id"]), content=body, headers=ws.headers)
    err = check(r, 422)
    assert [d["target"] for d in err["details"] if d["code"] == "duplicateField"] == [target], err


def _entry(number: str) -> str:
    """A custom-variables body of one entry whose value is ``number`` as written."""
    return '[{"name": "Q", "value": ' + number + "}]"


def test_a_number_past_pythons_digit_limit_is_422(client: httpx.Client, ws: WS) -> None:
    """A JSON number of 5,000 digits (Python refuses to convert integers past 4,300) is a 422, wherever it is."""
    huge = "9" * 5000
    for path, body in (
        ("/api/v1/users", '{"emailAddress": "n@example.com", "firstName": ' + huge + "}"),
        ("/api/v1/users:bulk", "[" + huge + "]"),
        ("/api/v1/teams", '{"name": "N", "managerCanViewResults": -' + huge + ".5}"),
    ):
        err = check(client.post(path, content=body, headers=ws.headers), 422)
        assert err["details"][0]["code"] == "numberTooLong", err
    u = user(client, ws, "n@example.com")
    r = client.put(f"/api/v1/custom-variables/{u['id']}", content=_entry(huge), headers=ws.headers)
    assert check(r, 422, "/0/value")["details"][0]["code"] == "numberTooLong"


EXACT = [
    "18446744073709551616",  # 2**64
    "-9223372036854775809",  # one past a signed 64-bit integer
    "340282366920938463463374607431768211456",  # 2**128
    "1" + "0" * 999,  # the longest kept: 1,000 digits
    "0.1000000000000000055511151231257827021181583404541015625",  # exact binary of 0.1, longer than a double
    "3.14159265358979323846264338327950288419716939937510",
    "-0.000000000000000000000000000001",
    "1E+400",
    "1.5e-300",
]


def test_custom_variable_numbers_keep_their_exact_digits(client: httpx.Client, ws: WS) -> None:
    """Integers past 64 bits and decimals past a double's precision are stored and answered digit for digit."""
    u = user(client, ws, "exact@example.com")
    body = "[" + ",".join(f'{{"name": "V{i}", "value": {n}}}' for i, n in enumerate(EXACT)) + "]"
    r = client.put(f"/api/v1/custom-variables/{u['id']}", content=body, headers=ws.headers)
    assert r.status_code == 200, r.text
    for answer in (r, client.get(f"/api/v1/custom-variables/{u['id']}", headers=ws.headers)):
        # The same digits and exponent (Decimal's own notation may write 0.000001 as 1E-6).
        values = {
            e["name"]: e["value"].as_tuple() for e in json.loads(answer.text, parse_float=Decimal, parse_int=Decimal)
        }
        assert values == {f"V{i}": Decimal(n).as_tuple() for i, n in enumerate(EXACT)}
    again = client.put(f"/api/v1/custom-variables/{u['id']}", content=body, headers=ws.headers)
    assert again.status_code == 200, again.text  # the second replace audits the first's values as "before"


def test_a_number_of_more_than_1000_digits_is_422(client: httpx.Client, ws: WS) -> None:
    """Past 1,000 digits (as written out without an exponent) a value is refused rather than rounded."""
    u = user(client, ws, "long@example.com")
    for number in ("1" + "0" * 1000, "1e1000", "1e-1000", "0." + "1" * 1000):
        r = client.put(f"/api/v1/custom-variables/{u['id']}", content=_entry(number), headers=ws.headers)
        err = check(r, 422, "/0/value")
        assert err["details"][0]["code"] == "numberTooLong", (number, err)


def test_custom_variable_dates_keep_four_digit_years(client: httpx.Client, ws: WS) -> None:
    """Years before 1000 come back with four digits, as the output form says."""
    u = user(client, ws, "old@example.com")
    entries = [{"name": "Q", "value": 1, "startDate": "0001-01-01", "endDate": "0999-12-31T23:59:59Z"}]
    r = client.put(f"/api/v1/custom-variables/{u['id']}", json=entries, headers=ws.headers)
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/custom-variables/{u['id']}", headers=ws.headers).json()
    assert (got[0]["startDate"], got[0]["endDate"]) == ("0001-01-01T00:00:00", "0999-12-31T23:59:59")
    assert r.json() == got


@pytest.mark.parametrize(
    "date",
    [
        "2024-01-01T00:00:00.5",
        "2024-01-01T00:00:00.000001Z",
        "2024-01-01T12:00:00.25+02:00",
    ],
)
def test_sub_second_dates_are_refused_not_truncated(client: httpx.Client, ws: WS, date: str) -> None:
    """The output form has whole seconds: a date with a fraction of a second is a 422 instead of losing it."""
    u = user(client, ws, "frac@example.com")
    r = client.put(f"/api/v1/custom-variables/{u['id']}", json=[{"name": "Q", "value": 1, "startDate": date}],
                   headers=ws.headers)  # fmt: skip
    assert check(r, 422, "/0/startDate")["details"][0]["code"] == "invalidDate"


def test_zero_fractions_of_a_second_are_whole_seconds(client: httpx.Client, ws: WS) -> None:
    """JavaScript's ``toISOString()`` writes ``.000Z``: nothing is lost, so it is accepted."""
    u = user(client, ws, "js@example.com")
    entries = [{"name": "Q", "value": 1, "startDate": "2024-03-01T10:00:00.000Z"}]
    r = client.put(f"/api/v1/custom-variables/{u['id']}", json=entries, headers=ws.headers)
    assert r.status_code == 200, r.text
    assert r.json()[0]["startDate"] == "2024-03-01T10:00:00"


@pytest.mark.parametrize(
    "date", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "99999-01-01", "2024-13-01", "2024-02-30"]
)
def test_dates_outside_the_calendar_are_422(client: httpx.Client, ws: WS, date: str) -> None:
    """An offset that carries a date past year 9999 or before year 1 is a 422, in a body and in ``at``."""
    u = user(client, ws, "edge@example.com")
    r = client.put(f"/api/v1/custom-variables/{u['id']}", json=[{"name": "Q", "value": 1, "endDate": date}],
                   headers=ws.headers)  # fmt: skip
    check(r, 422, "/0/endDate")
    check(client.get(f"/api/v1/custom-variables/{u['id']}", params={"at": date}, headers=ws.headers), 422, "at")


def test_huge_query_parameters_are_answered(client: httpx.Client, ws: WS) -> None:
    """Lookups with a value far longer than anything stored answer 404, never a 500."""
    u = user(client, ws, "long-q@example.com")
    for method, path, params in (
        ("GET", "/api/v1/users", {"emailAddress": "a" * 6000 + "@example.com"}),
        ("GET", "/api/v1/teams", {"name": "\u00e9" * 6000}),
        ("DELETE", f"/api/v1/users/{u['id']}/tags", {"value": "t" * 6000}),
        ("GET", "/app/Api/GetCustomProperties", {"id": "f" * 6000}),
        ("GET", f"/api/v1/custom-variables/{u['id']}", {"at": "2" * 6000}),
    ):
        r = client.request(method, path, params=params, headers=ws.headers)
        assert r.status_code in (200, 404, 422), (path, r.status_code, r.text[:200])
        assert "error" in r.json() or r.status_code == 200


def test_nul_in_the_log_in_form_re_renders_it(client: httpx.Client, ws: WS, db: Database) -> None:
    """Before any credentials: a NUL in the e-mail or the password re-renders the log-in form with an error."""
    make_user(db, ws.id, "nul@example.com", "FullAdmin")
    for fields in ({"email": "nul\x00@example.com", "password": "x"}, {"email": "nul@example.com", "password": "\x00"}):
        token = csrf_of(client.get("/login").text)
        r = client.post("/login", data={"csrf_token": token, **fields})
        assert r.status_code == 422, r.text[:300]
        assert 'name="password"' in r.text and "not allowed" in r.text


def test_nul_in_a_page_query_is_a_400_page(base_url: str, ws: WS, db: Database) -> None:
    """The pages read their query strings by the same rule: a search for NUL is an error page, not a 500."""
    make_user(db, ws.id, "pages@example.com", "FullAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as web:
        assert http_login(web, "pages@example.com").status_code == 303
        for path in ("/users?q=%00", "/teams?q=a%00", "/settings/activity?actor=%00", "/login?next=%00"):
            r = web.get(path)
            assert r.status_code == 400, (path, r.status_code)
            assert "text/html" in r.headers["content-type"] and "not allowed" in r.text


def test_activity_until_the_last_day_of_the_calendar(base_url: str, ws: WS, db: Database) -> None:
    """``until=9999-12-31`` means no upper bound (the day after it does not exist)."""
    make_user(db, ws.id, "calendar@example.com", "FullAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as web:
        assert http_login(web, "calendar@example.com").status_code == 303
        assert web.get("/settings/activity", params={"since": "0001-01-01", "until": "9999-12-31"}).status_code == 200
