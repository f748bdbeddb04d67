"""On SQLite the secret key is generated once, beside the database file: every process that starts on a new
database at the same moment (the workers of ``payroster serve --workers N``) must end up with the same key,
never an empty one, in a file only its owner can read."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from payroster.config import Settings

PROCESSES = 8


def _resolve(url: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.queues.Queue) -> None:
    settings = Settings(database_url=url, secret_key=None)
    barrier.wait()  # every process asks at the same moment
    try:
        out.put(settings.resolved_secret())
    except Exception as exc:  # reported to the test, which fails on it
        out.put(f"error: {exc!r}")


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(20):  # a race: many tries, each on a new database
        url = f"sqlite:///{tmp_path / f'r{round_}.db'}"
        barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_resolve, args=(url, barrier, out)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        got = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert len(set(got)) == 1, f"round {round_}: {len(set(got))} different secrets"
        (secret,) = set(got)
        assert len(secret) >= 32, f"round {round_}: {secret!r}"
        on_disk = tmp_path / f"r{round_}.db.secret"
        assert on_disk.read_text().strip() == secret
        assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600


def test_an_existing_secret_is_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    first = Settings(database_url=url, secret_key=None).resolved_secret()
    assert Settings(database_url=url, secret_key=None).resolved_secret() == first


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.db.secret").write_text("")
    try:
        Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", secret_key=None).resolved_secret()
    except RuntimeError as exc:
        assert "p.db.secret" in str(exc)
    else:
        raise AssertionError("an empty secret file was accepted")
