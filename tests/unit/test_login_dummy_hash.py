"""An unknown e-mail's log-in does the Argon2 work of a wrong password; the hash it verifies against is made at
the first such log-in, not when the module is imported (every server and CLI process used to pay for it)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from argon2 import PasswordHasher

from payroster.db.engine import Database
from payroster.services import accounts


def test_importing_the_application_hashes_no_password() -> None:
    counted = (
        "import argon2\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)\n"
        "import payroster.app, payroster.cli\n"
        "print(len(calls))\n"
    )
    done = subprocess.run([sys.executable, "-c", counted], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


def test_an_unknown_email_is_checked_against_a_current_argon2_hash(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts._dummy_hash.cache_clear()
    verified: list[str] = []
    real = PasswordHasher.verify

    def verify(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002 - argon2's own name
        verified.append(hash)
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    with db.read() as s:
        assert accounts.check_login(s, "nobody@example.com", "a wrong password") == []
        assert accounts.check_login(s, "nobody-else@example.com", "another one") == []
    assert len(verified) == 2
    assert verified[0] == verified[1]  # made once, then kept
    assert verified[0].startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(verified[0])  # the hasher's current cost, as real accounts' hashes
