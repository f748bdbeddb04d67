"""Delta links (README.md, "OData feed", "Changes since a read"; OData 4.01 Protocol §11.3 and the JSON Format's
delta payloads) over HTTP, on SQLite and PostgreSQL.

The property that proves them: a tracked full read, random writes (some running while the reads and the deltas
are read), then the deltas applied to the first read equal a fresh full read, for several queries."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from payroster import clock
from payroster.db.engine import Database
from payroster.services import changes
from tests.conftest import WS, make_workspace
from tests.odata.delta_client import apply_delta, is_removed, key_of, read_all

TRACK = {"Prefer": "odata.track-changes"}
V401 = {"OData-MaxVersion": "4.01"}


def _post(client: httpx.Client, ws: WS, path: str, body: Any) -> dict[str, Any]:
    r = client.post(path, json=body, headers=ws.headers)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


def _user(client: httpx.Client, ws: WS, n: int, **fields: Any) -> str:
    body = {"emailAddress": f"u{n}@example.com", "role": "Participant", **fields}
    return str(_post(client, ws, "/api/v1/users", body)["id"])


def _team(client: httpx.Client, ws: WS, name: str, **fields: Any) -> str:
    return str(_post(client, ws, "/api/v1/teams", {"name": name, **fields})["id"])


def _root(ws: WS) -> str:
    return f"/odata/{ws.slug}/"


# --- the tracked read --------------------------------------------------------------------------------


def test_a_tracked_read_applies_the_preference_and_ends_with_a_delta_link(client: httpx.Client, ws: WS) -> None:
    """Every page says ``Preference-Applied: odata.track-changes``; only the last one carries the delta link,
    which keeps the query's options and adds an opaque ``$deltatoken``."""
    for n in range(5):
        _user(client, ws, n)
    url = _root(ws) + "Users?$filter=role eq 'Participant'&$select=id,emailAddress"
    headers = {**ws.headers, **TRACK, "Prefer": "odata.track-changes, odata.maxpagesize=2"}
    held, delta, answers = read_all(client, url, headers)
    assert len(answers) == 3 and len(held) == 5
    for r in answers:
        applied = {p.strip() for p in r.headers["Preference-Applied"].split(",")}
        assert applied == {"odata.track-changes", "odata.maxpagesize=2"}
    assert [("@odata.deltaLink" in r.json()) for r in answers] == [False, False, True]
    assert delta is not None
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(delta).query))
    assert query["$filter"] == "role eq 'Participant'" and query["$select"] == "id,emailAddress"
    assert set(query) == {"$filter", "$select", "$deltatoken"}
    untracked = client.get(_root(ws) + "Users", headers=ws.headers)
    assert "@odata.deltaLink" not in untracked.json() and "Preference-Applied" not in untracked.headers


