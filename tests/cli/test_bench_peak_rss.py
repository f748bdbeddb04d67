"""The benchmark's reading of a command's peak memory (``bench.harness.cli_peak_rss``): it is that one process's,
neither the largest of every process the harness ran before it nor the harness's own, and a failing command
fails the measurement. A server's (``bench.harness.server_mb``) is its largest worker's, not its supervisor's."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bench.harness import cli_peak_rss
from bench.peak_rss import descendants, status_kib, tree_kib

from tests.procs import cli_env


@pytest.mark.slow
def test_the_peak_is_the_measured_process_own(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}")
    made = subprocess.run(
        [sys.executable, "-m", "payroster", "workspace", "create", "--name", "M", "--admin-email", "m@x.com", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    slug = json.loads(made.stdout)["workspaceSlug"]
    path = tmp_path / "users.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["emailAddress", "role", "lastName", "tags"])
        writer.writerows([f"u{n}@x.com", "Participant", f"L{n:06d}" * 20, f"T{n % 7}|All"] for n in range(30_000))
    large = cli_peak_rss(env, "import", "users", "--workspace", slug, str(path))
    small = cli_peak_rss(env, "--help")
    assert 20 < small < large < 4096, (small, large)  # a running maximum over children would repeat ``large``
    # A child started by vfork carries its parent's high-water mark into ``ru_maxrss``: from a parent holding
    # 400 MiB, a reading of that kind would be over 400 for every command.
    ballast = b"\x01" * (400 << 20)
    try:
        assert cli_peak_rss(env, "--help") < 200
    finally:
        del ballast


def test_a_failing_command_raises_with_its_error(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'p.db'}")
    with pytest.raises(RuntimeError, match="no-such-workspace|not found|unknown"):
        cli_peak_rss(env, "import", "users", "--workspace", "no-such-workspace", __file__)


CHILD = "b = b'\\x01' * (200 << 20); import sys, time; print('ready', flush=True); time.sleep(60)"


def test_a_server_peak_is_its_largest_worker_not_its_supervisor() -> None:
    """``payroster serve --workers 2`` serves from child processes: the reading is the largest of the process
    tree's, here a child's 200 MiB under a supervisor of a few MiB."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert supervisor.stdout is not None and supervisor.stdout.readline().strip() == "ready"
        own = status_kib(supervisor.pid, "VmHWM")
        assert own is not None and own < 100 << 10
        (worker,) = descendants(supervisor.pid)
        tree = tree_kib(supervisor.pid, "VmHWM")
        assert tree == status_kib(worker, "VmHWM")
        assert tree is not None and tree > 200 << 10
    finally:
        for pid in descendants(supervisor.pid):
            os.kill(pid, signal.SIGTERM)
        supervisor.wait(timeout=30)
