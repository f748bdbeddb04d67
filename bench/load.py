"""The load generator: several processes, each an asyncio HTTP/1.1 keep-alive client pool, so the generator
is not held to one core by the GIL. Its ceiling (``GET /healthz``) is measured and printed in every run.

Requests are described by a *maker*: a module-level function from a request number to (method, path, body),
chosen by name so it crosses process boundaries; ``args`` carries its data (names, ids).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
Request = tuple[str, str, Any]


def healthz(i: int, args: dict[str, Any]) -> Request:
    return "GET", "/healthz", None


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
    "upsert": upsert,
    "scim_mix": scim_mix,
}


async def _pool(
    url: str, duration: float, maker: str, args: dict[str, Any], headers: dict[str, str], clients: int, proc: int,
    procs: int,
) -> tuple[list[float], int, float]:  # fmt: skip
    make = MAKERS[maker]
    latencies: list[float] = []
    errors = 0
    numbers = iter(range(proc, 10**12, procs))
    stop = time.monotonic() + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            method, path, body = make(next(numbers), args)
            t0 = time.perf_counter()
            r = await client.request(method, path, json=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code >= 400

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.monotonic() - started
    return latencies, errors, elapsed


def _child(queue: Any, *params: Any) -> None:
    queue.put(asyncio.run(_pool(*params)))


def run(
    url: str, duration: float, maker: str, args: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    clients: int = 16, procs: int = 2,
) -> dict[str, float]:  # fmt: skip
    """``clients`` keep-alive connections spread over ``procs`` processes for ``duration`` seconds."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    per = [clients // procs + (1 if p < clients % procs else 0) for p in range(procs)]
    children = [
        ctx.Process(target=_child, args=(queue, url, duration, maker, args or {}, headers or {}, per[p], p, procs))
        for p in range(procs)
    ]
    for child in children:
        child.start()
    results = [queue.get(timeout=duration + 300) for _ in children]
    for child in children:
        child.join(30)
    latencies = sorted(lat for r in results for lat in r[0])
    elapsed = max(r[2] for r in results)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": sum(r[1] for r in results),
        "requests": len(latencies),
    }