def test_nothing_changed_gives_an_empty_delta_and_a_new_link(client: httpx.Client, ws: WS) -> None:
    _user(client, ws, 1)
    _, delta, _ = read_all(client, _root(ws) + "Teams", ws.headers, track=True)
    assert delta is not None
    r = client.get(delta, headers=ws.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"] == []
    assert body["@odata.context"].endswith("$metadata#Teams/$delta")
    assert body["@odata.deltaLink"].startswith("http")


@pytest.mark.parametrize(
    "path",
    [
        "AuditEvents",
        "Users/$count",
        "Users(00000000-0000-0000-0000-000000000001)",
        "Users?$top=3",
        "Users?$at=2026-01-01",
    ],
)
def test_what_a_delta_cannot_follow_is_refused(client: httpx.Client, ws: WS, path: str) -> None:
    r = client.get(_root(ws) + path, headers={**ws.headers, **TRACK})
    assert r.status_code == 501, r.text
    assert r.json()["error"]["code"] == "NotImplemented"


# --- the delta ---------------------------------------------------------------------------------------


def test_a_delta_holds_changed_and_added_entities_whole_and_removed_ones_in_the_4_0_form(
    client: httpx.Client, ws: WS
) -> None:
    """A 4.0 client: changes whole, as the query shows them; an entity leaving the filter and a membership that
    ended as ``$deletedEntity`` entries with their reason; an untouched entity is not repeated."""
    a, b, c = (_user(client, ws, n, lastName="Smith") for n in range(3))
    team = _team(client, ws, "Sales")
    for uid in (a, b):
        _post(client, ws, "/api/v1/team-members", {"teamId": team, "systemUserId": uid})
    users_url = _root(ws) + "Users?$filter=lastName eq 'Smith'&$select=id,lastName,tags"
    _, users_delta, _ = read_all(client, users_url, ws.headers, track=True)
    _, members_delta, _ = read_all(client, _root(ws) + "TeamMembers", ws.headers, track=True)
    assert users_delta and members_delta

    _user(client, ws, 0, tags=["New"])  # changed, still in
    _user(client, ws, 1, lastName="Jones")  # leaves the filter
    d = _user(client, ws, 3, lastName="Smith")  # enters it (new)
    r = client.delete(f"/api/v1/teams/{team}/members/{b}", headers=ws.headers)
    assert r.status_code in (200, 204), r.text

    body = client.get(users_delta, headers=ws.headers).json()
    root = client.base_url.join(_root(ws))
    entries = {key_of(e, ("id",)): e for e in body["value"]}
    assert entries[(a,)] == {"id": a, "lastName": "Smith", "tags": ["New"]}
    assert entries[(d,)] == {"id": d, "lastName": "Smith", "tags": []}
    assert entries[(b,)] == {
        "@odata.context": f"{root}$metadata#Users/$deletedEntity",
        "id": f"{root}Users({b})",
        "reason": "changed",
    }
    assert (c,) not in entries
    assert body["@odata.context"] == f"{root}$metadata#Users(id,lastName,tags)/$delta"

    body = client.get(members_delta, headers=ws.headers).json()
    [ended] = [e for e in body["value"] if is_removed(e)]
    assert ended["reason"] == "deleted"
    assert ended["id"] == f"{root}TeamMembers(teamId={team},systemUserId={b})"


def test_a_4_01_client_reads_removed_entries_as_at_removed(client: httpx.Client, ws: WS) -> None:
    a = _user(client, ws, 0)
    team = _team(client, ws, "Sales")
    _post(client, ws, "/api/v1/team-members", {"teamId": team, "systemUserId": a})
    h = {**ws.headers, **V401}
    _, teams_delta, _ = read_all(client, _root(ws) + "Teams", h, track=True)
    _, members_delta, _ = read_all(client, _root(ws) + "TeamMembers", h, track=True)
    assert teams_delta and members_delta
    assert client.delete(f"/api/v1/teams/{team}", headers=ws.headers).status_code == 204

    r = client.get(teams_delta, headers=h)
    assert r.headers["OData-Version"] == "4.01"
    root = client.base_url.join(_root(ws))
    assert r.json()["value"] == [{"@removed": {"reason": "deleted"}, "@id": f"{root}Teams({team})", "id": team}]
    [entry] = client.get(members_delta, headers=h).json()["value"]
    assert entry["@removed"] == {"reason": "deleted"}
    assert (entry["teamId"], entry["systemUserId"]) == (team, a)


def test_replaced_variables_are_removed_and_added(client: httpx.Client, ws: WS) -> None:
    """Replacing a target's variables gives them new ids: the old ones are removed, the new ones added."""
    a = _user(client, ws, 0)
    entries = [{"name": "Quota", "value": 100, "startDate": "2026-01-01"}]
    assert client.put(f"/api/v1/custom-variables/{a}", json=entries, headers=ws.headers).status_code == 200
    held, delta, _ = read_all(client, _root(ws) + "CustomVariables", ws.headers, track=True)
    [(old,)] = held
    entries[0]["value"] = 120
    assert client.put(f"/api/v1/custom-variables/{a}", json=entries, headers=ws.headers).status_code == 200
    assert delta is not None
    delta, seen = apply_delta(client, delta, ws.headers, held)
    assert [e["reason"] for e in seen if is_removed(e)] == ["deleted"]
    [(new,)] = held
    assert new != old and held[(new,)]["numberValue"] == 120


def test_a_large_delta_is_paged_with_next_links(client: httpx.Client, ws: WS) -> None:
    held, delta, _ = read_all(client, _root(ws) + "Users", ws.headers, track=True)
    assert delta is not None
    made = [_user(client, ws, n) for n in range(7)]
    pages = []
    url: str | None = delta
    while url is not None:
        body = client.get(url, headers={**ws.headers, "Prefer": "odata.maxpagesize=3"}).json()
        pages.append(body)
        url = body.get("@odata.nextLink")
    assert [len(p["value"]) for p in pages] == [3, 3, 1]
    assert "@odata.deltaLink" in pages[-1] and all("@odata.deltaLink" not in p for p in pages[:-1])
    assert sorted(e["id"] for p in pages for e in p["value"]) == sorted(made)


def test_an_expanded_team_renamed_changes_its_members(client: httpx.Client, ws: WS) -> None:
    """A user's expanded ``teams`` shows the team's name: renaming the team changes its members as the query
    shows them, and they come again whole."""
    a, b = _user(client, ws, 0), _user(client, ws, 1)
    team = _team(client, ws, "Sales")
    _post(client, ws, "/api/v1/team-members", {"teamId": team, "systemUserId": a})
    url = _root(ws) + "Users?$select=id&$expand=teams($select=name)"
    held, delta, _ = read_all(client, url, ws.headers, track=True)
    assert client.patch(f"/api/v1/teams/{team}", json={"name": "Field sales"}, headers=ws.headers).status_code == 200
    assert delta is not None
    _, seen = apply_delta(client, delta, ws.headers, held)
    assert {e["id"] for e in seen} == {a}
    assert held[(a,)]["teams"] == [{"name": "Field sales"}] and held[(b,)]["teams"] == []


# --- tokens ------------------------------------------------------------------------------------------


def _token(link: str) -> str:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))["$deltatoken"]


