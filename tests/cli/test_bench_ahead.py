"""The benchmark's servers started ahead (``bench.__main__.Ahead``): a scenario gets the server started for it, on a
database of its own, or a new one when none was; only scenarios the run will get to are started; every server is
stopped and its database removed when its scenario ends or the run is cut short."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from bench.__main__ import Ahead
from bench.harness import Backend, Server


def _emails(server: Server) -> set[str]:
    url = f"{server.url}/odata/{server.slug}/Users"
    got = httpx.get(url, headers=server.headers, params={"$select": "emailAddress"})
    got.raise_for_status()
    return {u["emailAddress"] for u in got.json()["value"]}


def _database(server: Server) -> Path:
    return Path(server.env["PAYROSTER_DATABASE_URL"].split(":///", 1)[1])


@pytest.mark.slow
def test_servers_started_ahead_are_the_ones_scenarios_take() -> None:
    sqlite = Backend("sqlite")
    ahead = Ahead()
    ahead.wanted, ahead.backends = {"bulk", "scim"}, [sqlite]
    try:
        ahead.start("bulk", [sqlite])
        ahead.start("bulk", [sqlite])  # once per scenario and database
        ahead.start("upsert", [sqlite])  # a scenario this run does not get to
        ahead.start("scim", [sqlite])
        assert set(ahead.waiting) == {("bulk", "sqlite"), ("scim", "sqlite")}
        ahead.ready()
        started = {name: server for (name, _), (_, server) in ahead.waiting.items()}
        assert _database(started["bulk"]) != _database(started["scim"])

        with ahead.take("bulk", sqlite) as server:
            assert server is started["bulk"]
            assert ("bulk", "sqlite") not in ahead.waiting
            created = httpx.post(
                f"{server.url}/api/v1/users:bulk", headers=server.headers,
                content=json.dumps([{"emailAddress": "ahead@x.com", "role": "Participant"}]),
            )  # fmt: skip
            created.raise_for_status()
            assert "ahead@x.com" in _emails(server)
            # Each server has a database of its own: the other one never saw this user.
            assert "ahead@x.com" not in _emails(started["scim"])
            database = _database(server)
        assert server.proc.poll() is not None  # stopped when the scenario ends
        assert not database.exists()  # and its database removed

        with ahead.take("upsert", sqlite) as fresh:  # none was started: a new server, not yet waited for
            assert fresh.url not in {s.url for s in started.values()}
            fresh.wait()
            assert _emails(fresh) == {"b@x.com"}  # a fresh database: only the workspace's admin
        assert fresh.proc.poll() is not None
    finally:
        ahead.close()
    # A run cut short stops what no scenario took, and drops its database.
    assert not ahead.waiting
    assert started["scim"].proc.poll() is not None
    assert not _database(started["scim"]).exists()
