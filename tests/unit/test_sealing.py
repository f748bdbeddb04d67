"""Secrets sealed at rest: readable back only with the same server key and for the same purpose."""

from payroster.services import sealing


def test_a_sealed_secret_reads_back_only_with_its_key_and_purpose() -> None:
    sealed = sealing.seal("server-key-1", sealing.WEBHOOK_SECRET, "whsec_abc")
    assert "whsec_abc" not in sealed
    assert sealing.unseal("server-key-1", sealing.WEBHOOK_SECRET, sealed) == "whsec_abc"
    assert sealing.unseal("server-key-2", sealing.WEBHOOK_SECRET, sealed) is None
    assert sealing.unseal("server-key-1", sealing.SSO_CLIENT_SECRET, sealed) is None
    assert sealing.unseal("server-key-1", sealing.WEBHOOK_SECRET, "not a token") is None
