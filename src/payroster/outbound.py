"""Requests PayRoster sends to addresses its users typed (webhook endpoints), safe against server-side request
forgery: the host is resolved once, every answer is checked, and the connection goes to the address checked.

The check happens inside the connection pool's network backend (httpcore), at connect time: there is no second
resolution between the check and the connect for a DNS answer to change in (DNS rebinding), and a kept-alive
connection is one to an address that passed. TLS still verifies the certificate against the host name (the
pool hands the name to ``start_tls``), and the ``Host`` header is the URL's. httpcore rather than httpx: it
follows no redirect and reads no proxy from the environment, and takes a network backend; a network backend is
what we hand-write (a hundred lines), not the HTTP client.

Every attempt is bounded in time as a whole (``timeout``: connect, send, headers and body together, even when
the receiver sends one byte at a time) and in bytes (at most ``MAX_READ`` of the answer are read, the first
``KEPT`` kept).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

KEPT = 1024  # bytes of an answer kept for the delivery log
MAX_READ = 64 * 1024  # bytes of an answer read at most, then the connection is closed
MAX_URL = 2048
METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[str, int, float], httpcore.NetworkStream]


class Refused(Exception):
    """A target refused before any connection: what kind of address it is, in words."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system's resolver answers for ``host``, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def system_connect(ip: str, port: int, timeout: float) -> httpcore.NetworkStream:
    """A TCP connection to exactly this address."""
    return httpcore.SyncBackend().connect_tcp(ip, port, timeout=timeout)


@dataclass(frozen=True)
class AllowList:
    """``PAYROSTER_WEBHOOK_ALLOW_HOSTS``: host names and addresses or networks that may be reached over plain
    http and may be private (loopback, a private network...)."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """From a comma-separated list: ``hooks.internal, 10.1.0.0/16, 127.0.0.3``."""
        names: set[str] = set()
        networks: list[Network] = []
        for item in (text or "").split(","):
            item = item.strip().lower().strip("[]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def host(self, host: str) -> bool:
        """True when the host, as written in a URL, is listed (by name, or as an address in a listed network)."""
        address = _literal(host)
        if address is None:
            return host.lower().rstrip(".") in self.names
        return self.address(address)

    def address(self, address: Address) -> bool:
        """True when an address lies in a listed network."""
        return any(address.version == n.version and address in n for n in self.networks)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refusal(address: Address) -> str | None:
    """Why an address may not be reached unless allowed (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "the cloud metadata address"
    for kind, refused in (
        ("a loopback address", address.is_loopback),
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
    ):
        if refused:
            return kind
    return None if address.is_global else "not a public address"


def check_address(host: str, address: Address, allow: AllowList) -> None:
    """Raise ``Refused`` when ``host``'s answer ``address`` may not be reached."""
    if allow.address(address):
        return
    why = refusal(address)
    if why is None:
        return
    if address in METADATA or not allow.host(host):  # an allowed name never opens the metadata address
        raise Refused(f"{host} is {why} ({address})" if str(address) != host.strip("[]") else f"{host} is {why}")


def url_problem(url: str, allow: AllowList) -> str | None:
    """What is wrong with a webhook URL as written (None: nothing), without resolving it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return f"a URL of 1 to {MAX_URL} characters is required"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "the URL holds spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL is malformed"
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        return "an absolute https URL is required"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are refused (authenticate the signature instead)"
    if parts.fragment:
        return "a URL fragment is not sent; remove it"
    if port == 0:
        return "port 0 is not a port"
    if parts.scheme == "http" and not allow.host(host):
        return "https is required (plain http only to hosts in PAYROSTER_WEBHOOK_ALLOW_HOSTS)"
    address = _literal(host)
    if address is not None:
        try:
            check_address(host, address, allow)
        except Refused as exc:
            return f"refused: {exc}"
    return None


@dataclass
class Guard:
    """How the sender reaches the network: the resolver and the connect (both replaced in tests, which must
    never connect anywhere but loopback), and what the configuration allows."""

    allow: AllowList = field(default_factory=AllowList)
    resolve: Resolver = system_resolve
    connect: Connector = system_connect

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses of ``host``: every answer must pass, or the target is refused."""
        literal = _literal(host)
        if literal is not None:
            answers = [str(literal)]
        else:
            try:
                answers = self.resolve(host, port)
            except OSError as exc:
                raise Refused(f"{host} does not resolve ({exc.strerror or exc})") from None
            if not answers:
                raise Refused(f"{host} does not resolve")
        for answer in answers:
            check_address(host, ipaddress.ip_address(answer.split("%", 1)[0]), self.allow)
        return answers

    def check_host(self, host: str, port: int) -> str | None:
        """Why ``host`` may not be reached now (None: it may), resolving it."""
        try:
            self.addresses(host, port)
        except Refused as exc:
            return f"refused: {exc}"
        return None


class _Clock:
    """The deadline of the current attempt, read by every read and write of its connection."""

    def __init__(self) -> None:
        self.deadline = time.monotonic()

    def left(self, timeout: float | None) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the attempt's time is spent")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the attempt's deadline (a receiver sending one byte at a
    time no longer extends it)."""

    def __init__(self, inner: httpcore.NetworkStream, clock: _Clock) -> None:
        self._inner = inner
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._clock.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._clock.left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, self._clock.left(timeout)), self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """The pool's network: resolve once, check every answer, connect to a checked address."""

    def __init__(self, guard: Guard, clock: _Clock) -> None:
        self._guard = guard
        self._clock = clock

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self._guard.addresses(host, port):
            try:
                return _Stream(self._guard.connect(address, port, self._clock.left(timeout)), self._clock)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise Refused("unix sockets are not a webhook target")


@dataclass(frozen=True)
class Outcome:
    """One attempt: the status (None when no answer came), why it failed, how long it took, the answer's start."""

    status: int | None
    error: str | None
    duration_ms: int
    head: bytes


class Sender:
    """POSTs to checked addresses, one attempt at a time (one sender per delivery thread: it is not shared)."""

    def __init__(self, guard: Guard, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._clock = _Clock()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=32,
            keepalive_expiry=30.0,
            network_backend=_Backend(guard, self._clock),
        )

    def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """Send one request and read the start of its answer, within ``timeout`` seconds in all."""
        start = time.monotonic()
        self._clock.deadline = start + self.timeout
        step = {"connect": self.timeout, "read": self.timeout, "write": self.timeout, "pool": self.timeout}
        status: int | None = None
        head = bytearray()
        error: str | None = None
        try:
            with self._pool.stream(
                "POST", url, headers=list(headers.items()), content=body, extensions={"timeout": step}
            ) as response:
                status = response.status
                read = 0
                for chunk in response.iter_stream():
                    read += len(chunk)
                    head += chunk[: KEPT - len(head)]
                    if read >= MAX_READ:
                        break  # leaving the block closes the connection: the rest is never read
        except Refused as exc:
            error = f"refused: {exc}"
        except httpcore.TimeoutException:
            error = f"timed out after {self.timeout:g} s"
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
            error = f"connection failed: {type(exc).__name__}: {str(exc)[:200]}"
        if error is not None and status is not None:
            error = f"the answer was cut short ({error})"
        return Outcome(status, error, int((time.monotonic() - start) * 1000), bytes(head))

    def close(self) -> None:
        """Close every kept-alive connection."""
        self._pool.close()