def test_tampered_foreign_and_mismatched_tokens_are_refused(client: httpx.Client, ws: WS, ws_b: WS) -> None:
    _, delta, _ = read_all(client, _root(ws) + "Users", ws.headers, track=True)
    _, delta_b, _ = read_all(client, _root(ws_b) + "Users", ws_b.headers, track=True)
    assert delta and delta_b
    token = _token(delta)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    cases = [
        (_root(ws) + "Users", forged, 400),
        (_root(ws) + "Users", "not-a-token", 400),
        (_root(ws) + "Users", "x" * 5000, 400),
        (_root(ws) + "Teams", token, 400),  # another query
        (_root(ws) + "Users", _token(delta_b), 404),  # another workspace's
    ]
    for path, value, status in cases:
        r = client.get(path, params={"$deltatoken": value}, headers=ws.headers)
        assert r.status_code == status, (path, value[:20], r.text)
        assert r.json()["error"]["target"] == "$deltatoken"
        assert "Traceback" not in r.text
    # B's key never reaches A's service, delta link or not.
    assert client.get(delta, headers=ws_b.headers).status_code == 404


def test_a_delta_link_older_than_the_kept_changes_is_gone(client: httpx.Client, ws: WS, db: Database) -> None:
    _, delta, _ = read_all(client, _root(ws) + "Users", ws.headers, track=True)
    _user(client, ws, 1)
    changes.number(db, ws.id, 1000)
    with db.write() as s:
        s.execute(update(changes.COUNTERS).where(changes.COUNTERS.c.workspace_id == ws.id).values(pruned_through=1000))
        s.execute(update(changes.COUNTERS).where(changes.COUNTERS.c.workspace_id == ws.id).values(last_sequence=1000))
    assert delta is not None
    r = client.get(delta, headers=ws.headers)
    assert r.status_code == 410, r.text
    assert r.json()["error"]["code"] == "Gone" and "full resync" in r.json()["error"]["message"]


# --- metadata and the audit trail --------------------------------------------------------------------

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


