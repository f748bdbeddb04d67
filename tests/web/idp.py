"""A real OpenID provider on loopback for the SSO tests: ``oidc-provider-mock`` (discovery, JWKS, a log-in form
where the subject is typed, signed tokens), served by werkzeug on 127.0.0.1 in a thread.

In front of it, ``Tamper`` can rewrite the ID token the token endpoint returns (another issuer, audience, expiry,
nonce) and sign it with keys of the test's choosing, which it then also serves as the provider's JWKS: the
refusals that a well-behaved provider never produces. It passes everything through untouched unless asked."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import oidc_provider_mock
from joserfc import jws, jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

_PROVIDER = re.compile(r'href="/sso/start\?workspace=[^&]*&amp;provider=([0-9a-f-]{36})')
StartResponse = Callable[..., Any]


def new_key(kid: str) -> RSAKey:
    """A fresh RSA signing key with that key id."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


@dataclass
class Tamper:
    """WSGI middleware over the provider: rewrites ID-token claims, re-signs, serves chosen keys."""

    app: Any
    claims: dict[str, Any] = field(default_factory=dict)
    signing: RSAKey | None = None
    served: list[RSAKey] | None = None
    jwks_fetches: int = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/jwks":
            self.jwks_fetches += 1
            if self.served is not None:
                keys = [k.as_dict(private=False) for k in self.served]
                return self._json(start_response, "200 OK", {"keys": keys})
        if path != "/oauth2/token" or (not self.claims and self.signing is None):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        captured: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return lambda _data: None

        body = json.loads(b"".join(self.app(environ, keep)))
        if "id_token" in body:
            assert self.signing is not None, "rewritten claims need a signing key"
            payload = json.loads(jws.extract_compact(body["id_token"].encode()).payload)
            header = {"alg": "RS256", "kid": self.signing.kid}
            body["id_token"] = jwt.encode(header, {**payload, **self.claims}, self.signing)
        return self._json(start_response, captured["status"], body)

    @staticmethod
    def _json(start_response: StartResponse, status: str, data: Any) -> list[bytes]:
        raw = json.dumps(data).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
        return [raw]

    def resign(self, key: RSAKey, served: list[RSAKey] | None = None, **claims: Any) -> None:
        """From now on, ID tokens carry ``claims`` and are signed with ``key``; the JWKS serves ``served``."""
        self.signing, self.served, self.claims = key, served if served is not None else [key], claims


@dataclass
class Provider:
    """A running provider: its issuer URL and its tampering front."""

    url: str
    tamper: Tamper

    def user(self, sub: str, **claims: Any) -> None:
        """Define the claims the provider gives for ``sub`` (as its directory would hold them)."""
        response = httpx.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert response.status_code == 204, response.text


@contextmanager
def running_provider() -> Iterator[Provider]:
    """``oidc-provider-mock`` on 127.0.0.1 (any port), requiring a nonce, until the block ends."""
    tamper = Tamper(oidc_provider_mock.app(require_nonce=True))
    server = make_server("127.0.0.1", 0, tamper, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}", tamper)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def start(client: httpx.Client, slug: str, next_url: str = "") -> httpx.Response:
    """Press the workspace's (first) "Sign in with" button: the answer redirects to the provider."""
    page = client.get("/login", params={"workspace": slug})
    assert page.status_code == 200, page.text
    found = _PROVIDER.search(page.text)
    assert found, "the log-in page shows no provider button"
    return client.get("/sso/start", params={"workspace": slug, "provider": found.group(1), "next": next_url})


def authorize(client: httpx.Client, location: str, sub: str) -> str:
    """Type the subject into the provider's log-in form; returns the callback URL it redirects to."""
    form = client.get(location)
    assert form.status_code == 200 and 'name="sub"' in form.text, form.text[:500]
    answer = client.post(location, data={"sub": sub})
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["location"]


def sign_in(client: httpx.Client, slug: str, sub: str, next_url: str = "") -> httpx.Response:
    """The whole journey over HTTP; returns PayRoster's answer to the callback (not followed)."""
    started = start(client, slug, next_url)
    assert started.status_code == 303, started.text[:500]
    return client.get(authorize(client, started.headers["location"], sub))
