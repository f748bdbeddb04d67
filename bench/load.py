"""The load generator: ``wrk`` (C, epoll; Debian's package), driven by a small Lua script that replays
requests made here in Python. Its ceiling (the same load against ``bench/ceiling_app.py``, an application
that answers from memory) is measured and printed in every run.

Requests are described by a *maker*: a module-level function from a request number to (method, path, body);
``args`` carries its data (names, ids). Before the clock starts, the requests of a run are rendered as raw
HTTP/1.1 and written to a file; each wrk thread reads it once and sends every ``threads``-th request, so no
request is built while the clock runs, and the generator costs the machine a C event loop per thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable
from typing import Any

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
Request = tuple[str, str, Any]


def healthz(i: int, args: dict[str, Any]) -> Request:
    return "GET", "/healthz", None


def trivial(i: int, args: dict[str, Any]) -> Request:
    return "GET", "/bench/trivial", None


def me(i: int, args: dict[str, Any]) -> Request:
    return "GET", "/api/v1/me", None


def upsert(i: int, args: dict[str, Any]) -> Request:
    """Half creates of new users, half updates of existing ones (a new first name and a tag added).

    The updated users are created before the clock starts (``args["existing"]`` of them, ``args["seeded"]``
    e-mail prefix); each create uses an e-mail never seen before."""
    if i % 2:
        who = (i * 7919) % args["existing"]
        body = {"emailAddress": f"{args['seeded']}{who}@bench.example", "firstName": f"N{i}", "tags": f"T{i % 7}"}
    else:
        body = {"emailAddress": f"{args['prefix']}{i}@bench.example", "role": "Participant", "tags": f"T{i % 7}"}
    return "POST", "/api/v1/users", body


def scim_user(name: str) -> dict[str, Any]:
    """A SCIM User as an identity provider sends it."""
    return {
        "schemas": [SCIM_USER],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": name.split("@")[0]},
        "emails": [{"value": name, "type": "work", "primary": True}],
        "active": True,
    }


def scim_mix(i: int, args: dict[str, Any]) -> Request:
    """Entra-like: 60% userName lookups, 20% creates, 20% PATCHes of displayName."""
    names, ids, tag = args["names"], args["ids"], args["tag"]
    kind = i % 10
    if kind < 6:
        return "GET", f'/Users?filter=userName eq "{names[(i * 7919) % len(names)]}"', None
    if kind < 8:
        return "POST", "/Users", scim_user(f"new{tag}{i}@bench.example")
    op = {"op": "replace", "path": "displayName", "value": f"Name {i}"}
    return "PATCH", f"/Users/{ids[(i * 104729) % len(ids)]}", {"schemas": [SCIM_PATCH], "Operations": [op]}


MAKERS: dict[str, Callable[[int, dict[str, Any]], Request]] = {
    "healthz": healthz,
    "me": me,
    "trivial": trivial,
    "upsert": upsert,
    "scim_mix": scim_mix,
}


REPLAYABLE = frozenset({"healthz", "me", "trivial"})  # reads: sending one twice measures the same work
THREADS = 2  # wrk threads: one event loop per core
RATE_CEILING = 4_000  # requests rendered per second of load, above any rate this machine reaches

# Replays the rendered requests (separated by NUL bytes) and prints the figures as one JSON line. Each thread
# starts at its own offset and steps by the thread count; "exhausted" says a thread ran past the end.
_SCRIPT = """
local threads, created = {}, 0
function setup(thread)
  thread:set("first", created)
  created = created + 1
  table.insert(threads, thread)
end
local reqs, n, i, step = {}, 0, 0, 1
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local stop = data:find("\\0", pos, true)
    if not stop then break end
    n = n + 1
    reqs[n] = data:sub(pos, stop - 1)
    pos = stop + 1
  end
  i, step, exhausted = first, tonumber(args[2]), 0
end
function request()
  if i >= n then exhausted = 1 end
  local r = reqs[i % n + 1]
  i = i + step
  return r
end
function done(summary, latency, requests)
  local out = 0
  for _, t in ipairs(threads) do
    if t:get("exhausted") == 1 then out = 1 end
  end
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "errors": %d,'
    .. ' "exhausted": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, out))
end
"""


def render(host: str, method: str, path: str, body: Any, headers: dict[str, str]) -> bytes:
    """One raw HTTP/1.1 request (keep-alive), as the generator sends it."""
    target = urllib.parse.quote(path, safe="/?=&:@,$'()*+;!-._~")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def run(
    url: str, duration: float, maker: str, args: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    clients: int = 16,
) -> dict[str, float]:  # fmt: skip
    """``clients`` keep-alive connections over ``THREADS`` wrk threads for ``duration`` seconds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("the load generator needs wrk (apt-get install wrk; ./scripts/bench installs it)")
    make = MAKERS[maker]
    parts = urllib.parse.urlsplit(url)
    host, base = parts.netloc, parts.path.rstrip("/")
    seconds = max(1, round(duration))  # wrk counts whole seconds
    # A request that may be sent again (a read) is rendered once per slot and replayed in a loop; a write that
    # creates something is rendered once per request the load can reach.
    count = 2_000 if maker in REPLAYABLE else max(2_000, seconds * RATE_CEILING)
    with tempfile.TemporaryDirectory(prefix="payroster-load-") as tmp:
        requests_file, script = os.path.join(tmp, "requests"), os.path.join(tmp, "replay.lua")
        with open(requests_file, "wb") as f:
            for i in range(count):
                method, path, body = make(i, args or {})
                f.write(render(host, method, base + path, body, headers or {}) + b"\0")
        with open(script, "w") as f:
            f.write(_SCRIPT)
        done = subprocess.run(
            [wrk, f"-t{THREADS}", f"-c{clients}", f"-d{seconds}s", "--timeout", "60s", "-s", script, url,
             "--", requests_file, str(THREADS)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["exhausted"] and maker not in REPLAYABLE:
        raise RuntimeError(f"the load outran its {count:,} rendered requests; raise RATE_CEILING")
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000,
        "p95_ms": figures["p95_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "errors": figures["errors"],
        "requests": figures["requests"],
    }
