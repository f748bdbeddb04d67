"""Skip tokens: opaque, HMAC-signed, bound to the workspace and to the query they continue."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from payroster.odata.errors import ODataBadQuery


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(workspace: str, path: str, options: list[tuple[str, str]]) -> str:
    """What a token is bound to: the workspace, the resource path and the shaping options."""
    material = json.dumps([workspace, path, sorted(options)], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def sign(secret: str, state: dict[str, Any]) -> str:
    """A token carrying ``state``."""
    payload = json.dumps(state, separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
    return f"{_b64(payload)}.{_b64(mac)}"


def unseal(secret: str, token: str) -> dict[str, Any]:
    """The state of a token this server signed; ``ValueError`` for anything altered or malformed."""
    try:
        body, _, mac = token.partition(".")
        payload = _unb64(body)
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise ValueError("bad signature")
        state = json.loads(payload)
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not a token of this server") from None
    if not isinstance(state, dict):
        raise ValueError("not a token of this server")
    return state


def verify(secret: str, token: str, bound_to: str) -> dict[str, Any]:
    """The state of a genuine token for this query; 400 for anything altered, foreign or malformed."""
    try:
        state = unseal(secret, token)
    except ValueError:
        state = {}
    if state.get("q") != bound_to or "k" in state:  # "k": a delta token (odata/delta.py), not a skip token
        raise ODataBadQuery("the $skiptoken is not valid for this request", target="$skiptoken")
    return state
