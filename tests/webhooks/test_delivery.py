"""Webhook delivery end to end: the live server, real delivery threads, a real receiver verifying every request
with the ``standardwebhooks`` package (README.md, "Webhooks")."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from payroster import clock
from payroster.db.engine import Database
from payroster.services import apikeys, webhooks
from payroster.services.context import Actor
from payroster.services.delivery import SCHEDULE
from tests.conftest import WS
from tests.webhooks.conftest import Receiver, make_users, wait_for


def _create(api: httpx.Client, ws: WS, url: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/api/v1/webhooks", json={"url": url, **fields}, headers=ws.headers)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def test_the_secret_is_shown_once_and_endpoints_are_managed_by_full_admins(
    api: httpx.Client, ws: WS, hook_base: str
) -> None:
    made = _create(api, ws, hook_base + "/x", description="payroll", eventTypes=["user.*", "membership.added"])
    assert set(made) >= {"id", "url", "description", "eventTypes", "enabled", "secret"}
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    assert made["eventTypes"] == ["user.*", "membership.added"]
    one = api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json()
    listed = api.get("/api/v1/webhooks", headers=ws.headers).json()["webhooks"]
    assert "secret" not in one and [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    patched = api.patch(f"/api/v1/webhooks/{made['id']}", json={"enabled": False}, headers=ws.headers).json()
    assert patched["enabled"] is False and patched["disabledReason"] == "disabled by an administrator"
    rotated = api.post(f"/api/v1/webhooks/{made['id']}:rotate-secret", headers=ws.headers).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != made["secret"]
    assert rotated["previousSecretUntil"] is not None
    assert api.delete(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).status_code == 204
    assert api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).status_code == 404
    events = api.get("/api/v1/changes", headers=ws.headers).json()["changes"]
    actions = [e["action"] for e in events if e["targetType"] == "webhook"]
    assert actions == ["webhook.created", "webhook.updated", "webhook.secretRotated", "webhook.deleted"]
    assert all("whsec_" not in str(e["changes"]) for e in events)


def test_malformed_urls_and_unknown_event_types_are_refused(api: httpx.Client, ws: WS, hook_base: str) -> None:
    bad_urls = [
        "not a url", "ftp://hooks.allowed.test/x", "https://", "http://public.test/x",  # http to a host not allowed
        "https://user:pw@public.test/x", "https://public.test:99999/x", "https://public.test/x#frag", "x" * 3000,
        "https://unknown-name.test/x",
    ]  # fmt: skip
    for url in bad_urls:
        r = api.post("/api/v1/webhooks", json={"url": url}, headers=ws.headers)
        assert r.status_code == 422, (url, r.text)
    for types in (["user.nope"], ["nope.*"], [], "user.*", [1]):
        r = api.post("/api/v1/webhooks", json={"url": hook_base + "/x", "eventTypes": types}, headers=ws.headers)
        assert r.status_code == 422, (types, r.text)
        assert r.json()["error"]["details"][0]["target"] == "/eventTypes"
    r = api.post("/api/v1/webhooks", json={"url": hook_base + "/x", "colour": "red"}, headers=ws.headers)
    assert r.status_code == 422
    assert api.get("/api/v1/webhooks", headers=ws.headers).json()["webhooks"] == []


def test_every_change_arrives_in_order_signed_once(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    made = _create(api, ws, hook_base + "/a", eventTypes=["user.created"])
    receiver.secrets["/a"] = [made["secret"]]
    deliver()
    make_users(api, ws.headers, 30)
    got = wait_for(lambda: len(receiver.delivered("/a")) >= 30 and receiver.delivered("/a"), what="30 deliveries")
    sequences = [d.payload["data"]["sequence"] for d in got]
    assert sequences == sorted(sequences) and len(set(sequences)) == 30
    assert {d.payload["type"] for d in got} == {"user.created"}
    assert all(d.payload["data"]["targetType"] == "user" and "timestamp" in d.payload for d in got)
    assert len({d.id for d in got}) == 30 and receiver.unverified == []
    # Attempts are written in batches, a moment after they are made.
    hook = f"/api/v1/webhooks/{made['id']}/attempts"
    log = wait_for(lambda: len(a := api.get(hook, headers=ws.headers).json()["attempts"]) == 30 and a)
    assert all(a["status"] == 200 and a["response"] == "ok" for a in log)


def test_a_receiver_down_for_a_while_gets_every_event_in_order_with_the_same_ids(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    made = _create(api, ws, hook_base + "/down", eventTypes=["user.*"])
    receiver.secrets["/down"] = [made["secret"]]
    receiver.status["/down"] = 503
    deliver()
    make_users(api, ws.headers, 10)
    wait_for(lambda: len([d for d in receiver.got if d.status == 503]) >= 4, what="four refused attempts")
    refused_ids = {d.id for d in receiver.got if d.status == 503}
    assert len(refused_ids) == 1, "the first event blocks the others: they are sent in order"
    state = api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json()
    assert state["failures"] >= 1 and state["failingSince"] is not None
    receiver.status["/down"] = 200
    got = wait_for(lambda: len(receiver.delivered("/down")) >= 10 and receiver.delivered("/down"), what="all ten")
    sequences = [d.payload["data"]["sequence"] for d in got]
    assert sequences == sorted(set(sequences)) and len(sequences) == 10
    assert got[0].id in refused_ids, "the retried event kept its webhook-id"
    assert [d.id for d in got] == [f"msg_{made['id'].replace('-', '')}_{s}" for s in sequences]

    # The position and the cleared failures are written a moment after the deliveries (in batches).
    def settled() -> dict[str, Any] | None:
        e: dict[str, Any] = api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json()
        return e if e["failures"] == 0 and e["position"] == sequences[-1] else None

    state = wait_for(settled, what="the position at the last event, the failures cleared")
    assert state["enabled"] is True and receiver.unverified == []


def test_410_gone_disables_the_endpoint(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    made = _create(api, ws, hook_base + "/gone", eventTypes=["user.*"])
    receiver.secrets["/gone"] = [made["secret"]]
    receiver.status["/gone"] = 410
    deliver()
    make_users(api, ws.headers, 3)
    state = wait_for(
        lambda: (e := api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json())["enabled"] is False and e
    )
    assert "410" in state["disabledReason"]
    assert len(receiver.got) == 1, "nothing more is sent to a gone endpoint"


def test_an_endpoint_failing_for_the_whole_schedule_is_disabled(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    made = _create(api, ws, hook_base + "/fail", eventTypes=["user.*"])
    receiver.secrets["/fail"] = [made["secret"]]
    receiver.status["/fail"] = 500
    deliver(webhook_retry_scale=0.00002)  # the 75-hour schedule in about 5 s
    make_users(api, ws.headers, 1)
    state = wait_for(
        lambda: (e := api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json())["enabled"] is False and e,
        timeout=30,
    )
    assert "whole retry schedule" in state["disabledReason"]
    assert len(receiver.got) == len(SCHEDULE) + 1
    assert len({d.id for d in receiver.got}) == 1
    gaps = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
    assert gaps[-1] > gaps[0], "the waits grow"
    # Enabled again, it resumes with the event it was stuck on.
    receiver.status["/fail"] = 200
    api.patch(f"/api/v1/webhooks/{made['id']}", json={"enabled": True}, headers=ws.headers)
    wait_for(lambda: len(receiver.delivered("/fail")) >= 1)
    assert receiver.delivered("/fail")[0].id == receiver.got[0].id


def test_after_a_rotation_both_secrets_sign_for_a_day(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    made = _create(api, ws, hook_base + "/rot")
    rotated = api.post(f"/api/v1/webhooks/{made['id']}:rotate-secret", headers=ws.headers).json()
    receiver.secrets["/rot"] = [made["secret"], rotated["secret"]]
    deliver()
    make_users(api, ws.headers, 1)
    got = wait_for(lambda: receiver.delivered("/rot"))
    assert got[0].verified_by == [0, 1], "the old and the new secret each verify the message"


def _age_rotation(db: Database, ws: WS, endpoint_id: str, by: dt.timedelta) -> None:
    """Move the endpoint's rotation ``by`` into the past, as the stored end of its overlap (``previous_until``)
    tells it: what the clock passing that long would do to the endpoint's row."""
    with db.write(ws.id) as s:
        e = webhooks.get(s, ws.id, endpoint_id, lock=True)
        assert e.previous_until is not None
        e.previous_until -= by


