"""An open-loop load: requests sent at a fixed arrival rate whatever the server's answers, each latency measured
from the moment the request was due (not from when it could be sent), so a stalled server is charged for every
request that waited behind it (no coordinated omission).

wrk keeps a fixed number of connections busy (a closed loop): its latency is its throughput's mirror (Little's
law). Here arrivals are scheduled at ``start + i / rate``; each goes out on an idle keep-alive connection, or a new
one when all are busy. The generator's own accuracy is part of the result: the achieved arrival rate, and how
late requests left against their schedule (p50/p99/max), printed beside the target rate.

``python -m bench.openloop URL RATE SECONDS REQUESTS_FILE`` (requests rendered by ``bench.load.render``,
separated by NUL bytes) prints one JSON line; ``run`` does it from the harness, in a process of its own so the
harness's heap and collector do not delay the schedule.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from typing import Any

from bench import load

MAX_CONNECTIONS = 256  # beyond this the server is hopelessly behind; requests then wait for a connection
# uvicorn closes a keep-alive connection idle for 5 s; one idle for longer than this is closed here and replaced,
# so no request is sent on a connection the server is closing (the first runs counted those as failures).
IDLE_SECONDS = 4.0


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request, read its whole answer (Content-Length framed, as PayRoster's are); the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load(host: str, port: int, requests: list[bytes], rate: float, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    opened = 0
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    latencies: list[float] = []
    lags: list[float] = []
    sent: list[float] = []
    errors = 0
    statuses: dict[str, int] = {}
    count = int(rate * seconds)
    start = loop.time() + 0.2

    async def one(i: int, due: float) -> None:
        nonlocal opened, errors
        async with slots:
            while idle and loop.time() - idle[-1][2] > IDLE_SECONDS:
                idle.pop()[1].close()
            if idle:
                reader, writer, _ = idle.pop()
                conn = (reader, writer)
            else:
                conn = await asyncio.open_connection(host, port)
                opened += 1
            now = loop.time()
            lags.append(now - due)
            sent.append(now)
            try:
                status = await _exchange(*conn, requests[i % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors += 1
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                conn[1].close()
                return
            latencies.append(loop.time() - due)
            if status >= 400:
                errors += 1
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            idle.append((*conn, loop.time()))

    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    span = max(sent) - min(sent) if len(sent) > 1 else float("nan")
    per_second = [0] * (int(seconds) + 1)
    for t in sent:
        per_second[min(len(per_second) - 1, int(t - start))] += 1
    ms = [x * 1000 for x in latencies]
    return {
        "requests": count,
        "answered": len(latencies),
        "errors": errors,
        "failures": statuses,
        "connections": opened,
        "target_rps": rate,
        "achieved_rps": (len(sent) - 1) / span if span else float("nan"),
        "per_second_min": min(per_second[: int(seconds)] or [0]),
        "per_second_max": max(per_second[: int(seconds)] or [0]),
        "send_lag_p50_ms": _pct(lags, 50) * 1000,
        "send_lag_p99_ms": _pct(lags, 99) * 1000,
        "send_lag_max_ms": max(lags) * 1000 if lags else float("nan"),
        "p50_ms": _pct(ms, 50),
        "p95_ms": _pct(ms, 95),
        "p99_ms": _pct(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def run(
    url: str, rate: float, seconds: float, maker: str, args: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """``rate`` requests/s of ``maker``'s requests for ``seconds``, from a process of its own; its figures."""
    parts = urllib.parse.urlsplit(url)
    make = load.MAKERS[maker]
    with tempfile.TemporaryDirectory(prefix="payroster-openloop-") as tmp:
        path = os.path.join(tmp, "requests")
        with open(path, "wb") as f:
            for i in range(int(rate * seconds)):
                method, target, body = make(i, args)
                f.write(load.render(parts.netloc, method, parts.path.rstrip("/") + target, body, headers) + b"\0")
        done = subprocess.run(
            [sys.executable, "-m", "bench.openloop", url, str(rate), str(seconds), path],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    url, rate, seconds, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    with open(path, "rb") as f:
        requests = [r for r in f.read().split(b"\0") if r]
    parts = urllib.parse.urlsplit(url)
    gc.disable()  # nothing here makes cycles; a collection would delay the schedule
    print(json.dumps(asyncio.run(_load(parts.hostname or "127.0.0.1", parts.port or 80, requests, rate, seconds))))


if __name__ == "__main__":
    main()
