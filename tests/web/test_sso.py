"""Sign-in through a workspace's OpenID provider, over HTTP against a real provider on loopback
(``oidc-provider-mock``, tests/web/idp.py): the happy path, matching, every refusal, require-SSO, secrets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, SsoIdentity
from payroster.services import sso
from payroster.services.context import Actor
from tests.conftest import TEST_SETTINGS, WS
from tests.web import idp
from tests.web.conftest import make_user

SECRET = "cs-7f3a9d21-very-secret-value"
SOMEONE = "rep@example.com"


@pytest.fixture
def provider() -> Iterator[idp.Provider]:
    """A real OpenID provider on 127.0.0.1 for this test."""
    with idp.running_provider() as running:
        yield running


def add_provider(db: Database, ws: WS, issuer: str, **extra: Any) -> uuid.UUID:
    """Register the provider for the workspace as an admin would (the page's service)."""
    inp = sso.ProviderInput(name="Acme IdP", issuer=issuer, client_id="payroster-app", client_secret=SECRET, **extra)
    with db.write(ws.id) as s:
        return sso.add_provider(s, Actor(ws.id, None, "cli", "cli"), TEST_SETTINGS["secret_key"], inp).id


def set_rules(db: Database, ws: WS, require: bool = False, create: bool = False, glass: tuple[str, ...] = ()) -> None:
    """The workspace's sign-in rules, as the settings page saves them."""
    with db.write(ws.id) as s:
        sso.set_rules(s, Actor(ws.id, None, "cli", "cli"), require, create, list(glass))


def refusals(db: Database, ws: WS) -> list[str]:
    """The reasons of the workspace's refused sign-ins, as its activity log shows them."""
    with db.read() as s:
        rows = s.scalars(
            select(AuditEvent.changes).where(AuditEvent.workspace_id == ws.id, AuditEvent.action == "sso.signInRefused")
        )
        return [re.search(r'"after":"(\w+)"', c).group(1) for c in rows]  # type: ignore[union-attr]


def assert_refused(
    answer: httpx.Response, reason: str, db: Database, ws: WS | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused with the reason shown to the person, logged for the operator and audited for the admins."""
    assert answer.status_code == 403, answer.text[:500]
    assert f'data-reason="{reason}"' in answer.text
    assert sso.REASONS[reason].split(":")[0] in answer.text.replace("&#39;", "'")
    assert "payroster_session" not in answer.headers.get("set-cookie", "")
    assert any(f"reason={reason}" in r.getMessage() for r in caplog.records if r.name == "payroster.sso")
    if ws is not None:
        assert reason in refusals(db, ws)


def test_a_provisioned_user_signs_in_without_an_invitation(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    user_id = make_user(db, ws.id, SOMEONE, "Participant", password=None)
    add_provider(db, ws, provider.url)
    provider.user("okta-sub-1", email="Rep@Example.com", email_verified=True)
    answer = idp.sign_in(client, ws.slug, "okta-sub-1")
    assert answer.status_code == 303 and answer.headers["location"] == f"/users/{user_id}"
    page = client.get(f"/users/{user_id}")
    assert page.status_code == 200 and "Acme · Participant" in page.text
    with db.read() as s:
        linked = s.scalars(select(SsoIdentity).where(SsoIdentity.workspace_id == ws.id)).one()
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.target_id == uuid.UUID(user_id))))
    assert (linked.subject, str(linked.user_id)) == ("okta-sub-1", user_id)
    assert "sso.signedIn" in actions
