"""The export benchmark's client (``bench/export_client.py``) against the live server: it follows every nextLink
and counts each user once, so the export figure is rows the feed really served."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import WS
from tests.odata.conftest import seed

ROOT = Path(__file__).resolve().parents[2]


def test_the_export_client_reads_every_user_once_across_pages(client: httpx.Client, ws: WS, base_url: str) -> None:
    seed(client, ws, users=1_499, teams=1, detailed=False)
    expected = int(client.get(f"/odata/{ws.slug}/Users/$count", headers=ws.headers).text)
    assert expected == 1_500  # the admin and the seed
    done = subprocess.run(
        [sys.executable, "-m", "bench.export_client", f"{base_url}/odata/{ws.slug}/Users", ws.key],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    got = json.loads(done.stdout)
    assert got["rows"] == expected
    assert got["pages"] == 2  # pages of 1,000
    assert 0 < got["parse_seconds"] < got["seconds"]
    bad = subprocess.run(
        [sys.executable, "-m", "bench.export_client", f"{base_url}/odata/{ws.slug}/Users", "pr_api_not-a-key"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "401" in bad.stderr  # a refused request is an error, never zero rows
