"""Independent testers against the live server: scim2-tester's check_server and scim-sanity's probe."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server

from tests.scim.conftest import Scim


def test_scim2_tester_check_server_finds_no_error(scim: Scim, base_url: str) -> None:
    client = SyncSCIMClient(httpx2.Client(base_url=base_url + scim.root, headers=scim.headers, timeout=30))
    results = check_server(client)
    counts = collections.Counter(r.status.name for r in results)
    print("scim2-tester:", dict(counts))
    failures = [f"{r.status.name} {r.title}: {r.reason}" for r in results if r.status.name in ("ERROR", "CRITICAL")]
    assert not failures, "\n".join(failures)
    assert counts["SUCCESS"] >= 80  # every check ran: discovery, CRUD, attributes, PATCH on every attribute


def scim_sanity() -> str:
    found = shutil.which("scim-sanity") or str(Path(sys.executable).with_name("scim-sanity"))
    assert Path(found).exists(), "scim-sanity is not installed"
    return found


def test_scim_sanity_probe_has_no_failure(scim: Scim, base_url: str) -> None:
    run = subprocess.run(
        [
            scim_sanity(),
            "probe",
            base_url + scim.root,
            "--token",
            scim.token,
            "--i-accept-side-effects",
            "--json-output",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    results = report["results"]
    counts = collections.Counter(r["status"] for r in results)
    print("scim-sanity:", dict(counts))
    failed = [r for r in results if r["status"] not in ("pass", "skip")]
    assert not failed, json.dumps(failed, indent=1)
    assert counts["pass"] >= 20
    assert run.returncode == 0, run.stderr