def test_the_old_secret_stops_signing_24_hours_after_a_rotation(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any], db: Database
) -> None:
    made = _create(api, ws, hook_base + "/expiry", eventTypes=["user.created"])
    hook = f"/api/v1/webhooks/{made['id']}"
    rotated = api.post(hook + ":rotate-secret", headers=ws.headers).json()
    receiver.secrets["/expiry"] = [made["secret"], rotated["secret"]]  # index 0: the old secret, 1: the new one
    deliver()
    # A minute short of the day: both still sign.
    _age_rotation(db, ws, made["id"], webhooks.ROTATION_OVERLAP - dt.timedelta(minutes=1))
    assert api.get(hook, headers=ws.headers).json()["previousSecretUntil"] is not None
    make_users(api, ws.headers, 1, prefix="day")
    got = wait_for(lambda: receiver.delivered("/expiry"), what="the delivery within the day")
    assert got[0].verified_by == [0, 1], "within the day the old secret still verifies"
    # Two minutes later (the day and a minute after the rotation): only the new secret signs.
    _age_rotation(db, ws, made["id"], dt.timedelta(minutes=2))
    assert api.get(hook, headers=ws.headers).json()["previousSecretUntil"] is None
    make_users(api, ws.headers, 1, prefix="later")
    got = wait_for(lambda: len(receiver.delivered("/expiry")) >= 2 and receiver.delivered("/expiry"))
    assert len(got) == 2 and got[1].payload["data"]["sequence"] > got[0].payload["data"]["sequence"]
    assert got[1].verified_by == [1], "after the day the old secret no longer verifies; the new one does"
    assert receiver.unverified == []


