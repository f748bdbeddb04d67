"""Secrets the server must read back (an SSO provider's client secret, a webhook endpoint's signing secret), kept
encrypted at rest: Fernet (AES-CBC with an HMAC) under a key derived from ``PAYROSTER_SECRET_KEY`` with HKDF, one
derived key per purpose, so that a sealed value of one kind is never readable as another and none shares a key
with the signed cookies. Rotating ``PAYROSTER_SECRET_KEY`` leaves what was sealed unreadable: an admin enters the
SSO secret again, a webhook secret is rotated. The pages' one-shot flash cookie uses a derived key of its own too
(``box``)."""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SSO_CLIENT_SECRET = b"payroster.sso-client-secret"
WEBHOOK_SECRET = b"payroster.webhook-secret"


@functools.lru_cache(maxsize=16)
def box(secret_key: str, purpose: bytes) -> Fernet:
    """The Fernet key of ``purpose`` (e.g. ``b"payroster.flash"``), derived from ``secret_key``."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, purpose: bytes, plaintext: str) -> str:
    """The stored form of a secret for ``purpose``."""
    return box(secret_key, purpose).encrypt(plaintext.encode()).decode()


def unseal(secret_key: str, purpose: bytes, sealed: str) -> str | None:
    """A stored secret, or None when it was sealed under another server key or for another purpose."""
    try:
        return box(secret_key, purpose).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
