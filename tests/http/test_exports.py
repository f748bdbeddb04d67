"""Exports over the JSON API (README.md, "Exports"): columns, filters, roles, tenancy, CSV injection, streaming,
XLSX read back by two independent readers, and the users round trip through the import."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from typing import Any

import httpx
import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from payroster import clock
from payroster.db.engine import Database
from payroster.services import apikeys, bulk, csvimport, exports
from payroster.services.context import Actor
from tests.conftest import WS, make_workspace, refused_within_key_ttl

BOM = "\ufeff"
KINDS = exports.KINDS
# Names a spreadsheet would run (a tab or carriage return cannot be stored in a name: tests/unit/test_cells.py).
INJECTIONS = ['=HYPERLINK("http://x")', "+1+2", "-3", "@SUM(A1)", "'quoted", "'=both"]


def rows_of(response: httpx.Response) -> list[list[str]]:
    """A CSV answer's rows, header first, after checking the BOM."""
    text = response.content.decode("utf-8")
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def xlsx_rows(content: bytes) -> tuple[list[list[str]], list[list[str]]]:
    """The first sheet's rows as openpyxl and as calamine read them (empty cells as '')."""
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    first = [["" if v is None else str(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0)
    second = [["" if v is None else str(v) for v in row] for row in sheet.to_python()]
    return first, second


def get(client: httpx.Client, ws: WS, path: str, **params: str) -> httpx.Response:
    return client.get(f"/api/v1/exports/{path}", params=params, headers=ws.headers)


@pytest.fixture
def people(client: httpx.Client, ws: WS) -> dict[str, Any]:
    """Users with tags, aliases, accents and formula-like names; two teams (one the other's parent) with a
    manager and members; custom variables on a user and a team."""
    rows = [
        {"emailAddress": "zoe@acme.example", "role": "Participant", "firstName": "Zoë", "lastName": "Ångström",
         "tags": ["West", "AE"], "aliases": ["ID-1", "zoe.a"]},
        {"emailAddress": "eve@acme.example", "role": "LimitedAdmin", "firstName": INJECTIONS[0], "lastName": "-3",
         "tags": ["@home"]},
        {"emailAddress": "bob@acme.example", "role": "Participant", "firstName": "Bob", "lastName": "+1+2"},
        {"emailAddress": "old@acme.example", "role": "Deactivated"},
    ]  # fmt: skip
    client.post("/api/v1/users", json={"emailAddress": "old@acme.example", "role": "Participant"}, headers=ws.headers)
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    ids = {r["emailAddress"]: client.get("/api/v1/users", params={"emailAddress": r["emailAddress"]},
                                         headers=ws.headers).json()["id"] for r in rows}  # fmt: skip
    boss = {"emailAddress": "zoe@acme.example", "directManagerId": ids["eve@acme.example"]}
    assert client.post("/api/v1/users:bulk", json=[boss], headers=ws.headers).status_code == 200
    parent = client.post("/api/v1/teams", json={"name": "Sales", "managerId": ids["eve@acme.example"]},
                         headers=ws.headers).json()  # fmt: skip
    child = client.post("/api/v1/teams", json={"name": "West Coast", "parentTeamId": parent["id"],
                        "description": "=cmd|' /C calc'!A0", "managerCanViewCredits": True},
                        headers=ws.headers).json()  # fmt: skip
    for team, email in ((child, "zoe@acme.example"), (child, "bob@acme.example"), (parent, "eve@acme.example")):
        r = client.post("/api/v1/team-members", json={"systemUserId": ids[email], "teamId": team["id"]},
                        headers=ws.headers)  # fmt: skip
        assert r.status_code in (200, 201), r.text
    client.put(f"/api/v1/custom-variables/{ids['zoe@acme.example']}", headers=ws.headers, json=[
        {"name": "Quota", "value": 1200.50, "startDate": "2026-01-01", "endDate": "2026-07-01"},
        {"name": "Quota", "value": 1500, "startDate": "2026-07-01"},
        {"name": "Region", "value": "=West"},
    ]).raise_for_status()  # fmt: skip
    client.put(f"/api/v1/custom-variables/{child['id']}", headers=ws.headers,
               json=[{"name": "Target", "value": -5}]).raise_for_status()  # fmt: skip
    return {"users": ids, "parent": parent["id"], "child": child["id"]}


def test_users_csv_has_the_import_columns_neutralised_cells_and_the_page_filters(
    client: httpx.Client, ws: WS, people: dict[str, Any]
) -> None:
    r = get(client, ws, "users.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="payroster-users-' in r.headers["content-disposition"]
    header, *body = rows_of(r)
    assert header == ["emailAddress", "role", "firstName", "lastName", "directManagerEmail", "tags", "aliases"]
    by_email = {row[0]: row for row in body}
    assert [row[0] for row in body] == sorted(by_email)  # e-mail order
    # The manager by e-mail, as the import reads it (an id names nobody in another workspace).
    assert by_email["zoe@acme.example"] == ["zoe@acme.example", "Participant", "Zoë", "Ångström", "eve@acme.example",
                                            "West|AE", "ID-1|zoe.a"]  # fmt: skip
    assert by_email["bob@acme.example"][4] == ""
    # OWASP's CSV injection advice: a leading =, +, -, @ goes behind a single quote.
    assert by_email["eve@acme.example"][2:4] == ["'" + INJECTIONS[0], "'-3"]
    assert by_email["eve@acme.example"][5] == "'@home"
    assert by_email["bob@acme.example"][3] == "'+1+2"
    assert by_email["old@acme.example"][1] == "Deactivated"
    assert len(body) == 5  # the four and the workspace's admin

    def emails(**params: str) -> list[str]:
        return [row[0] for row in rows_of(get(client, ws, "users.csv", **params))[1:]]

    assert emails(status="active") == sorted(set(by_email) - {"old@acme.example"})
    assert emails(status="deactivated") == ["old@acme.example"]
    assert emails(role="LimitedAdmin") == ["eve@acme.example"]
    assert emails(q="west") == ["zoe@acme.example"]  # a tag
    # A filter on one tag still exports every tag and alias of the users it selects.
    assert rows_of(get(client, ws, "users.csv", q="west"))[1][5:] == ["West|AE", "ID-1|zoe.a"]
    assert emails(q="zoe.a") == ["zoe@acme.example"]  # an alias
    assert emails(q="zoë") == ["zoe@acme.example"]
    assert get(client, ws, "users.csv", status="sleeping").status_code == 422
    assert get(client, ws, "users.pdf").status_code == 422


def test_teams_memberships_variables_and_events_with_their_filters(
    client: httpx.Client, ws: WS, people: dict[str, Any]
) -> None:
    header, *teams = rows_of(get(client, ws, "teams.csv"))
    assert header == ["name", "description", "parentTeam", "managerEmail", "managerCanViewResults",
                      "managerCanViewCredits", "membersCanViewCredits"]  # fmt: skip
    assert teams == [
        ["Sales", "", "", "eve@acme.example", "false", "false", "false"],
        ["West Coast", "'=cmd|' /C calc'!A0", "Sales", "", "false", "true", "false"],
    ]
    assert rows_of(get(client, ws, "teams.csv", q="west"))[1:] == teams[1:]

    header, *members = rows_of(get(client, ws, "memberships.csv"))
    assert header == ["teamName", "emailAddress", "validFrom", "validTo"]
    today = clock.today().isoformat()  # a membership's period: from the day it was added, open
    assert members == [
        ["Sales", "eve@acme.example", today, ""],
        ["West Coast", "bob@acme.example", today, ""],
        ["West Coast", "zoe@acme.example", today, ""],
    ]
    assert rows_of(get(client, ws, "memberships.csv", team="west coast"))[1:] == members[1:]
    assert rows_of(get(client, ws, "memberships.csv", team=people["parent"]))[1:] == members[:1]
    assert rows_of(get(client, ws, "memberships.csv", user="ZOE@acme.example"))[1:] == members[2:]
    assert rows_of(get(client, ws, "memberships.csv", team="No such team"))[1:] == []

    header, *entries = rows_of(get(client, ws, "custom-variables.csv"))
    assert header == ["targetType", "target", "name", "value", "startDate", "endDate"]
    assert sorted(entries) == [
        ["Team", "West Coast", "Target", "'-5", "", ""],
        ["User", "zoe@acme.example", "Quota", "1200.5", "2026-01-01T00:00:00", "2026-07-01T00:00:00"],
        ["User", "zoe@acme.example", "Quota", "1500", "2026-07-01T00:00:00", ""],
        ["User", "zoe@acme.example", "Region", "'=West", "", ""],
    ]
    assert rows_of(get(client, ws, "custom-variables.csv", targetType="Team"))[1:] == [
        ["Team", "West Coast", "Target", "'-5", "", ""]
    ]
    assert {e[2] for e in rows_of(get(client, ws, "custom-variables.csv", target="zoe@acme.example"))[1:]} == {
        "Quota",
        "Region",
    }
    assert len(rows_of(get(client, ws, "custom-variables.csv", name="quota"))[1:]) == 2

    header, *events = rows_of(get(client, ws, "audit-events.csv"))
    assert header == ["occurredAt", "actor", "actorKind", "channel", "action", "targetType", "targetId", "changes"]
    assert [e[0] for e in events] == sorted((e[0] for e in events), reverse=True)  # newest first
    teams_made = rows_of(get(client, ws, "audit-events.csv", action="team.created"))[1:]
    assert {e[6] for e in teams_made} == {people["parent"], people["child"]}
    about_zoe = rows_of(get(client, ws, "audit-events.csv", target=people["users"]["zoe@acme.example"]))[1:]
    # Events about Zoe: her own, and the teams she joined or left (recorded against the team), as her Activity tab.
    assert about_zoe and {e[6] for e in about_zoe if e[5] != "membership"} == {people["users"]["zoe@acme.example"]}
    assert all(people["users"]["zoe@acme.example"] in e[7] for e in about_zoe if e[5] == "membership")
    assert rows_of(get(client, ws, "audit-events.csv", since="2999-01-01"))[1:] == []
    assert get(client, ws, "audit-events.csv", since="yesterday").status_code == 422
    assert get(client, ws, "users.csv", q="a\x00b").status_code == 422


@pytest.mark.parametrize("kind", KINDS)
def test_xlsx_reads_the_same_in_openpyxl_and_calamine_as_the_csv(
    client: httpx.Client, ws: WS, people: dict[str, Any], kind: str
) -> None:
    r = get(client, ws, f"{kind}.xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == exports.FORMATS["xlsx"]
    assert "content-length" not in r.headers and r.headers["transfer-encoding"] == "chunked"  # streamed
    first, second = xlsx_rows(r.content)
    expected = rows_of(get(client, ws, f"{kind}.csv"))
    assert first == second == expected
    assert len(expected) > 1


def test_roles_limited_admin_may_export_participant_may_not(client: httpx.Client, ws: WS, db: Database) -> None:
    def key_of(email: str, role: str) -> str:
        r = client.post("/api/v1/users", json={"emailAddress": email, "role": role}, headers=ws.headers)
        uid = uuid.UUID(r.json()["id"])
        with db.write(ws.id) as s:
            return apikeys.issue(s, Actor(ws.id, None, "cli", "cli"), uid, "k")[0]

    limited, participant = key_of("lim@acme.example", "LimitedAdmin"), key_of("par@acme.example", "Participant")
    for kind in KINDS:
        assert client.get(f"/api/v1/exports/{kind}.csv", headers={"X-ApiKey": limited}).status_code == 200
        assert client.get(f"/api/v1/exports/{kind}.xlsx", headers={"X-ApiKey": participant}).status_code == 403
        assert client.get(f"/api/v1/exports/{kind}.csv").status_code == 401
    # A limited admin's key reads exports only: every other route still wants a FullAdmin.
    assert (
        client.get("/api/v1/users", params={"emailAddress": "x@y.z"}, headers={"X-ApiKey": limited}).status_code == 403
    )
    # A limited admin made a participant loses the exports too.
    assert client.post("/api/v1/users", json={"emailAddress": "lim@acme.example", "role": "Participant"},
                       headers=ws.headers).status_code == 200  # fmt: skip
    refused_within_key_ttl(client, "/api/v1/exports/users.csv", {"X-ApiKey": limited})


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_another_workspace_never_sees_a_row(
    client: httpx.Client, ws: WS, ws_b: WS, people: dict[str, Any], fmt: str
) -> None:
    a_user = people["users"]["zoe@acme.example"]
    for kind, params in (
        ("users", {}),
        ("teams", {}),
        ("memberships", {}),
        ("memberships", {"team": people["child"]}),
        ("memberships", {"user": a_user}),
        ("custom-variables", {}),
        ("custom-variables", {"target": a_user}),
        ("audit-events", {}),
        ("audit-events", {"target": a_user}),
    ):
        r = get(client, ws_b, f"{kind}.{fmt}", **params)
        assert r.status_code == 200, r.text
        rows = rows_of(r) if fmt == "csv" else xlsx_rows(r.content)[0]
        text = repr(rows)
        for secret in ("acme.example", "Zoë", "West Coast", "Sales", a_user, people["child"]):
            assert secret not in text, (kind, params, secret)
        if kind != "users" and kind != "audit-events":
            assert rows[1:] == [], (kind, params)


def test_csv_streams_its_first_bytes_before_the_body_is_read(client: httpx.Client, ws: WS) -> None:
    rows = [
        {"emailAddress": f"p{i:05}@acme.example", "role": "Participant", "firstName": "P" * 40} for i in range(2500)
    ]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    with client.stream("GET", "/api/v1/exports/users.csv", headers=ws.headers) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers and r.headers["transfer-encoding"] == "chunked"
        chunks = r.iter_raw()
        first = next(chunks)
        rest = b"".join(chunks)
    # The header row goes out before the first chunk of rows is read, in a chunk of its own.
    assert first.decode().startswith(BOM + "emailAddress,role,")
    assert len(first) < len(first + rest) / 10
    assert len((first + rest).decode().splitlines()) == 1 + 2501


def test_users_round_trip_through_the_import_into_a_new_workspace(client: httpx.Client, ws: WS, db: Database) -> None:
    accents = ["Zoë", "Ångström", "Müller", "Łukasz", "Ñandú", "Øre", "José", "Ærø"]
    rows = []
    for i in range(300):
        rows.append({
            "emailAddress": f"rt{i:03}.{accents[i % 8].lower()}@acme.example" if i % 5 else f"rt{i:03}@acme.example",
            "role": ("Participant", "LimitedAdmin", "FullAdmin")[i % 3],
            "firstName": INJECTIONS[i % len(INJECTIONS)] if i % 4 == 0 else accents[i % 8],
            "lastName": f"Nom {accents[(i + 3) % 8]}" if i % 7 else None,
            "tags": [["=SUM(1)", "Ünï"], [f"T{i % 11}", "=SUM(1)"], [accents[i % 8]]][i % 3],
            "aliases": [[], [f"@alias{i}"], [f"A-{i}", f"@alias{i}"]][i % 3],
        })  # fmt: skip
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    first = get(client, ws, "users.csv", status="all")
    assert first.status_code == 200
    assert "'=SUM(1)" in first.text and "'@alias" in first.text
    # The import the CLI and the bulk page run: csvimport's reader, then the bulk service, all or nothing.
    other = make_workspace(db, "Copy")  # its admin has the same e-mail as the first's
    text = csvimport.decode(first.content)
    inputs = bulk.parse_rows(row for _, row in csvimport.iter_numbered(text))
    result = bulk.run(db, Actor(other.id, None, "cli", "import"), inputs)
    assert result.created == 300
    again = get(client, other, "users.csv", status="all")
    assert again.content == first.content
    # The import undid the neutralising: the stored names are the original ones.
    stored = client.get("/api/v1/users", params={"emailAddress": "rt000@acme.example"}, headers=other.headers).json()
    assert stored["firstName"] == INJECTIONS[0]


def test_openapi_names_each_export(client: httpx.Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    found = {path: op["get"] for path, op in paths.items() if path.startswith("/api/v1/exports/")}
    assert {op["operationId"] for op in found.values()} == {
        "exportUsers", "exportTeams", "exportMemberships", "exportCustomVariables", "exportAuditEvents",
    }  # fmt: skip
    assert all(op["tags"] == ["exports"] for op in found.values())
    users = found["/api/v1/exports/users.{fmt}"]
    assert {p["name"] for p in users["parameters"]} == {"fmt", "q", "status", "role"}
    assert set(users["responses"]["200"]["content"]) == set(exports.FORMATS.values())
    assert users["responses"]["403"]["description"] == "the key's owner is not an active FullAdmin or LimitedAdmin"


def test_a_cell_too_long_for_excel_is_refused_in_xlsx_and_kept_in_csv(client: httpx.Client, ws: WS) -> None:
    # The long cell comes after the first chunk of rows (in e-mail order): still refused before the first byte.
    many = [{"emailAddress": f"a{i:04}@acme.example", "role": "Participant"} for i in range(exports.CHUNK + 10)]
    assert client.post("/api/v1/users:bulk", json=many, headers=ws.headers).status_code == 200
    tags = [f"{i:03}" + "x" * 200 for i in range(170)]  # 34,679 characters with the separators
    r = client.post("/api/v1/users", json={"emailAddress": "t@acme.example", "role": "Participant", "tags": tags},
                    headers=ws.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    refused = get(client, ws, "users.xlsx")
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert f"the tags of t@acme.example (column tags): {len('|'.join(tags)):,} characters, more" in message
    assert "32,767" in message and "export as CSV" in message
    assert refused.json()["error"]["details"][0]["target"] == "tags"
    rows = rows_of(get(client, ws, "users.csv"))
    assert [row[5] for row in rows if row[0] == "t@acme.example"] == ["|".join(tags)]
    # The filter decides: without that user the workbook is sent whole.
    fine = get(client, ws, "users.xlsx", q="a00")
    assert fine.status_code == 200 and len(xlsx_rows(fine.content)[0]) == 1 + 100
    # The event that gave the tags holds them all in its changes: the audit export is refused as well.
    events = get(client, ws, "audit-events.xlsx")
    assert events.status_code == 422 and "(column changes)" in events.json()["error"]["message"]
    assert get(client, ws, "audit-events.xlsx", target="a0001@acme.example").status_code == 200


def test_a_variable_value_too_long_for_excel_is_refused_in_xlsx(client: httpx.Client, ws: WS) -> None:
    made = client.post("/api/v1/users", json={"emailAddress": "v@acme.example", "role": "Participant"},
                       headers=ws.headers)  # fmt: skip
    assert made.status_code == 201
    # Neutralised, a value of exactly the limit that begins with "=" is one character too long.
    entries = [{"name": "note", "value": "=" + "n" * (exports.XLSX_CELL - 1)}, {"name": "fits", "value": "f" * 32_767}]
    assert client.put(f"/api/v1/custom-variables/{made.json()['id']}", json=entries, headers=ws.headers).is_success
    refused = get(client, ws, "custom-variables.xlsx")
    assert refused.status_code == 422
    assert (
        "the value of note for v@acme.example (column value): 32,768 characters" in refused.json()["error"]["message"]
    )
    fine = get(client, ws, "custom-variables.xlsx", name="fits")
    assert fine.status_code == 200 and xlsx_rows(fine.content)[0][1][3] == "f" * 32_767


def test_xlsx_streams_its_first_bytes_before_the_body_is_read(client: httpx.Client, ws: WS) -> None:
    rows = [
        {"emailAddress": f"p{i:05}@acme.example", "role": "Participant",
         "firstName": "P" * 40 if i % 2 else 'Tom & <Jerry> "x"'}
        for i in range(2500)
    ]  # fmt: skip
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    with client.stream("GET", "/api/v1/exports/users.xlsx", headers=ws.headers) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers and r.headers["transfer-encoding"] == "chunked"
        chunks = list(r.iter_raw())
    # The workbook's opening parts go out alone, then the rows a chunk at a time, the zip's directory last.
    assert chunks[0].startswith(b"PK\x03\x04") and len(chunks) >= 4
    assert len(chunks[0]) < sum(map(len, chunks)) / 10
    book = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert book.namelist()[0] == "[Content_Types].xml" and book.testzip() is None
    first, second = xlsx_rows(b"".join(chunks))
    assert first == second == rows_of(get(client, ws, "users.csv")) and len(first) == 1 + 2501
    assert first[2][:3] == ["p00000@acme.example", "Participant", 'Tom & <Jerry> "x"']  # escaped in the XML
