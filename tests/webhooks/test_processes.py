"""Webhook delivery across real processes: ``payroster serve`` SIGKILLed during a burst of changes and restarted,
and two ``payroster worker`` processes sharing the work. The receiver (127.0.0.3) counts what arrives."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import create_workspace
from tests.procs import serve
from tests.webhooks.conftest import RECEIVER_HOST, Receiver, wait_for

FAST = {
    "PAYROSTER_WEBHOOK_ALLOW_HOSTS": RECEIVER_HOST,
    "PAYROSTER_WEBHOOK_POLL": "0.05",
    "PAYROSTER_WEBHOOK_TIMEOUT": "2",
    "PAYROSTER_WEBHOOK_RETRY_SCALE": "0.0002",
    # The burst is four clients writing as fast as the server answers: the per-key and per-workspace limits would
    # answer most of it 429 (and no change), which is not what these tests look at.
    "PAYROSTER_RATE_LIMIT_PER_KEY": "1000000/second",
    "PAYROSTER_RATE_LIMIT_PER_WORKSPACE": "1000000/second",
}
BURST = 1000
CHANGES = 100  # per endpoint, in the two-worker test


def _all_changes(url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"after": after} if after else {})
        page = httpx.get(url + "/api/v1/changes", params=params, headers=headers, timeout=30).json()
        found += page["changes"]
        if not page["changes"]:
            return found
        after = page["next"]


def _endpoint(url: str, headers: dict[str, str], receiver: Receiver, base: str, path: str) -> dict[str, Any]:
    r = httpx.post(url + "/api/v1/webhooks", json={"url": base + path, "eventTypes": ["user.*"]}, headers=headers)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    receiver.secrets[path] = [made["secret"]]
    return made


def test_sigkill_during_a_burst_then_restart_delivers_every_committed_change(
    env: dict[str, str], tmp_path: Path, receiver: Receiver, hook_base: str
) -> None:
    env = env | FAST
    headers = {"X-ApiKey": create_workspace(env)["apiKey"]}
    acknowledged: list[str] = []
    refused = 0
    with serve(env, tmp_path / "first.log") as live:
        start = _endpoint(live.url, headers, receiver, hook_base, "/crash")["position"]
        me = httpx.get(live.url + "/api/v1/me", headers=headers).json()

        def burst(worker: int) -> None:
            nonlocal refused
            with httpx.Client(base_url=live.url, headers=headers, timeout=10) as c:
                for i in range(BURST // 4):
                    try:
                        email = f"w{worker}-{i}@crash.example"
                        if (
                            c.post("/api/v1/users", json={"emailAddress": email, "role": "Participant"}).status_code
                            == 201
                        ):
                            acknowledged.append(email)
                        if i % 25 == 0:  # refused by a rule after it started writing: rolled back, no event
                            r = c.patch(f"/api/v1/users/{me['userId']}", json={"role": "Participant"})
                            refused += r.status_code == 409
                    except httpx.TransportError:
                        return

        threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        wait_for(
            lambda: len(acknowledged) >= BURST * 0.3 and len(receiver.delivered("/crash")) > 10,
            timeout=180, what="a third of the burst acknowledged and deliveries under way",
        )  # fmt: skip
        live.proc.send_signal(signal.SIGKILL)
        live.proc.wait()
        for t in threads:
            t.join(30)
    killed_at = len(acknowledged)
    with serve(env, tmp_path / "second.log") as live:
        committed = [c for c in _all_changes(live.url, headers) if c["action"].startswith("user.")]
        expected = {c["sequence"] for c in committed if c["sequence"] > start}

        def arrived() -> set[int]:
            return {d.payload["data"]["sequence"] for d in receiver.delivered("/crash")}

        wait_for(lambda: expected <= arrived(), timeout=90, what="every committed change")
    got = receiver.delivered("/crash")
    counts = Counter(d.id for d in got)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nacknowledged {killed_at}, committed {len(expected)}, delivered {len(got)}, duplicates {duplicates}, "
          f"refused writes {refused}")  # fmt: skip
    assert refused > 0
    assert arrived() == expected, "nothing invented: every delivered change is a committed one"
    delivered_emails = {
        ch["after"] for d in got for ch in d.payload["data"]["changes"] if ch["field"] == "emailAddress"
    }
    assert set(acknowledged) <= delivered_emails
    sequences = [d.payload["data"]["sequence"] for d in got]
    firsts = [s for i, s in enumerate(sequences) if s not in sequences[:i]]
    assert firsts == sorted(firsts), "first deliveries come in sequence order"
    assert receiver.unverified == []


def test_two_workers_share_the_work_without_double_sends(
    env: dict[str, str], tmp_path: Path, receiver: Receiver, hook_base: str
) -> None:
    env = env | FAST | {"PAYROSTER_WEBHOOK_DELIVERY": "false"}
    headers = {"X-ApiKey": create_workspace(env)["apiKey"]}
    paths = [f"/w{i}" for i in range(4)]
    with serve(env, tmp_path / "serve.log") as live:
        for p in paths:
            _endpoint(live.url, headers, receiver, hook_base, p)
        logs = [(tmp_path / f"worker{i}.log").open("wb") for i in range(2)]
        workers = [
            subprocess.Popen([sys.executable, "-m", "payroster", "worker"], env=env, stdout=f, stderr=subprocess.STDOUT)
            for f in logs
        ]
        try:
            with httpx.Client(base_url=live.url, headers=headers, timeout=10) as c:
                for i in range(CHANGES):
                    r = c.post("/api/v1/users", json={"emailAddress": f"p{i}@two.example", "role": "Participant"})
                    assert r.status_code == 201
            for p in paths:
                wait_for(lambda p=p: len({d.id for d in receiver.delivered(p)}) == CHANGES, timeout=90, what=p)
            time.sleep(0.5)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w, f in zip(workers, logs, strict=True):
                assert w.wait(30) == 0
                f.close()
    duplicates = 0
    for p in paths:
        got = receiver.delivered(p)
        duplicates += len(got) - len({d.id for d in got})
        sequences = [d.payload["data"]["sequence"] for d in got]
        assert sequences == sorted(sequences), f"{p}: out of order"
    print(f"\n4 endpoints x {CHANGES} changes over two workers: {duplicates} duplicates")
    assert duplicates == 0
    for i in range(2):
        text = (tmp_path / f"worker{i}.log").read_text()
        assert "Traceback" not in text, text[-2000:]
    assert receiver.unverified == []