def test_metadata_declares_change_tracking_on_the_tracked_sets(client: httpx.Client, ws: WS) -> None:
    xml = ET.fromstring(client.get(_root(ws) + "$metadata", headers=ws.headers).content)
    tracked = {}
    for entity_set in xml.iter(f"{EDM}EntitySet"):
        for annotation in entity_set.findall(f"{EDM}Annotation"):
            if annotation.get("Term") == "Capabilities.ChangeTracking":
                record = annotation.find(f"{EDM}Record")
                assert record is not None
                values = {p.get("Property"): p for p in record.findall(f"{EDM}PropertyValue")}
                navs = [n.text for n in values["ExpandableProperties"].iter(f"{EDM}NavigationPropertyPath")]
                tracked[entity_set.get("Name")] = (values["Supported"].get("Bool"), navs)
    assert set(tracked) == {"Users", "Teams", "TeamMembers", "CustomVariables"}
    assert all(supported == "true" for supported, _ in tracked.values())
    assert "teams" in tracked["Users"][1] and tracked["CustomVariables"][1] == []


def test_audit_events_carry_their_change_feed_number(client: httpx.Client, ws: WS) -> None:
    _user(client, ws, 1)
    page = client.get("/api/v1/changes", params={"limit": 1000}, headers=ws.headers).json()["changes"]
    numbers = {c["targetId"] + c["action"]: c["sequence"] for c in page}
    r = client.get(_root(ws) + "AuditEvents?$select=targetId,action,sequence&$orderby=sequence", headers=ws.headers)
    assert r.status_code == 200, r.text
    feed = {e["targetId"] + e["action"]: e["sequence"] for e in r.json()["value"]}
    assert feed == numbers and len(feed) >= 2


# --- the property ------------------------------------------------------------------------------------

QUERIES = [
    "Users",
    "Users?$filter=active eq true and lastName eq 'B'",
    "Users?$select=id,emailAddress,role,tags",
    "Users?$expand=teams($select=id,name,description),customVariables",
    "Users?$filter=teams/any(t: t/description eq 'x')&$select=id",
    "Teams?$expand=members($select=id,lastName,active),customVariables",
    "TeamMembers",
    "TeamMembers?$expand=team($select=name),user($select=role)",
    "Teams?$filter=description eq 'x'&$select=id,name",
    "CustomVariables?$filter=name eq 'Quota'",
    "CustomVariables",
]
N_USERS, N_TEAMS = 5, 3
KINDS = ("upsert", "deactivate", "team", "team-patch", "team-delete", "join", "leave", "variables")
operation = st.tuples(
    st.sampled_from(KINDS), st.integers(0, N_USERS - 1), st.integers(0, N_TEAMS - 1), st.integers(0, 3)
)
_names = itertools.count()


class Writer:
    """Writes through the JSON API and keeps the ids it made (the only writer of its workspace)."""

    def __init__(self, client: httpx.Client, ws: WS) -> None:
        self.c, self.ws = client, ws
        self.users: dict[int, str] = {}
        self.teams: dict[int, str] = {}

    def run(self, ops: list[tuple[str, int, int, int]]) -> None:
        for op in ops:
            self.one(*op)

    def one(self, kind: str, u: int, t: int, x: int) -> None:
        h = self.ws.headers
        if kind == "upsert":
            body = {"emailAddress": f"u{u}@example.com", "role": ["Participant", "LimitedAdmin"][x % 2],
                    "lastName": "AB"[x % 2], "tags": [f"t{x}"]}  # fmt: skip
            self.users[u] = self._ok(self.c.post("/api/v1/users", json=body, headers=h))["id"]
        elif kind == "deactivate" and u in self.users:
            self._ok(self.c.patch(f"/api/v1/users/{self.users[u]}", json={"role": "Deactivated"}, headers=h))
        elif kind == "team":
            body = {"name": f"T{t}", "description": "xy"[x % 2]}
            self.teams[t] = self._ok(self.c.post("/api/v1/teams", json=body, headers=h))["id"]
        elif kind == "team-patch" and t in self.teams:
            self._ok(self.c.patch(f"/api/v1/teams/{self.teams[t]}", json={"description": "xyz"[x % 3]}, headers=h))
        elif kind == "team-delete" and t in self.teams:
            r = self.c.delete(f"/api/v1/teams/{self.teams.pop(t)}", headers=h)
            assert r.status_code == 204, r.text
        elif kind == "join" and u in self.users and t in self.teams:
            pair = {"teamId": self.teams[t], "systemUserId": self.users[u]}
            self._ok(self.c.post("/api/v1/team-members", json=pair, headers=h))
        elif kind == "leave" and u in self.users and t in self.teams:
            r = self.c.delete(f"/api/v1/teams/{self.teams[t]}/members/{self.users[u]}", headers=h)
            assert r.status_code in (200, 204), r.text
        elif kind == "variables":
            target = self.users.get(u) if x % 2 else self.teams.get(t)
            if target is not None:
                entries = [{"name": ["Quota", "Rate"][i % 2], "value": x * 10 + i} for i in range(x % 3)]
                self._ok(self.c.put(f"/api/v1/custom-variables/{target}", json=entries, headers=h))

    @staticmethod
    def _ok(r: httpx.Response) -> dict[str, Any]:
        assert r.status_code in (200, 201), r.text
        answer: dict[str, Any] = r.json() if r.content else {}
        return answer


