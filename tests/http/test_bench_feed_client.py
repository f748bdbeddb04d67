"""The change feed benchmark's client (``bench/feed_client.py``) against the live server: it reads every page from
the start and counts each event once, so the feed figure is events the server really served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import WS

ROOT = Path(__file__).resolve().parents[2]


def test_the_feed_client_reads_every_event_once_across_pages(client: httpx.Client, ws: WS, base_url: str) -> None:
    rows = [{"emailAddress": f"f{i}@a.example", "role": "Participant"} for i in range(1_500)]
    assert client.post("/api/v1/users:bulk", json=rows, headers=ws.headers).status_code == 200
    expected, after = 0, None
    while True:  # the events as any reader sees them (the first read numbers them)
        params = {"limit": 1000} | ({} if after is None else {"after": after})
        body = client.get("/api/v1/changes", params=params, headers=ws.headers).json()
        if not body["changes"]:
            break
        expected, after = expected + len(body["changes"]), body["next"]
    assert expected > 1_500
    done = subprocess.run(
        [sys.executable, "-m", "bench.feed_client", f"{base_url}/api/v1/changes", ws.key],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    got = json.loads(done.stdout)
    assert got["events"] == expected
    assert got["pages"] == -(-expected // 1000) + 1  # pages of 1,000, then the empty one
    assert 0 < got["parse_seconds"] < got["seconds"]
    bad = subprocess.run(
        [sys.executable, "-m", "bench.feed_client", f"{base_url}/api/v1/changes", "pr_api_not-a-key"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "401" in bad.stderr  # a refused request is an error, never zero events
