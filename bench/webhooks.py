"""Webhook latency (bench/README.md, "Scenarios"): changes written at a steady rate through the JSON API of a real
``payroster serve``, each delivered to a receiver on 127.0.0.3 that verifies it with the ``standardwebhooks``
package; the figure is the time from the API's answer (the change committed) to the verified delivery, p50 and
p95, at the default look-for-changes interval (``PAYROSTER_WEBHOOK_POLL``, 0.5 s) and at 0.1 s."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from typing import Any

import httpx
import standardwebhooks
import uvicorn

from bench.harness import Backend, Figure, Server

HOST = "127.0.0.3"
WRITERS = 4


class _Receiver:
    """Verifies each delivery and notes when each e-mail's change arrived."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrived: dict[str, float] = {}
        self.ids: list[str] = []
        self.unverified = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = standardwebhooks.Webhook(self.secret).verify(body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            self.unverified += 1
            payload = None
        if payload is not None:
            now = time.monotonic()
            self.ids.append(headers["webhook-id"])
            for change in payload["data"]["changes"]:
                if change["field"] == "emailAddress":
                    self.arrived.setdefault(change["after"], now)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _serve(app: Any) -> tuple[uvicorn.Server, int]:
    sock = socket.socket()
    sock.bind((HOST, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, sock.getsockname()[1]


def latency(backend: Backend, seconds: float, rate: int, poll: float) -> dict[str, Any]:
    """Write ``rate`` changes a second for ``seconds`` and time each one's verified delivery."""
    receiver = _Receiver()
    server, port = _serve(receiver)
    committed: dict[str, float] = {}
    try:
        with backend.database() as env:
            env = env | {"PAYROSTER_WEBHOOK_ALLOW_HOSTS": HOST, "PAYROSTER_WEBHOOK_POLL": str(poll)}
            with Server(env) as live:
                made = httpx.post(
                    live.url + "/api/v1/webhooks", json={"url": f"http://{HOST}:{port}/hook", "eventTypes": ["user.*"]},
                    headers=live.headers,
                ).json()  # fmt: skip
                receiver.secret = made["secret"]
                start = time.monotonic() + 0.2
                total = int(seconds * rate)

                def write(first: int) -> None:
                    with httpx.Client(base_url=live.url, headers=live.headers, timeout=30) as c:
                        for i in range(first, total, WRITERS):
                            delay = start + i / rate - time.monotonic()
                            if delay > 0:
                                time.sleep(delay)
                            email = f"hook{i}@bench.example"
                            if (
                                c.post("/api/v1/users", json={"emailAddress": email, "role": "Participant"}).status_code
                                == 201
                            ):
                                committed[email] = time.monotonic()

                writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
                for t in writers:
                    t.start()
                for t in writers:
                    t.join()
                wrote_for = time.monotonic() - start
                deadline = time.monotonic() + 120
                while len(set(committed) & set(receiver.arrived)) < len(committed) and time.monotonic() < deadline:
                    time.sleep(0.1)
    finally:
        server.should_exit = True
    waits = sorted((receiver.arrived[e] - t) * 1000 for e, t in committed.items() if e in receiver.arrived)
    return {
        "committed": len(committed), "delivered": len(waits), "duplicates": len(receiver.ids) - len(set(receiver.ids)),
        "unverified": receiver.unverified, "rate": len(committed) / wrote_for,
        "p50": statistics.median(waits) if waits else float("nan"),
        "p95": waits[int(len(waits) * 0.95) - 1] if waits else float("nan"),
    }  # fmt: skip


def webhooks(backend: Backend, seconds: float, table: Any) -> None:
    """The scenario's rows: p50 and p95 of commit → verified delivery at 100 changes a second."""
    for poll in (0.5, 0.1):
        found = latency(backend, seconds, 100, poll)
        lost = found["committed"] - found["delivered"]
        name = f"webhook commit->delivery, poll {poll:g} s"
        extra = (f"{found['committed']} changes at {found['rate']:.0f}/s, {lost} undelivered, "
                 f"{found['duplicates']} duplicates, {found['unverified']} unverified")  # fmt: skip
        table.row(f"{name} p50 ms", backend.name, Figure([found["p50"]]), None, None, extra, None, ".0f")
        table.row(f"{name} p95 ms", backend.name, Figure([found["p95"]]), None, None, "", lost == 0, ".0f")
