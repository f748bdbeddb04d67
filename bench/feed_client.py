"""``python -m bench.feed_client URL KEY``: read the change feed at URL (``/api/v1/changes``) from its start in pages
of 1,000, and print one JSON line: events, pages, seconds, and the seconds the client spent parsing.

The change feed's reader, made as the export's (``bench/export_client.py``, bench/README.md "The export's
client"): a process of its own that imports only httpx and orjson, with the cyclic collector off. Read from the
harness's process (httpx's ``Response.json``, the stdlib parser, beside PayRoster's and SQLAlchemy's objects)
the client's own parse was a quarter to a half of the figure, which the raw ``SELECT`` it is compared with
never pays. Every page is still parsed whole, as a consumer parses it, and the parse rate is printed beside.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any

import httpx
import orjson


def read(url: str, key: str) -> dict[str, float]:
    """Every page of the feed from its start: events, pages, wall seconds, parse seconds."""
    events = pages = 0
    parsing = 0.0
    with httpx.Client(headers={"X-ApiKey": key}, timeout=3600) as client:
        started = time.perf_counter()
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000} | ({} if after is None else {"after": after})
            response = client.get(url, params=params)
            response.raise_for_status()
            t0 = time.perf_counter()
            body = orjson.loads(response.content)
            parsing += time.perf_counter() - t0
            pages += 1
            if not body["changes"]:
                break
            events += len(body["changes"])
            after = body["next"]
        seconds = time.perf_counter() - started
    return {"events": events, "pages": pages, "seconds": seconds, "parse_seconds": parsing}


if __name__ == "__main__":
    gc.disable()
    print(json.dumps(read(sys.argv[1], sys.argv[2])))
