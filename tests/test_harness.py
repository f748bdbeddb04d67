"""The test harness itself: with CI=true a missing PostgreSQL fails the run instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_without_postgres_fails() -> None:
    """CI=true without PAYROSTER_TEST_DATABASE_URL makes pytest exit non-zero before running anything."""
    env = {k: v for k, v in os.environ.items() if k != "PAYROSTER_TEST_DATABASE_URL"}
    env["CI"] = "true"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/unit/test_effective.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "PAYROSTER_TEST_DATABASE_URL" in run.stdout + run.stderr
