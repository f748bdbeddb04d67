"""Webhook fixtures: a real receiver (an ASGI app under uvicorn on 127.0.0.3) that verifies every delivery with
the ``standardwebhooks`` package, and the network the sender sees: a resolver that maps test names to addresses
(no real DNS) and a connect that records any address other than the receiver's and refuses it, so that no test
ever connects anywhere but loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
import pytest
import standardwebhooks
import uvicorn

from payroster.app import create_app
from payroster.config import Settings
from payroster.db.engine import Database
from payroster.outbound import AllowList, Guard, system_connect
from payroster.services.delivery import Delivery

RECEIVER_HOST = "127.0.0.3"  # loopback, outside what the server allows unless configured
ALLOWED = f"{RECEIVER_HOST}, hooks.allowed.test"
# The test DNS: names to the answers the sender gets (a list: one answer per lookup, the last one repeating).
DNS: dict[str, list[list[str]]] = {
    "hooks.allowed.test": [[RECEIVER_HOST]],
    "loopback.test": [["127.0.0.1"]],
    "private.test": [["10.1.2.3"]],
    "linklocal.test": [["169.254.10.20"]],
    "metadata.test": [["169.254.169.254"]],
    "multicast.test": [["239.1.2.3"]],
    "v6loopback.test": [["::1"]],
    "mixed.test": [["93.184.216.34", "192.168.1.9"]],
    "public.test": [["93.184.216.34"]],
}


@dataclass
class Network:
    """What the sender's resolver and connect were asked, and the connects that must never happen."""

    lookups: dict[str, int] = field(default_factory=dict)
    connects: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    answers: dict[str, list[list[str]]] = field(default_factory=lambda: {k: list(v) for k, v in DNS.items()})

    def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown test name")
        n = self.lookups.get(host, 0)
        self.lookups[host] = n + 1
        seq = self.answers[host]
        return seq[min(n, len(seq) - 1)]

    def connect(self, ip: str, port: int, timeout: float) -> httpcore.NetworkStream:
        self.connects.append(ip)
        if ip != RECEIVER_HOST:
            self.forbidden.append(ip)
            raise httpcore.ConnectError(f"the test network refuses {ip}")
        return system_connect(ip, port, timeout)

    def guard(self) -> Guard:
        return Guard(AllowList.parse(ALLOWED), self.resolve, self.connect)


@dataclass
class Delivered:
    """One request the receiver got."""

    path: str
    id: str
    status: int
    payload: Any
    verified_by: list[int]  # indexes of the secrets that verify it
    at: float


class Receiver:
    """An ASGI app that answers each path with its configured status (200 by default), verifying every request
    with the secrets it was given (``standardwebhooks``): an unverifiable request is kept in ``unverified``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.secrets: dict[str, list[str]] = {}
        self.status: dict[str, int] = {}
        self.got: list[Delivered] = []
        self.unverified: list[str] = []
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away mid-request (a killed server): nothing was delivered, nothing to check
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        verified, payload = [], None
        for i, secret in enumerate(self.secrets.get(path, [])):
            try:
                payload = standardwebhooks.Webhook(secret).verify(body, headers)
                verified.append(i)
            except standardwebhooks.webhooks.WebhookVerificationError:
                pass
        status = self.status.get(path, 200)
        with self.lock:
            if not verified:
                self.unverified.append(f"{path} {headers.get('webhook-id')}")
            self.got.append(Delivered(path, headers.get("webhook-id", ""), status, payload, verified, time.monotonic()))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"not now"})

    def delivered(self, path: str) -> list[Delivered]:
        """The requests of a path that were answered 2xx and verified."""
        with self.lock:
            return [d for d in self.got if d.path == path and d.status < 300 and d.verified_by]


def serve_on(app: Any, host: str) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Run an ASGI app under uvicorn on ``host`` and a free port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    return server, thread, port


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[tuple[Receiver, str]]:
    """A real receiver for the whole run, on 127.0.0.3."""
    receiver = Receiver()
    server, thread, port = serve_on(receiver, RECEIVER_HOST)
    yield receiver, f"http://{RECEIVER_HOST}:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def receiver(receiver_server: tuple[Receiver, str]) -> Receiver:
    """The receiver, emptied for this test."""
    receiver_server[0].reset()
    return receiver_server[0]


@pytest.fixture
def hook_base(receiver_server: tuple[Receiver, str]) -> str:
    """The receiver's address."""
    return receiver_server[1]


@pytest.fixture
def network() -> Iterator[Network]:
    """The sender's network; fails the test when anything but the receiver was connected to."""
    net = Network()
    yield net
    assert net.forbidden == [], f"connections attempted to {net.forbidden}"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Settings with short polls, timeouts and retries."""
    return settings.model_copy(
        update={"webhook_poll": 0.02, "webhook_timeout": 2.0, "webhook_retry_scale": 0.0002, "webhook_threads": 2}
    )


@pytest.fixture
def api(http_server: Any, fast: Settings, db: Database, network: Network) -> Iterator[httpx.Client]:
    """An HTTP client of the live server, its app reaching the test network."""
    switch, url = http_server
    switch.app = create_app(fast, db, network.guard())
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def deliver(db: Database, fast: Settings, network: Network) -> Iterator[Callable[..., Delivery]]:
    """Start delivery threads (with these settings changes); stopped at the end of the test."""
    started: list[Delivery] = []

    def start(**changes: Any) -> Delivery:
        settings = fast.model_copy(update=changes)
        d = Delivery(db, settings, network.guard(), settings.resolved_secret()).start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


def make_users(api: httpx.Client, headers: dict[str, str], n: int, prefix: str = "u") -> None:
    """Create ``n`` participants (one ``user.created`` change each)."""
    for i in range(n):
        r = api.post(
            "/api/v1/users", json={"emailAddress": f"{prefix}{i}@example.com", "role": "Participant"}, headers=headers
        )
        assert r.status_code == 201, r.text