def _concurrently(writer: Writer, ops: list[tuple[str, int, int, int]], reads: Any) -> Any:
    """``reads()`` while another thread writes ``ops``; what the reads returned."""
    failures: list[BaseException] = []

    def write() -> None:
        try:
            writer.run(ops)
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        return reads()
    finally:
        thread.join()
        assert not failures, failures


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    setup=st.lists(operation, min_size=3, max_size=12),
    during_read=st.lists(operation, max_size=10),
    between=st.lists(operation, min_size=1, max_size=15),
    during_delta=st.lists(operation, max_size=10),
)
def test_replaying_deltas_over_a_read_equals_a_fresh_read(
    base_url: str,
    db: Database,
    setup: list[tuple[str, int, int, int]],
    during_read: list[tuple[str, int, int, int]],
    between: list[tuple[str, int, int, int]],
    during_delta: list[tuple[str, int, int, int]],
) -> None:
    """The tracked reads run while a writer thread writes, more writes follow, the deltas are read while the
    writer writes again, then once more after it stopped: for every query, what the client holds equals a
    fresh full read (same keys, same values). Small pages make the reads and the deltas page."""
    ws = make_workspace(db, f"Delta {next(_names)}")
    pages = {**ws.headers, "Prefer": "odata.maxpagesize=2"}
    with httpx.Client(base_url=base_url, timeout=60) as reads, httpx.Client(base_url=base_url, timeout=60) as writes:
        writer = Writer(writes, ws)
        writer.run(setup)
        urls = [_root(ws) + q for q in QUERIES]

        def tracked() -> list[tuple[dict[Any, Any], str | None, Any]]:
            tracking = {**ws.headers, "Prefer": "odata.track-changes,odata.maxpagesize=2"}
            return [read_all(reads, url, tracking) for url in urls]

        first = _concurrently(writer, during_read, tracked)
        writer.run(between)

        def deltas() -> list[str]:
            return [apply_delta(reads, str(link), pages, held)[0] for held, link, _ in first]

        links = _concurrently(writer, during_delta, deltas)
        for (held, _, _), link, url in zip(first, links, urls, strict=True):
            apply_delta(reads, link, ws.headers, held)
            fresh, _, _ = read_all(reads, url, ws.headers)
            wrong = {k: (held.get(k), fresh.get(k)) for k in held.keys() | fresh.keys() if held.get(k) != fresh.get(k)}
            assert wrong == {}, url


