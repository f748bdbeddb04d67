"""The public address of the service, for the absolute links every door writes (OData context and next
links, SCIM ``Location`` and ``meta.location``).

``PAYROSTER_BASE_URL`` wins; otherwise the request's own scheme and host, replaced by ``X-Forwarded-Proto``
and ``X-Forwarded-Host`` only when the request comes from an address in ``PAYROSTER_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request


def public_base(request: Request) -> str:
    """``scheme://host`` for absolute links: the configured base URL, trusted forwarded headers, or the request."""
    settings = request.app.state.settings
    if settings.base_url:
        return str(settings.base_url).rstrip("/")
    scheme, host = request.url.scheme, request.headers.get("host", request.url.netloc)
    client = request.client.host if request.client else None
    if client and _trusted(client, settings.trusted_proxies):
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}"


def _trusted(address: str, proxies: str | None) -> bool:
    if not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in proxies.split(","):
        entry = entry.strip()
        if entry and ip in ipaddress.ip_network(entry, strict=False):
            return True
    return False


def client_address(request: Request) -> str:
    """The client's address: the first ``X-Forwarded-For`` entry behind a trusted proxy, else the peer."""
    peer = request.client.host if request.client else "unknown"
    if _trusted(peer, request.app.state.settings.trusted_proxies):
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        return forwarded or peer
    return peer
