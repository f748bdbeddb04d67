"""Receivers that misbehave: one that never answers, one that answers a byte at a time (headers or body), one
that sends 100 MB. Every attempt ends within its time, reads a bounded amount, and delivery to the other
endpoints goes on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from payroster.outbound import KEPT, MAX_READ, AllowList, Guard, Sender
from tests.conftest import WS
from tests.webhooks.conftest import RECEIVER_HOST, Network, Receiver, make_users, wait_for

HUNDRED_MB = 100 * 1024 * 1024


class Raw:
    """A TCP server on 127.0.0.3 whose every connection runs ``behave(conn)``; counts the bytes it sent."""

    def __init__(self, behave: Callable[[socket.socket, Raw], None]) -> None:
        self.behave = behave
        self.sent = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((RECEIVER_HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.behave(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def never_answers(conn: socket.socket, raw: Raw) -> None:
    raw.stop.wait(30)


def slow_headers(conn: socket.socket, raw: Raw) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
        if raw.stop.wait(0.05):
            return
        raw.send(conn, bytes([byte]))


def slow_body(conn: socket.socket, raw: Raw) -> None:
    raw.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not raw.stop.wait(0.05):
        raw.send(conn, b"x")


def huge_body(conn: socket.socket, raw: Raw) -> None:
    raw.send(conn, b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % HUNDRED_MB)
    chunk = b"y" * 65536
    for _ in range(HUNDRED_MB // len(chunk)):
        raw.send(conn, chunk)


@pytest.fixture
def raw_servers() -> Iterator[Callable[[Callable[[socket.socket, Raw], None]], Raw]]:
    made: list[Raw] = []

    def make(behave: Callable[[socket.socket, Raw], None]) -> Raw:
        made.append(Raw(behave))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.mark.parametrize(
    ("behave", "status"), [(never_answers, None), (slow_headers, None), (slow_body, 200), (huge_body, 500)]
)
def test_each_attempt_is_bounded_in_time_and_bytes(
    raw_servers: Callable[..., Raw], network: Network, behave: Callable[..., None], status: int | None
) -> None:
    raw = raw_servers(behave)
    sender = Sender(Guard(AllowList.parse(RECEIVER_HOST), network.resolve, network.connect), timeout=1.0)
    try:
        start = time.monotonic()
        outcome = sender.post(f"http://{RECEIVER_HOST}:{raw.port}/hook", {"content-type": "application/json"}, b"{}")
        took = time.monotonic() - start
    finally:
        sender.close()
    assert took < 2.5, f"an attempt lasted {took:.1f} s"
    assert outcome.status == status
    assert len(outcome.head) <= KEPT
    if behave is huge_body:
        assert outcome.head.startswith(b"yyyy") and raw.sent < HUNDRED_MB / 4, raw.sent
        assert MAX_READ <= 64 * 1024
    if status is None:
        assert outcome.error is not None and "timed out" in outcome.error


def test_bad_receivers_do_not_hold_up_the_others(
    api: httpx.Client, ws: WS, hook_base: str, receiver: Receiver, raw_servers: Callable[..., Raw],
    deliver: Callable[..., Any],
) -> None:  # fmt: skip
    bad = [raw_servers(b) for b in (never_answers, slow_headers, huge_body)]
    for raw in bad:
        r = api.post("/api/v1/webhooks", json={"url": f"http://{RECEIVER_HOST}:{raw.port}/bad"}, headers=ws.headers)
        assert r.status_code == 201
    good = api.post("/api/v1/webhooks", json={"url": hook_base + "/good", "eventTypes": ["user.*"]}, headers=ws.headers)
    receiver.secrets["/good"] = [good.json()["secret"]]
    delivery = deliver(webhook_timeout=1.0, webhook_threads=4)
    make_users(api, ws.headers, 20)
    wait_for(lambda: len(receiver.delivered("/good")) == 20, timeout=30, what="the good endpoint's 20")
    time.sleep(1.5)
    listed = api.get("/api/v1/webhooks", headers=ws.headers).json()["webhooks"]
    for e in listed:
        if e["url"].endswith("/bad"):
            log = api.get(f"/api/v1/webhooks/{e['id']}/attempts", headers=ws.headers).json()["attempts"]
            assert log and all(a["durationMs"] < 2500 and len(a["response"]) <= KEPT for a in log), log
            assert e["failures"] >= 1
    assert delivery.alive()
