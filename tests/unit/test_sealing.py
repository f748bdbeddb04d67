"""Each purpose seals with a key of its own derived from PAYROSTER_SECRET_KEY (services/sealing.py)."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from payroster.services import sealing

KEY = "a-secret-key-of-forty-characters-or-so!!"


def test_a_purpose_reads_what_it_sealed_and_nothing_another_purpose_or_key_sealed() -> None:
    token = sealing.box(KEY, b"payroster.flash").encrypt(b"notice")
    assert sealing.box(KEY, b"payroster.flash").decrypt(token) == b"notice"
    with pytest.raises(InvalidToken):
        sealing.box(KEY, b"payroster.webhook-secret").decrypt(token)
    with pytest.raises(InvalidToken):
        sealing.box(KEY + "x", b"payroster.flash").decrypt(token)
