"""Secrets sealed at rest: readable back only with the same server key and for the same purpose."""

import pytest
from cryptography.fernet import InvalidToken

from payroster.services import sealing


def test_a_sealed_secret_reads_back_only_with_its_key_and_purpose() -> None:
    sealed = sealing.seal("server-key-1", sealing.WEBHOOK_SECRET, "whsec_abc")
    assert "whsec_abc" not in sealed
    assert sealing.unseal("server-key-1", sealing.WEBHOOK_SECRET, sealed) == "whsec_abc"
    assert sealing.unseal("server-key-2", sealing.WEBHOOK_SECRET, sealed) is None
    assert sealing.unseal("server-key-1", sealing.SSO_CLIENT_SECRET, sealed) is None
    assert sealing.unseal("server-key-1", sealing.WEBHOOK_SECRET, "not a token") is None


KEY = "a-secret-key-of-forty-characters-or-so!!"


def test_a_purpose_reads_what_it_sealed_and_nothing_another_purpose_or_key_sealed() -> None:
    token = sealing.box(KEY, b"payroster.flash").encrypt(b"notice")
    assert sealing.box(KEY, b"payroster.flash").decrypt(token) == b"notice"
    with pytest.raises(InvalidToken):
        sealing.box(KEY, b"payroster.webhook-secret").decrypt(token)
    with pytest.raises(InvalidToken):
        sealing.box(KEY + "x", b"payroster.flash").decrypt(token)
