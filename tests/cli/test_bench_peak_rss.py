"""The benchmark's reading of a command's peak memory (``bench.harness.cli_peak_rss``): it is that one process's,
neither the largest of every process the harness ran before it nor the harness's own, and a failing command
fails the measurement."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.harness import cli_peak_rss

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
