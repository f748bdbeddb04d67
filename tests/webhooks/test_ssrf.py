"""No server-side request forgery: webhook targets are resolved and refused when loopback, private, link-local,
multicast, unspecified or the metadata address, unless configured; re-checked at connect time. The test network
(tests/webhooks/conftest.py) answers test names from a table and fails the test on any connect to an address
other than the receiver's: every refusal below happens before a connect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from payroster.outbound import AllowList, Guard, Sender, url_problem
from tests.conftest import WS
from tests.webhooks.conftest import Network, Receiver, make_users, wait_for

REFUSED = {
    "https://127.0.0.1/x": "loopback",
    "https://127.0.0.2/x": "loopback",
    "https://[::1]/x": "loopback",
    "https://[::ffff:127.0.0.1]/x": "loopback",
    "https://10.0.0.1/x": "private",
    "https://192.168.1.1/x": "private",
    "https://[fc00::1]/x": "private",
    "https://169.254.1.1/x": "link-local",
    "https://169.254.169.254/latest/meta-data": "metadata",
    "https://[fd00:ec2::254]/x": "metadata",
    "https://224.0.0.1/x": "multicast",
    "https://0.0.0.0/x": "unspecified",
    "https://loopback.test/x": "loopback",
    "https://private.test/x": "private",
    "https://linklocal.test/x": "link-local",
    "https://metadata.test/x": "metadata",
    "https://multicast.test/x": "multicast",
    "https://v6loopback.test/x": "loopback",
    "https://mixed.test/x": "private",  # one public answer and one private: refused
}


def test_every_refused_class_is_refused_at_creation_before_any_connect(
    api: httpx.Client, ws: WS, network: Network
) -> None:
    for url, kind in REFUSED.items():
        r = api.post("/api/v1/webhooks", json={"url": url}, headers=ws.headers)
        assert r.status_code == 422, (url, r.text)
        message = r.json()["error"]["details"][0]["message"]
        assert message.startswith("refused:") and kind in message, (url, message)
    assert network.connects == []
    assert api.get("/api/v1/webhooks", headers=ws.headers).json()["webhooks"] == []
    assert api.patch("/api/v1/webhooks/x", json={"url": "https://10.0.0.1/"}, headers=ws.headers).status_code == 404


def test_a_name_whose_answer_changes_after_the_check_is_refused_at_connect(
    api: httpx.Client, ws: WS, network: Network, deliver: Callable[..., Any]
) -> None:
    network.answers["rebind.test"] = [["93.184.216.34"], ["10.9.8.7"]]  # public when checked, private when sent
    made = api.post(
        "/api/v1/webhooks", json={"url": "https://rebind.test/hook", "eventTypes": ["user.*"]}, headers=ws.headers
    )
    assert made.status_code == 201, made.text
    deliver()
    make_users(api, ws.headers, 1)
    hook = f"/api/v1/webhooks/{made.json()['id']}"
    attempt = wait_for(lambda: api.get(hook + "/attempts", headers=ws.headers).json()["attempts"])[0]
    assert attempt["status"] is None and "refused" in attempt["error"] and "10.9.8.7" in attempt["error"]
    assert network.connects == [] and network.lookups["rebind.test"] >= 2


def test_allowed_hosts_are_reached_and_only_at_the_checked_address(
    api: httpx.Client, ws: WS, network: Network, receiver: Receiver, hook_base: str, deliver: Callable[..., Any]
) -> None:
    port = hook_base.rsplit(":", 1)[1]
    made = api.post(
        "/api/v1/webhooks", json={"url": f"http://hooks.allowed.test:{port}/named", "eventTypes": ["user.*"]},
        headers=ws.headers,
    ).json()  # fmt: skip
    receiver.secrets["/named"] = [made["secret"]]
    deliver()
    make_users(api, ws.headers, 2)
    wait_for(lambda: len(receiver.delivered("/named")) == 2)
    assert set(network.connects) == {"127.0.0.3"} and receiver.unverified == []


def test_without_configuration_loopback_is_refused_by_the_sender_itself(hook_base: str, network: Network) -> None:
    sender = Sender(Guard(AllowList(), network.resolve, network.connect), timeout=2)
    try:
        outcome = sender.post(hook_base + "/x", {}, b"{}")
    finally:
        sender.close()
    assert outcome.status is None and outcome.error is not None and "loopback" in outcome.error
    assert network.connects == []
    assert url_problem(hook_base + "/x", AllowList()) is not None
    assert url_problem("http://hooks.allowed.test/x", AllowList.parse("hooks.allowed.test")) is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(
    api: httpx.Client, ws: WS, receiver: Receiver, hook_base: str, deliver: Callable[..., Any], status: int
) -> None:
    made = api.post(
        "/api/v1/webhooks", json={"url": hook_base + "/moved", "eventTypes": ["user.*"]}, headers=ws.headers
    ).json()
    receiver.secrets["/moved"] = [made["secret"]]
    receiver.status["/moved"] = status
    deliver()
    make_users(api, ws.headers, 1)
    log = wait_for(lambda: api.get(f"/api/v1/webhooks/{made['id']}/attempts", headers=ws.headers).json()["attempts"])
    assert log[0]["status"] == status
    assert {d.path for d in receiver.got} == {"/moved"}
    assert api.get(f"/api/v1/webhooks/{made['id']}", headers=ws.headers).json()["failures"] >= 1