def test_replacing_variables_with_the_same_entries_changes_nothing(client: httpx.Client, ws: WS) -> None:
    """A no-op replace writes no event, so it may not give the entries new ids either (the delta would never
    hear of them); the same value with other digits (10.0 for 10) is a change, and audited."""
    a = _user(client, ws, 0)
    entries: list[dict[str, Any]] = [
        {"name": "Quota", "value": 10, "startDate": "2026-01-01"},
        {"name": "Rate", "value": 1},
    ]
    held, delta, _ = read_all(client, _root(ws) + "CustomVariables", ws.headers, track=True)
    ids = []
    for value in (10, 10, 10.0):
        entries[0]["value"] = value
        assert client.put(f"/api/v1/custom-variables/{a}", json=entries, headers=ws.headers).status_code == 200
        ids.append(sorted(client.get(_root(ws) + "CustomVariables", headers=ws.headers).json()["value"], key=str))
    assert ids[0] == ids[1] and ids[1] != ids[2]
    assert delta is not None
    apply_delta(client, delta, ws.headers, held)
    assert sorted(held.values(), key=str) == ids[2]


# --- a recorded change taking effect on its date ----------------------------------------------------------------


def test_a_change_recorded_for_a_later_date_is_a_change_on_that_date(client: httpx.Client, ws: WS) -> None:
    """A membership ended and another started for 1 March, a manager and a parent team changed from 1 March, all
    recorded on 15 February: on 1 March, with no write, they are events of the change feed (channel ``schedule``)
    and each tracked query's delta holds them, so replaying it equals a fresh read of that day."""
    h = ws.headers
    with clock.frozen(dt.date(2026, 2, 15)):
        boss, other, rep = _user(client, ws, 1), _user(client, ws, 2), _user(client, ws, 3)
        root, east, west = _team(client, ws, "Root"), _team(client, ws, "East"), _team(client, ws, "West")
        for path, body in (
            (f"/api/v1/users/{rep}", {"directManagerId": boss}),
            (f"/api/v1/users/{rep}", {"directManagerId": other, "effectiveDate": "2026-03-01"}),
            (f"/api/v1/teams/{west}", {"parentTeamId": root, "effectiveDate": "2026-03-01"}),
        ):
            assert client.patch(path, json=body, headers=h).status_code == 200
        _post(client, ws, "/api/v1/team-members", {"systemUserId": rep, "teamId": east})
        _post(client, ws, "/api/v1/team-members:delete", {"systemUserId": rep, "teamId": east, "validTo": "2026-03-01"})
        _post(client, ws, "/api/v1/team-members", {"systemUserId": rep, "teamId": west, "validFrom": "2026-03-01"})
        queries = [_root(ws) + q for q in ("TeamMembers", "Users?$select=id,directManagerId", "Teams")]
        tracked = [read_all(client, q, h, track=True)[:2] for q in queries]
        cursor = client.get("/api/v1/changes", params={"limit": 1000}, headers=h).json()["next"]
        assert client.get("/api/v1/changes", params={"after": cursor}, headers=h).json()["changes"] == []
    with clock.frozen(dt.date(2026, 3, 1)):
        got = client.get("/api/v1/changes", params={"after": cursor}, headers=h).json()["changes"]
        assert {e["channel"] for e in got} == {"schedule"}
        assert {e["actor"]["kind"] for e in got} == {"system"}
        said = {(e["action"], e["targetId"], c["field"], c["before"], c["after"]) for e in got for c in e["changes"]}
        assert said == {
            ("membership.removed", east, "teamId", east, None),
            ("membership.removed", east, "systemUserId", rep, None),
            ("membership.added", west, "teamId", None, west),
            ("membership.added", west, "systemUserId", None, rep),
            ("user.updated", rep, "directManagerId", boss, other),
            ("team.updated", west, "parentTeamId", None, root),
        }
        for query, (held, link) in zip(queries, tracked, strict=True):
            assert link is not None
            before = {k: dict(v) for k, v in held.items()}
            _, entries = apply_delta(client, link, h, held)
            assert entries, f"{query}: the day's changes are in its delta"
            assert held == read_all(client, query, h)[0], query
            assert held != before, query
        # The next day nothing more happens: no event, empty deltas.
    with clock.frozen(dt.date(2026, 3, 2)):
        assert (
            client.get("/api/v1/changes", params={"after": cursor, "limit": 1000}, headers=h).json()["changes"] == got
        )
