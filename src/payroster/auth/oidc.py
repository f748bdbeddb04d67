"""The OpenID Connect client side of SSO sign-in, on Authlib: discovery, the authorization URL (code flow with
PKCE S256), the code exchange and the ID token's validation (signature against the provider's JWKS, fetched
again once for an unknown ``kid``; issuer, audience, expiry, issued-at skew, nonce). The rules about who may
enter a workspace are the service's (``services.sso``); this module only says what the provider vouched for,
or why its answer is refused.

Authlib's framework integrations keep ``state`` in a cookie session; PayRoster keeps it in the database
(``services.sso``), so this module composes Authlib's framework-free parts the way its integrations do.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.base_client.sync_app import BaseApp, OAuth2Mixin
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError

log = logging.getLogger("payroster.sso")

TIMEOUT = 10  # seconds for each call to a provider (discovery, JWKS, token, userinfo)
LEEWAY = 60  # seconds of clock difference allowed on ``exp`` and ``iat``
LOOPBACK_NAMES = ("localhost",)


class OidcRefusal(Exception):
    """The provider's answer cannot be trusted; ``reason`` names why (``services.sso.REASONS``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def issuer_problem(issuer: str) -> str | None:
    """Why ``issuer`` cannot be a provider's issuer: https only, except loopback hosts (development, tests)."""
    try:
        parts = urlsplit(issuer)
    except ValueError:
        return "not a URL"
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        return "write the issuer as https://host[/path], without query, fragment or credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return None
    return "the issuer must use https (plain http only for localhost and 127.0.0.1)"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (Authlib's own check also obeys an environment variable that would
    loosen this rule for every workspace, hence these few lines)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ProviderConfig:
    """What a sign-in needs of a provider; ``version`` changes when the provider is edited."""

    id: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str
    version: str


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and what the callback must match."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class _App(OAuth2Mixin, OpenIDMixin, BaseApp):  # type: ignore[misc]
    """One provider's Authlib client: its discovery document and JWKS are loaded once and kept."""

    client_cls = OAuth2Session


class Clients:
    """Authlib clients by provider, kept between sign-ins (discovery and keys are fetched once, the keys again
    when a token names an unknown ``kid``). One per application."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._timeout = timeout
        self._apps: dict[tuple[str, str], _App] = {}
        self._lock = threading.Lock()

    def _app(self, cfg: ProviderConfig) -> _App:
        key = (cfg.id, cfg.version)
        with self._lock:
            app = self._apps.get(key)
            if app is None:
                for old in [k for k in self._apps if k[0] == cfg.id]:
                    del self._apps[old]
                app = _App(
                    None,
                    name=cfg.id,
                    client_id=cfg.client_id,
                    client_secret=cfg.client_secret,
                    server_metadata_url=cfg.issuer + "/.well-known/openid-configuration",
                    client_kwargs={
                        "scope": cfg.scopes,
                        "code_challenge_method": "S256",
                        "default_timeout": self._timeout,
                    },
                )
                self._apps[key] = app
        self._check_metadata(cfg, app)
        return app

    def _check_metadata(self, cfg: ProviderConfig, app: _App) -> None:
        try:
            metadata = app.load_server_metadata()
        except (requests.RequestException, ValueError) as exc:
            raise OidcRefusal("providerUnavailable", f"discovery document: {type(exc).__name__}") from None
        # OpenID Connect Discovery: the document's issuer is exactly the one configured.
        if metadata.get("issuer") != cfg.issuer:
            self.forget(cfg.id)
            raise OidcRefusal("issuer", f"discovery document names {metadata.get('issuer')!r}")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = metadata.get(name)
            if not isinstance(value, str) or issuer_problem(value) is not None:
                self.forget(cfg.id)
                raise OidcRefusal("providerUnavailable", f"discovery document: unusable {name}")

    def forget(self, provider_id: str) -> None:
        """Drop what is kept of a provider (its document named another issuer, or it was removed)."""
        with self._lock:
            for old in [k for k in self._apps if k[0] == provider_id]:
                del self._apps[old]

    def authorization(self, cfg: ProviderConfig, redirect_uri: str) -> Authorization:
        """The provider's authorization URL for a new sign-in, with fresh ``state``, ``nonce`` and PKCE verifier."""
        made = self._app(cfg).create_authorization_url(redirect_uri)
        return Authorization(made["url"], made["state"], made["nonce"], made["code_verifier"])

    def identify(
        self, cfg: ProviderConfig, redirect_uri: str, code: str, code_verifier: str, nonce: str
    ) -> dict[str, Any]:
        """Exchange the code and validate the ID token; the claims it vouches for, with the userinfo endpoint's
        e-mail when the token carries none."""
        app = self._app(cfg)
        try:
            token = app.fetch_access_token(redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
        except OAuthError as exc:
            raise OidcRefusal("providerError", f"token endpoint: {exc.error}") from None
        except (requests.RequestException, ValueError) as exc:
            raise OidcRefusal("providerUnavailable", f"token endpoint: {type(exc).__name__}") from None
        if "id_token" not in token:
            raise OidcRefusal("token", "no ID token in the token response")
        options = {
            "iss": {"essential": True, "value": cfg.issuer},
            "aud": {"essential": True, "value": cfg.client_id},
            "sub": {"essential": True},
        }
        try:
            claims = dict(app.parse_id_token(token, nonce=nonce, claims_options=options, leeway=LEEWAY))
        except ExpiredTokenError:
            raise OidcRefusal("expired") from None
        except ClaimError as exc:
            reason = {"iss": "issuer", "aud": "audience", "azp": "audience", "nonce": "nonce"}.get(exc.claim, "token")
            raise OidcRefusal(reason, f"claim {exc.claim}") from None
        except (BadSignatureError, InvalidKeyIdError):
            raise OidcRefusal("signature") from None
        except JoseError as exc:
            raise OidcRefusal("token", type(exc).__name__) from None
        except (requests.RequestException, ValueError) as exc:
            raise OidcRefusal("providerUnavailable", f"keys: {type(exc).__name__}") from None
        if "email" not in claims and app.load_server_metadata().get("userinfo_endpoint"):
            claims.update(self._userinfo(app, token, claims["sub"]))
        return claims

    def _userinfo(self, app: _App, token: dict[str, Any], subject: str) -> dict[str, Any]:
        try:
            info = dict(app.userinfo(token=token))
        except (OAuthError, requests.RequestException, ValueError) as exc:
            raise OidcRefusal("providerUnavailable", f"userinfo: {type(exc).__name__}") from None
        # OpenID Connect Core: userinfo answers for the ID token's subject, or is not believed.
        if info.get("sub") != subject:
            raise OidcRefusal("token", "userinfo names another subject")
        return {k: info[k] for k in ("email", "email_verified") if k in info}
