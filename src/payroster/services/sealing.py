"""Keys of their own derived from ``PAYROSTER_SECRET_KEY``: the stored SSO client secrets, the stored webhook
secrets and the pages' one-shot flash cookie are each sealed (Fernet: AES-CBC with an HMAC) with a key derived for
that purpose alone (HKDF-SHA256), so they share nothing with each other nor with the signed cookies. Rotating
``PAYROSTER_SECRET_KEY`` leaves what was sealed unreadable."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def box(secret_key: str, purpose: bytes) -> Fernet:
    """The Fernet key of ``purpose`` (e.g. ``b"payroster.flash"``), derived from ``secret_key``."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))