def test_an_endpoint_gets_only_the_event_types_it_asked_for(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    teams = _create(api, ws, hook_base + "/teams", eventTypes=["team.created"])
    receiver.secrets["/teams"] = [teams["secret"]]
    deliver()
    make_users(api, ws.headers, 3)
    assert api.post("/api/v1/teams", json={"name": "West"}, headers=ws.headers).status_code == 201
    make_users(api, ws.headers, 2, prefix="v")
    got = wait_for(lambda: receiver.delivered("/teams"))
    assert [d.payload["type"] for d in got] == ["team.created"]

    # The endpoint's position passes every change, filtered out or sent (a reader of the feed may see the last
    # ones a moment later than the delivery thread numbered them: compared with a fresh read each time).
    def caught_up() -> bool:
        last = api.get("/api/v1/changes", headers=ws.headers).json()["changes"][-1]["sequence"]
        return bool(api.get(f"/api/v1/webhooks/{teams['id']}", headers=ws.headers).json()["position"] == last)

    wait_for(caught_up)
    assert len(receiver.got) == 1


def test_a_workspaces_endpoints_get_only_its_own_events_and_are_invisible_to_others(
    api: httpx.Client, ws: WS, ws_b: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    a = _create(api, ws, hook_base + "/ws-a", eventTypes=["user.*"])
    b = _create(api, ws_b, hook_base + "/ws-b", eventTypes=["user.*"])
    receiver.secrets.update({"/ws-a": [a["secret"]], "/ws-b": [b["secret"]]})
    deliver()
    make_users(api, ws.headers, 5, prefix="a")
    make_users(api, ws_b.headers, 4, prefix="b")
    wait_for(lambda: len(receiver.delivered("/ws-a")) >= 5 and len(receiver.delivered("/ws-b")) >= 4)
    users_a = {u["id"] for u in _users(api, ws)}
    users_b = {u["id"] for u in _users(api, ws_b)}
    assert {d.payload["data"]["targetId"] for d in receiver.delivered("/ws-a")} <= users_a
    assert {d.payload["data"]["targetId"] for d in receiver.delivered("/ws-b")} <= users_b
    assert receiver.unverified == []
    for method, path in (
        ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", ":rotate-secret"), ("GET", "/attempts"),
        ("POST", "/test"), ("POST", "/resend"), ("POST", "/replay"),
    ):  # fmt: skip
        body = (
            {"sequence": 1} if path in ("/resend", "/replay") else ({"enabled": False} if method == "PATCH" else None)
        )
        r = api.request(method, f"/api/v1/webhooks/{b['id']}{path}", json=body, headers=ws.headers)
        assert r.status_code == 404, (method, path, r.text)
    assert [e["id"] for e in api.get("/api/v1/webhooks", headers=ws.headers).json()["webhooks"]] == [a["id"]]


def _users(api: httpx.Client, ws: WS) -> list[dict[str, Any]]:
    events = api.get("/api/v1/changes", params={"limit": 1000}, headers=ws.headers).json()["changes"]
    return [{"id": e["targetId"]} for e in events if e["targetType"] == "user"]


def test_test_event_resend_replay_and_the_log(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any], db: Database
) -> None:
    made = _create(api, ws, hook_base + "/ops", eventTypes=["user.created"])
    receiver.secrets["/ops"] = [made["secret"]]
    deliver()
    make_users(api, ws.headers, 4)
    first = wait_for(lambda: len(receiver.delivered("/ops")) >= 4 and receiver.delivered("/ops"))
    hook = f"/api/v1/webhooks/{made['id']}"
    test = api.post(hook + "/test", headers=ws.headers)
    assert test.status_code == 202
    wait_for(lambda: any(d.payload["type"] == "webhook.test" for d in receiver.delivered("/ops")))
    seq = first[1].payload["data"]["sequence"]
    resent = api.post(hook + "/resend", json={"sequence": seq}, headers=ws.headers).json()
    assert resent["messageId"] == first[1].id
    wait_for(lambda: [d.id for d in receiver.delivered("/ops")].count(first[1].id) == 2, what="the resend")
    assert api.post(hook + "/resend", json={"sequence": 10_000}, headers=ws.headers).status_code == 404
    before = len(receiver.delivered("/ops"))
    replayed = api.post(hook + "/replay", json={"sequence": first[0].payload["data"]["sequence"]}, headers=ws.headers)
    assert replayed.status_code == 200, replayed.text
    wait_for(lambda: len(receiver.delivered("/ops")) >= before + 4, what="the replay")
    again = receiver.delivered("/ops")[before:]
    assert [d.id for d in again][:4] == [d.id for d in first], "a replay sends the same ids in the same order"
    assert api.post(hook + "/replay", json={"sequence": 0}, headers=ws.headers).status_code == 422
    log = api.get(hook + "/attempts", headers=ws.headers).json()["attempts"]
    assert log[0]["attemptedAt"] >= log[-1]["attemptedAt"]
    assert {a["eventType"] for a in log} >= {"webhook.test", "user.created"}
    assert all(a["durationMs"] >= 0 and a["status"] == 200 for a in log)


def test_only_full_admins_keys_manage_webhooks(api: httpx.Client, ws: WS, db: Database, hook_base: str) -> None:
    made = api.post("/api/v1/users", json={"emailAddress": "lim@a.example", "role": "FullAdmin"}, headers=ws.headers)
    with db.write(ws.id) as s:
        key, _ = apikeys.issue(s, Actor(ws.id, None, "system", "cli"), uuid.UUID(made.json()["id"]), "limited")
    hook = _create(api, ws, hook_base + "/adm")
    for role in ("LimitedAdmin", "Participant"):
        api.patch(f"/api/v1/users/{made.json()['id']}", json={"role": role}, headers=ws.headers)
        for method, path in (
            ("GET", ""),
            ("POST", ""),
            ("GET", f"/{hook['id']}"),
            ("POST", f"/{hook['id']}:rotate-secret"),
        ):
            body = {"url": hook_base} if method == "POST" else None
            refused = api.request(method, "/api/v1/webhooks" + path, json=body, headers={"X-ApiKey": key})
            assert refused.status_code == 403, (role, method, path)
            assert "whsec_" not in refused.text and hook_base not in refused.text
    assert api.get("/api/v1/webhooks").status_code == 401


def test_a_change_recorded_for_a_later_date_is_sent_on_that_date_with_no_request(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, deliver: Callable[..., Any]
) -> None:
    """A new manager and the end of a membership recorded on 15 February for 1 March: on 1 March, with nobody
    using the workspace, the delivery thread makes them current and sends their ``schedule`` events."""
    h = ws.headers
    with clock.frozen(dt.date(2026, 2, 15)):
        ids = []
        for i in range(3):
            r = api.post("/api/v1/users", json={"emailAddress": f"s{i}@example.com", "role": "Participant"}, headers=h)
            ids.append(r.json()["id"])
        boss, other, rep = ids
        east = api.post("/api/v1/teams", json={"name": "East"}, headers=h).json()["id"]
        for path, body in (
            (f"/api/v1/users/{rep}", {"directManagerId": boss}),
            (f"/api/v1/users/{rep}", {"directManagerId": other, "effectiveDate": "2026-03-01"}),
        ):
            assert api.patch(path, json=body, headers=h).status_code == 200
        for path, body in (
            ("/api/v1/team-members", {"systemUserId": rep, "teamId": east}),
            ("/api/v1/team-members:delete", {"systemUserId": rep, "teamId": east, "validTo": "2026-03-01"}),
        ):
            assert api.post(path, json=body, headers=h).status_code in (200, 201)
        made = _create(api, ws, hook_base + "/day", eventTypes=["user.updated", "membership.removed"])
        receiver.secrets["/day"] = [made["secret"]]
    with clock.frozen(dt.date(2026, 3, 1)):
        deliver()

        def scheduled() -> list[Any]:
            return [d for d in receiver.delivered("/day") if d.payload["data"]["channel"] == "schedule"]

        got = wait_for(lambda: len(scheduled()) >= 2 and scheduled(), what="the day's two changes")
    said = {
        (d.payload["type"], d.payload["data"]["targetId"], c["field"], c["before"], c["after"])
        for d in got
        for c in d.payload["data"]["changes"]
    }
    assert said == {
        ("user.updated", rep, "directManagerId", boss, other),
        ("membership.removed", east, "teamId", east, None),
        ("membership.removed", east, "systemUserId", rep, None),
    }
    assert receiver.unverified == []
