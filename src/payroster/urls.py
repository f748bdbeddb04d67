"""The public address of the service, for the absolute links every door writes (OData context and next
links, SCIM ``Location`` and ``meta.location``), and the client's own address behind a proxy.

``PAYROSTER_BASE_URL`` wins; otherwise the request's own scheme and host, replaced by ``X-Forwarded-Proto``
and ``X-Forwarded-Host`` only when the request comes from an address in ``PAYROSTER_TRUSTED_PROXIES``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# Set in the scope by ``ForwardedHeaders``: whether the peer that sent the request is a trusted proxy.
_FROM_PROXY = "payroster.from_trusted_proxy"


class ForwardedHeaders:
    """ASGI middleware: behind a trusted proxy, the client address and scheme are those the proxy saw.

    uvicorn's ``ProxyHeadersMiddleware`` does the work: the client is the rightmost ``X-Forwarded-For`` entry that
    is not a trusted proxy (each proxy appends the address it received from; what a client writes itself stays to
    the left, docs/operations.md "Behind a proxy"), the scheme ``X-Forwarded-Proto``. It rewrites the request's
    scope, so the log-in throttle and the access log see the real client. What it leaves aside is
    ``X-Forwarded-Host``, so whether the peer was trusted is noted here for :func:`public_base`.
    """

    def __init__(self, app: Any, proxies: str) -> None:
        self.proxied = ProxyHeadersMiddleware(app, trusted_hosts=proxies)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            scope[_FROM_PROXY] = peer is not None and peer[0] in self.proxied.trusted_hosts
        await self.proxied(scope, receive, send)


def public_base(request: Request) -> str:
    """``scheme://host`` for absolute links: the configured base URL, trusted forwarded headers, or the request."""
    settings = request.app.state.settings
    if settings.base_url:
        return str(settings.base_url).rstrip("/")
    # From the scope, not ``request.url``: building the URL object was a third of ``GET /api/v1/me``'s handler time.
    host = request.headers.get("host") or request.url.netloc
    if request.scope.get(_FROM_PROXY):
        # The nearest proxy's entry, as for the client address: an earlier one may be the client's own.
        host = request.headers.get("x-forwarded-host", host).split(",")[-1].strip() or host
    return f"{request.scope.get('scheme', 'http')}://{host}"


def client_address(request: Request) -> str:
    """The client's address: behind a trusted proxy the one it forwarded (``ForwardedHeaders``), else the peer."""
    return request.client.host if request.client else "unknown"
