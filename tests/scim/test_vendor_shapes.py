"""What Okta and Microsoft Entra ID actually send (README.md, "SCIM provisioning"), one test per shape, on both
databases."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, TeamMember, User
from tests.conftest import WS
from tests.scim.conftest import ENTERPRISE, EXT, GROUP, USER, Scim, is_error, new_id, scim_for


def okta_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1okta",
        "groups": [],
        "password": "1mP0ssible!",
        "active": True,
        **extra,
    }


def test_okta_create_with_password_groups_and_external_id(scim: Scim, db: Database) -> None:
    r = scim.post("Users", okta_user("ada@acme.example"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == body["meta"]["location"] and body["meta"]["location"].endswith(body["id"])
    assert r.headers["content-type"].startswith("application/scim+json")
    assert body["externalId"] == "00u1okta" and body["userName"] == "ada@acme.example"
    assert body["name"] == {"givenName": "Ada", "familyName": "Lovelace"} and body["active"] is True
    assert body[EXT]["role"] == "Participant"  # the workspace's default SCIM role
    fetched = scim.get(f"Users/{body['id']}")
    for answer in (r, fetched):
        assert "password" not in answer.text and "1mP0ssible" not in answer.text
    with db.read() as s:
        row = s.scalars(select(User).where(User.user_name == "ada@acme.example")).one()
        assert row.password_hash is None and row.email == "ada@acme.example"


def test_total_results_on_every_kind_of_page(scim: Scim) -> None:
    """totalResults is the size of the whole filtered set whether the page is full, partial, past the end
    or empty (a partial page answers without a count query, the others count)."""
    for i in range(5):
        scim.create_user(f"pager{i}@acme.example")
    want = 5
    for start, count, shown in ((1, 2, 2), (3, 2, 2), (4, 10, 2), (1, 10, 5), (9, 2, 0), (1, 0, 0), (5, 1, 1)):
        body = scim.get("Users", filter='userName sw "pager"', startIndex=start, count=count).json()
        assert (body["totalResults"], len(body["Resources"])) == (want, shown), (start, count, body)


def test_duplicate_user_name_is_409_uniqueness(scim: Scim) -> None:
    scim.create_user("dup@acme.example")
    again = scim.post("Users", okta_user("DUP@Acme.Example"))
    assert is_error(again, 409, "uniqueness")


def test_user_name_filter_ignores_case_and_zero_hits_are_200(scim: Scim) -> None:
    made = scim.create_user("Grace@Acme.Example")
    hit = scim.get("Users", filter='userName eq "grace@ACME.example"', startIndex=1, count=100)
    assert hit.status_code == 200
    body = hit.json()
    assert body["totalResults"] == 1 and [u["id"] for u in body["Resources"]] == [made["id"]]
    assert isinstance(body["startIndex"], int) and isinstance(body["itemsPerPage"], int)
    none = scim.get("Users", filter='userName eq "nobody@acme.example"')
    assert none.status_code == 200 and none.json()["totalResults"] == 0 and none.json()["Resources"] == []


def test_unknown_and_malformed_ids_are_404_scim_errors(scim: Scim) -> None:
    for ident in (new_id(), "not-a-uuid"):
        for path in (f"Users/{ident}", f"Groups/{ident}"):
            assert is_error(scim.get(path), 404)
            assert is_error(scim.patch(path, {"op": "replace", "value": {"active": False}}), 404)
            assert is_error(scim.delete(path), 404)


def test_okta_profile_update_by_put_after_get(scim: Scim) -> None:
    made = scim.post("Users", okta_user("put@acme.example")).json()
    current = scim.get(f"Users/{made['id']}").json()
    current["name"] = {"givenName": "Augusta", "familyName": "King"}
    current["displayName"] = "Augusta King"
    r = scim.put(f"Users/{made['id']}", current)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == {"givenName": "Augusta", "familyName": "King"}
    again = scim.get(f"Users/{made['id']}").json()
    assert again["displayName"] == "Augusta King" and again["id"] == made["id"]


def test_okta_put_without_our_extension_keeps_tags_and_role(scim: Scim) -> None:
    made = scim.create_user("keep@acme.example", **{EXT: {"role": "LimitedAdmin", "tags": ["AE", "West"]}})
    body = okta_user("keep@acme.example")
    r = scim.put(f"Users/{made['id']}", body)
    assert r.status_code == 200, r.text
    assert r.json()[EXT]["tags"] == ["AE", "West"] and r.json()[EXT]["role"] == "LimitedAdmin"


def test_okta_deactivate_replace_without_path(scim: Scim, client: httpx.Client, ws: WS) -> None:
    made = scim.create_user("gone@acme.example")
    r = scim.patch(f"Users/{made['id']}", {"op": "replace", "value": {"active": False}})
    assert r.status_code == 200 and r.json()["active"] is False
    api = client.get(f"/api/v1/users/{made['id']}", headers=ws.headers).json()
    assert api["role"] == "Deactivated" and api["active"] is False
    # Still listed and filterable by SCIM (a soft delete), and reactivation restores the last role.
    assert scim.get("Users", filter='userName eq "gone@acme.example"').json()["totalResults"] == 1
    back = scim.patch(f"Users/{made['id']}", {"op": "replace", "value": {"active": True}})
    assert back.json()["active"] is True and back.json()[EXT]["role"] == "Participant"


def test_entra_default_mode_capitalised_ops_and_string_booleans(scim: Scim) -> None:
    made = scim.create_user("entra@acme.example")
    off = scim.patch(f"Users/{made['id']}", {"op": "Replace", "path": "active", "value": "False"})
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    on = scim.patch(f"Users/{made['id']}", {"op": "Replace", "path": "active", "value": "True"})
    assert on.json()["active"] is True


def test_entra_aad_opt_multi_attribute_replace(scim: Scim) -> None:
    made = scim.create_user("opt@acme.example")
    value = {
        "displayName": "Opt In",
        "name.givenName": "Opt",
        "name.familyName": "In",
        f"{ENTERPRISE}:employeeNumber": "701",
        "active": False,
    }
    r = scim.patch(f"Users/{made['id']}", {"op": "replace", "value": value})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["displayName"] == "Opt In" and body["name"] == {"givenName": "Opt", "familyName": "In"}
    assert body["active"] is False
    assert "employeeNumber" not in r.text  # not stored, so not published: ignored, not refused


def test_entra_lookups_by_external_id_and_work_email(scim: Scim) -> None:
    made = scim.create_user(
        "E1234", externalId="a1b2-c3", emails=[{"value": "Lookup@Acme.Example", "type": "work", "primary": True}]
    )
    by_external = scim.get("Users", filter='externalId eq "a1b2-c3"')
    assert [u["id"] for u in by_external.json()["Resources"]] == [made["id"]]
    assert scim.get("Users", filter='externalId eq "A1B2-C3"').json()["totalResults"] == 0  # caseExact
    by_email = scim.get("Users", filter='emails[type eq "work"].value eq "lookup@acme.example"')
    assert [u["id"] for u in by_email.json()["Resources"]] == [made["id"]]


def test_groups_created_empty_and_found_by_name_without_members(scim: Scim) -> None:
    group = scim.create_group("Sales EMEA")
    assert "members" not in group or group["members"] == []
    user = scim.create_user("member@acme.example")
    scim.patch(f"Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": user["id"]}]})
    found = scim.get("Groups", filter='displayName eq "sales emea"', excludedAttributes="members")
    assert found.status_code == 200
    (only,) = found.json()["Resources"]
    assert only["id"] == group["id"] and "members" not in only
    assert [m["value"] for m in scim.get(f"Groups/{group['id']}").json()["members"]] == [user["id"]]
    assert "members" not in scim.get(f"Groups/{group['id']}", excludedAttributes="members").json()
    assert is_error(scim.post("Groups", {"schemas": [GROUP], "displayName": "SALES emea"}), 409, "uniqueness")


def members_of(scim: Scim, group_id: str) -> set[str]:
    return {m["value"] for m in scim.get(f"Groups/{group_id}").json().get("members", [])}


def test_entra_add_members_with_null_ref(scim: Scim) -> None:
    group = scim.create_group("Entra Adds")
    a, b = scim.create_user("a@acme.example"), scim.create_user("b@acme.example")
    value = [{"$ref": None, "value": a["id"]}, {"$ref": None, "value": b["id"]}]
    r = scim.patch(f"Groups/{group['id']}", {"op": "Add", "path": "members", "value": value})
    assert r.status_code == 200, r.text
    assert members_of(scim, group["id"]) == {a["id"], b["id"]}


def test_entra_remove_by_value_removes_only_that_member(scim: Scim) -> None:
    a, b, c = (scim.create_user(f"{n}@acme.example") for n in "xyz")
    group = scim.create_group("Entra Removes", [a["id"], b["id"], c["id"]])
    r = scim.patch(f"Groups/{group['id']}", {"op": "Remove", "path": "members", "value": [{"value": b["id"]}]})
    assert r.status_code == 200, r.text
    assert members_of(scim, group["id"]) == {a["id"], c["id"]}


def test_rfc_remove_by_filter_and_okta_replace_of_the_full_list(scim: Scim) -> None:
    a, b, c = (scim.create_user(f"{n}@acme.example") for n in ("p", "q", "r"))
    group = scim.create_group("Okta Push", [a["id"], b["id"]])
    r = scim.patch(f"Groups/{group['id']}", {"op": "remove", "path": f'members[value eq "{a["id"]}"]'})
    assert r.status_code == 200 and members_of(scim, group["id"]) == {b["id"]}
    full = [{"value": c["id"], "display": "r"}, {"value": a["id"], "display": "p"}]
    r = scim.patch(f"Groups/{group['id']}", {"op": "replace", "path": "members", "value": full})
    assert r.status_code == 200 and members_of(scim, group["id"]) == {a["id"], c["id"]}


def test_okta_rename_with_id_inside_value(scim: Scim) -> None:
    group = scim.create_group("Old Name")
    r = scim.patch(f"Groups/{group['id']}", {"op": "replace", "value": {"id": group["id"], "displayName": "New Name"}})
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "New Name"
    assert scim.get("Groups", filter='displayName eq "New Name"').json()["totalResults"] == 1


def test_unknown_member_is_a_no_op_and_one_bad_operation_changes_nothing(scim: Scim, ws_b: WS, db: Database) -> None:
    user = scim.create_user("real@acme.example")
    group = scim.create_group("Careful")
    foreign = scim_for(scim.http, db, ws_b).create_user("theirs@bravo.example")
    noise = [{"value": new_id()}, {"value": "garbage"}, {"value": foreign["id"]}, {"value": user["id"]}]
    r = scim.patch(f"Groups/{group['id']}", {"op": "add", "path": "members", "value": noise})
    assert r.status_code == 200, r.text
    assert members_of(scim, group["id"]) == {user["id"]}

    before = scim.get(f"Groups/{group['id']}").json()
    bad = scim.patch(
        f"Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "remove", "path": "members"},
        {"op": "frobnicate", "path": "displayName", "value": "x"},
    )
    assert is_error(bad, 400)
    after = scim.get(f"Groups/{group['id']}").json()
    assert after["displayName"] == "Careful" and after["members"] == before["members"]


def test_one_patch_adds_a_thousand_members_atomically(scim: Scim, client: httpx.Client, ws: WS, db: Database) -> None:
    rows = [{"emailAddress": f"bulk{i}@acme.example", "role": "Participant"} for i in range(1000)]
    made = client.post("/api/v1/users:bulk", json=rows, headers=ws.headers)
    assert made.status_code == 200, made.text
    ids = [u["id"] for u in made.json()["users"]]
    group = scim.create_group("Thousand")
    value = [{"value": i} for i in ids]
    r = scim.patch(f"Groups/{group['id']}", {"op": "add", "path": "members", "value": value})
    assert r.status_code == 200, r.text
    assert len(r.json()["members"]) == 1000
    with db.read() as s:
        stored = s.scalars(select(TeamMember.user_id).where(TeamMember.team_id == uuid.UUID(group["id"]))).all()
    assert sorted(str(m) for m in stored) == sorted(ids)
    # All or nothing: a thousand valid adds with one malformed operation leave the group empty.
    empty = scim.create_group("Still Empty")
    bad = scim.patch(
        f"Groups/{empty['id']}",
        {"op": "add", "path": "members", "value": value},
        {"op": "replace", "path": "members[value eq", "value": []},
    )
    assert is_error(bad, 400)
    assert members_of(scim, empty["id"]) == set()


def test_delete_hides_and_deactivates_and_re_post_restores_the_same_id(
    scim: Scim, client: httpx.Client, ws: WS
) -> None:
    made = scim.create_user("leaver@acme.example", **{EXT: {"role": "LimitedAdmin", "tags": ["AE"]}})
    group = scim.create_group("Leavers", [made["id"]])
    assert scim.delete(f"Users/{made['id']}").status_code == 204
    assert is_error(scim.get(f"Users/{made['id']}"), 404)
    assert scim.get("Users", filter='userName eq "leaver@acme.example"').json()["totalResults"] == 0
    assert members_of(scim, group["id"]) == set()
    api = client.get(f"/api/v1/users/{made['id']}", headers=ws.headers)
    assert api.status_code == 200 and api.json()["role"] == "Deactivated" and api.json()["tags"] == ["AE"]

    again = scim.post("Users", {"schemas": [USER], "userName": "LEAVER@acme.example"})
    assert again.status_code == 201, again.text
    assert again.json()["id"] == made["id"] and again.json()["active"] is True
    assert again.json()[EXT]["role"] == "LimitedAdmin"
    assert members_of(scim, group["id"]) == {made["id"]}


def test_another_workspace_token_sees_nothing(scim: Scim, db: Database, ws_b: WS) -> None:
    user = scim.create_user("private@acme.example")
    group = scim.create_group("Private Team", [user["id"]])
    other = scim_for(scim.http, db, ws_b)
    for path in (f"Users/{user['id']}", f"Groups/{group['id']}"):
        assert is_error(other.get(path), 404)
        assert is_error(other.patch(path, {"op": "replace", "value": {"displayName": "x"}}), 404)
        assert is_error(other.delete(path), 404)
    listed = other.get("Users").json()
    assert user["id"] not in {u["id"] for u in listed["Resources"]}
    assert other.get("Users", filter='userName eq "private@acme.example"').json()["totalResults"] == 0
    assert other.get("Groups", filter='displayName eq "Private Team"').json()["totalResults"] == 0
    assert other.get("Groups").json()["totalResults"] == 0
    # A's token on B's URL is refused like an unknown workspace.
    wrong = scim.http.get(f"/scim/v2/{ws_b.slug}/Users", headers=scim.headers)
    assert is_error(wrong, 404)
    assert scim.get(f"Users/{user['id']}").status_code == 200


def test_etags_and_if_match(scim: Scim) -> None:
    made = scim.create_user("etag@acme.example")
    got = scim.get(f"Users/{made['id']}")
    etag = got.headers["ETag"]
    assert etag.startswith('W/"') and etag == got.json()["meta"]["version"]
    stale = scim.patch(
        f"Users/{made['id']}", {"op": "replace", "path": "displayName", "value": "A"}, **{"If-Match": 'W/"old"'}
    )
    assert is_error(stale, 412)
    fresh = scim.patch(
        f"Users/{made['id']}", {"op": "replace", "path": "displayName", "value": "B"}, **{"If-Match": etag}
    )
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag


def test_paging_sorting_and_projection(scim: Scim) -> None:
    for i in range(7):
        scim.create_user(f"page{i}@acme.example", name={"familyName": f"Z{6 - i}"})
    seen: list[str] = []
    for start in (1, 4, 7):
        page = scim.get("Users", filter='userName sw "page"', startIndex=start, count=3, sortBy="name.familyName")
        body = page.json()
        assert body["totalResults"] == 7 and body["startIndex"] == start
        seen += [u["name"]["familyName"] for u in body["Resources"]]
    assert seen == [f"Z{i}" for i in range(7)]
    desc = scim.get("Users", filter='userName sw "page"', sortBy="name.familyName", sortOrder="descending", count=2)
    assert [u["name"]["familyName"] for u in desc.json()["Resources"]] == ["Z6", "Z5"]
    only = scim.get("Users", filter='userName eq "page0@acme.example"', attributes="userName").json()["Resources"][0]
    assert set(only) == {"schemas", "id", "userName"}
    count_only = scim.get("Users", count=0).json()
    assert count_only["totalResults"] >= 8 and count_only["Resources"] == []
    searched = scim.post(
        "Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "page"',
            "count": 2,
        },
    )
    assert searched.status_code == 200 and searched.json()["totalResults"] == 7


def test_filter_operators_compile_to_sql_with_literal_wildcards(scim: Scim) -> None:
    scim.create_user("pct@acme.example", displayName="100% sure_thing")
    scim.create_user("plain@acme.example", displayName="100 percent sure")
    assert scim.get("Users", filter='displayName co "0% s"').json()["totalResults"] == 1
    assert scim.get("Users", filter='displayName co "_"').json()["totalResults"] == 1
    assert scim.get("Users", filter='displayName ew "SURE"').json()["totalResults"] == 1
    assert scim.get("Users", filter='displayName pr and not (displayName co "%")').json()["totalResults"] == 1
    assert is_error(scim.get("Users", filter="displayName eq"), 400, "invalidFilter")
    assert is_error(scim.get("Users", filter='nonsense eq "x"'), 400, "invalidFilter")


def test_discovery_publishes_only_stored_attributes(scim: Scim) -> None:
    schemas = {s["id"]: s for s in scim.get("Schemas").json()["Resources"]}
    core = {a["name"] for a in schemas[USER]["attributes"]}
    assert "roles" not in core and "phoneNumbers" not in core and "addresses" not in core
    assert {"userName", "name", "displayName", "active", "emails", "password", "groups"} <= core
    ours = {a["name"]: a for a in schemas[EXT]["attributes"]}
    assert ours["role"]["canonicalValues"] == ["FullAdmin", "LimitedAdmin", "Participant"]
    assert {a["name"] for a in schemas[ENTERPRISE]["attributes"]} == {"manager"}
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["etag"]["supported"] and not config["bulk"]["supported"]
    assert is_error(scim.post("Bulk", {}), 501)
    assert is_error(scim.get("Schemas", filter="x"), 403)


def test_credentials(scim: Scim, client: httpx.Client, ws: WS) -> None:
    assert scim.http.get(f"{scim.root}/Users").status_code == 401
    assert (
        scim.http.get(f"{scim.root}/Users", headers={"Authorization": "Bearer prs_AAAAAAAA_" + "x" * 40}).status_code
        == 401
    )
    # A full admin's API key works too; audit events are written with the SCIM channel.
    r = scim.http.get(f"{scim.root}/Users", headers={"Authorization": f"Bearer {ws.key}"})
    assert r.status_code == 200
    made = scim.create_user("audited@acme.example")
    events = client.get(f"/api/v1/users/{made['id']}", headers=ws.headers)
    assert events.status_code == 200


def test_manager_round_trips_through_the_enterprise_extension(scim: Scim, client: httpx.Client, ws: WS) -> None:
    boss = scim.create_user("boss@acme.example")
    report = scim.create_user("report@acme.example", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    assert report[ENTERPRISE]["manager"]["value"] == boss["id"]
    api = client.get(f"/api/v1/users/{report['id']}", headers=ws.headers).json()
    assert api["directManagerId"] == boss["id"]
    bad = scim.post(
        "Users", {"schemas": [USER], "userName": "x@acme.example", ENTERPRISE: {"manager": {"value": new_id()}}}
    )
    assert is_error(bad, 400, "invalidValue")


def test_audit_records_scim_changes(scim: Scim, db: Database) -> None:
    made = scim.create_user("trail@acme.example")
    scim.patch(f"Users/{made['id']}", {"op": "replace", "path": "displayName", "value": "Trail"})
    with db.read() as s:
        events = s.execute(
            select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.target_id).where(AuditEvent.channel == "scim")
        ).all()
    mine = [(action, kind) for action, kind, target in events if str(target) == made["id"]]
    assert ("user.created", "scimToken") in mine and ("user.updated", "scimToken") in mine
