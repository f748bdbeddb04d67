"""Sign-in through a workspace's OpenID provider, over HTTP against a real provider on loopback
(``oidc-provider-mock``, tests/web/idp.py): the happy path, matching, every refusal, require-SSO, secrets."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from payroster.db.engine import Database
from payroster.db.models import AuditEvent, SsoAttempt, SsoIdentity, SsoProvider, utcnow
from payroster.domain.errors import Conflict, Invalid
from payroster.services import accounts, sso, users
from payroster.services.context import Actor
from payroster.services.inputs import UserInput
from tests.conftest import TEST_SETTINGS, WS
from tests.web import idp
from tests.web.conftest import csrf_of, http_login, make_user

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


@pytest.fixture
def signed_up(db: Database, ws: WS, provider: idp.Provider) -> str:
    """The workspace has the provider and a user the provider knows as ``sub-1`` with a verified e-mail."""
    add_provider(db, ws, provider.url)
    provider.user("sub-1", email=SOMEONE, email_verified=True)
    return make_user(db, ws.id, SOMEONE, "Participant", password=None)


def test_the_remembered_subject_is_matched_first_after_an_email_change(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str
) -> None:
    assert idp.sign_in(client, ws.slug, "sub-1").status_code == 303
    provider.user("sub-1", email="renamed@example.com", email_verified=True)
    with httpx.Client(base_url=str(client.base_url)) as other:
        answer = idp.sign_in(other, ws.slug, "sub-1")
    assert answer.status_code == 303 and answer.headers["location"] == f"/users/{signed_up}"


def test_refused_another_subject_with_a_remembered_users_email(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert idp.sign_in(client, ws.slug, "sub-1").status_code == 303
    provider.user("sub-2", email=SOMEONE, email_verified=True)
    with httpx.Client(base_url=str(client.base_url)) as other:
        assert_refused(idp.sign_in(other, ws.slug, "sub-2"), "subjectMismatch", db, ws, caplog)


def test_refused_wrong_issuer(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.tamper.resign(idp.new_key("k1"), iss="https://impostor.example")
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "issuer", db, ws, caplog)


def test_refused_token_for_another_client_id(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.tamper.resign(idp.new_key("k1"), aud="another-application")
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "audience", db, ws, caplog)


def test_refused_expired_token(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    provider.tamper.resign(idp.new_key("k1"), iat=now - 7200, exp=now - 3600)
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "expired", db, ws, caplog)


def test_refused_token_issued_in_the_future(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    provider.tamper.resign(idp.new_key("k1"), iat=now + 3600, exp=now + 7200)
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "token", db, ws, caplog)


def test_refused_bad_signature(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A token signed by a second provider's key, under the key id the provider's JWKS serves."""
    served, second = idp.new_key("k1"), idp.new_key("k1")
    provider.tamper.resign(second, served=[served])
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "signature", db, ws, caplog)


def test_refused_unknown_key_after_fetching_the_keys_once_more(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.tamper.resign(idp.new_key("stranger"), served=[idp.new_key("k1")])
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "signature", db, ws, caplog)
    assert provider.tamper.jwks_fetches == 2


def test_a_rotated_key_is_fetched_once_and_accepted(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str
) -> None:
    first = idp.new_key("2026-01")
    provider.tamper.resign(first)
    assert idp.sign_in(client, ws.slug, "sub-1").status_code == 303
    assert provider.tamper.jwks_fetches == 1
    provider.tamper.resign(idp.new_key("2026-02"), served=[first, idp.new_key("2026-02")])
    provider.tamper.served = [first, provider.tamper.signing]  # type: ignore[list-item]
    with httpx.Client(base_url=str(client.base_url)) as other:
        assert idp.sign_in(other, ws.slug, "sub-1").status_code == 303
    assert provider.tamper.jwks_fetches == 2


def test_refused_replayed_state(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = idp.start(client, ws.slug)
    callback = idp.authorize(client, started.headers["location"], "sub-1")
    assert client.get(callback).status_code == 303
    client.cookies.delete("payroster_session")
    assert_refused(client.get(callback), "stateReplayed", db, ws, caplog)


def test_refused_state_from_another_browser(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = idp.start(client, ws.slug)
    callback = idp.authorize(client, started.headers["location"], "sub-1")
    with httpx.Client() as other:
        other.get(str(client.base_url) + "/login")
        assert_refused(other.get(callback), "otherBrowser", db, ws, caplog)
    assert client.get(callback).status_code == 303  # the browser that started it still finishes


def test_refused_unknown_state(client: httpx.Client, db: Database, ws: WS, caplog: pytest.LogCaptureFixture) -> None:
    assert_refused(
        client.get("/sso/callback", params={"state": "forged", "code": "x"}), "stateUnknown", db, None, caplog
    )


def test_refused_expired_state(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = idp.start(client, ws.slug)
    callback = idp.authorize(client, started.headers["location"], "sub-1")
    with db.write() as s:
        s.execute(update(SsoAttempt).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert_refused(client.get(callback), "stateExpired", db, ws, caplog)


def test_refused_mismatched_nonce(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider.tamper.resign(idp.new_key("k1"), nonce="a-nonce-of-another-sign-in")
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "nonce", db, ws, caplog)


def test_refused_unverified_email_unless_the_provider_is_trusted(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, caplog: pytest.LogCaptureFixture
) -> None:
    add_provider(db, ws, provider.url)
    user_id = make_user(db, ws.id, SOMEONE, "Participant", password=None)
    provider.user("sub-1", email=SOMEONE, email_verified=False)
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "emailUnverified", db, ws, caplog)
    with db.write() as s:
        s.execute(update(SsoProvider).values(trust_unverified_email=True))
    answer = idp.sign_in(client, ws.slug, "sub-1")
    assert answer.status_code == 303 and answer.headers["location"] == f"/users/{user_id}"


def test_refused_email_of_a_deactivated_user(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    deactivate(db, ws, signed_up)
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "deactivated", db, ws, caplog)


def test_a_deactivated_users_session_ends_at_the_next_click(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert idp.sign_in(client, ws.slug, "sub-1").status_code == 303
    assert client.get(f"/users/{signed_up}").status_code == 200
    deactivate(db, ws, signed_up)
    assert client.get(f"/users/{signed_up}").headers["location"].startswith("/login")
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "deactivated", db, ws, caplog)


def deactivate(db: Database, ws: WS, user_id: str) -> None:
    """Deactivate a user as the API does."""
    with db.write(ws.id) as s:
        users.patch(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(user_id), UserInput(active=False))


def test_refused_email_of_a_user_of_another_workspace(
    client: httpx.Client, db: Database, ws: WS, ws_b: WS, provider: idp.Provider, caplog: pytest.LogCaptureFixture
) -> None:
    add_provider(db, ws, provider.url)
    make_user(db, ws_b.id, SOMEONE, "FullAdmin", password=None)
    provider.user("sub-1", email=SOMEONE, email_verified=True)
    answer = idp.sign_in(client, ws.slug, "sub-1")
    assert_refused(answer, "noAccount", db, ws, caplog)
    assert "ask a full administrator" in answer.text.lower()
    assert refusals(db, ws_b) == []


def test_refused_a_provider_of_workspace_a_used_to_enter_workspace_b(
    client: httpx.Client, db: Database, ws: WS, ws_b: WS, provider: idp.Provider, signed_up: str
) -> None:
    make_user(db, ws_b.id, SOMEONE, "FullAdmin", password=None)
    page = client.get("/login", params={"workspace": ws.slug})
    provider_a = re.search(r"provider=([0-9a-f-]{36})", page.text).group(1)  # type: ignore[union-attr]
    answer = client.get("/sso/start", params={"workspace": ws_b.slug, "provider": provider_a})
    assert answer.status_code == 404 and provider.url not in answer.headers.get("location", "")
    # Through its own workspace the same provider signs the person into workspace A only.
    assert idp.sign_in(client, ws.slug, "sub-1").status_code == 303
    assert "Acme · Participant" in client.get(f"/users/{signed_up}").text


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_refused_open_redirect_through_the_return_url(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str, target: str
) -> None:
    answer = idp.sign_in(client, ws.slug, "sub-1", next_url=target)
    assert answer.status_code == 303 and answer.headers["location"] == f"/users/{signed_up}"


def test_a_local_return_url_is_followed(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, signed_up: str
) -> None:
    answer = idp.sign_in(client, ws.slug, "sub-1", next_url=f"/users/{signed_up}?tab=activity")
    assert answer.status_code == 303 and answer.headers["location"] == f"/users/{signed_up}?tab=activity"


def test_refused_a_disallowed_email_domain(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, caplog: pytest.LogCaptureFixture
) -> None:
    add_provider(db, ws, provider.url, domains=("acme.example",))
    make_user(db, ws.id, SOMEONE, "Participant", password=None)
    provider.user("sub-1", email=SOMEONE, email_verified=True)
    assert_refused(idp.sign_in(client, ws.slug, "sub-1"), "domain", db, ws, caplog)


def test_refused_a_subject_longer_than_the_standard_allows(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider, caplog: pytest.LogCaptureFixture
) -> None:
    """OpenID Connect caps ``sub`` at 255 characters; a longer one (a faulty or hostile provider) is a refusal the
    person is shown, not a database error when it is remembered."""
    add_provider(db, ws, provider.url)
    make_user(db, ws.id, SOMEONE, "Participant", password=None)
    provider.user("s" * 300, email=SOMEONE, email_verified=True)
    assert_refused(idp.sign_in(client, ws.slug, "s" * 300), "subjectInvalid", db, ws, caplog)


def test_a_listed_domain_is_compared_in_its_idna_form(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    """A provider listing müller.de admits its A-label form, as the e-mail key compares domains (README.md,
    "E-mail addresses"); before, the listed domain was only case-folded and the sign-in was refused."""
    add_provider(db, ws, provider.url, domains=("Müller.DE",))
    make_user(db, ws.id, "jdoe@xn--mller-kva.de", "Participant", password=None)
    provider.user("sub-idna", email="JDoe@xn--mller-kva.de", email_verified=True)
    assert idp.sign_in(client, ws.slug, "sub-idna").status_code == 303


def test_users_are_created_on_first_sign_in_when_the_workspace_allows_it(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    add_provider(db, ws, provider.url)
    set_rules(db, ws, create=True)
    provider.user("sub-9", email="newcomer@example.com", email_verified=True)
    answer = idp.sign_in(client, ws.slug, "sub-9")
    assert answer.status_code == 303
    with db.read() as s:
        user = users.find_by_email(s, ws.id, "newcomer@example.com")
        assert user is not None and user.role == "Participant" and user.active
        created = s.scalars(
            select(AuditEvent).where(AuditEvent.target_id == user.id, AuditEvent.action == "user.created")
        ).one()
    assert created.channel == "sso"


def test_issuers_must_be_https_except_loopback(client: httpx.Client, db: Database, ws: WS) -> None:
    for issuer in (
        "http://idp.example",
        "ftp://idp.example",
        "https://user:pw@idp.example",
        "https://idp.example/?a=b",
    ):
        with pytest.raises(Invalid), db.write(ws.id) as s:
            inp = sso.ProviderInput(name="X", issuer=issuer, client_id="c", client_secret="s")
            sso.add_provider(s, Actor(ws.id, None, "cli", "cli"), "k", inp)
    for issuer in ("https://idp.example", "http://localhost:9400", "http://127.0.0.1:9400/realm"):
        add_provider(db, ws, issuer)


def test_require_sso_refuses_the_password_of_a_user_not_on_the_break_glass_list(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    add_provider(db, ws, provider.url)
    make_user(db, ws.id, "boss@example.com", "FullAdmin")
    glass = make_user(db, ws.id, "glass@example.com", "FullAdmin")
    set_rules(db, ws, require=True, glass=(glass,))
    answer = http_login(client, "boss@example.com")
    assert answer.status_code == 403 and "signs in through its identity provider" in answer.text
    assert "Sign in with Acme IdP" in answer.text and "payroster_session" not in answer.headers.get("set-cookie", "")
    page = client.get("/login", params={"workspace": ws.slug})
    assert 'name="password"' not in page.text and "Sign in with Acme IdP" in page.text


def test_require_sso_lets_the_break_glass_admin_in_with_a_password(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    add_provider(db, ws, provider.url)
    glass = make_user(db, ws.id, "glass@example.com", "FullAdmin")
    set_rules(db, ws, require=True, glass=(glass,))
    answer = http_login(client, "glass@example.com")
    assert answer.status_code == 303 and answer.headers["location"] == "/users"
    assert client.get("/settings/sso").status_code == 200


def test_require_sso_stops_invitation_links_of_other_users(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    add_provider(db, ws, provider.url)
    glass = make_user(db, ws.id, "glass@example.com", "FullAdmin")
    invited = make_user(db, ws.id, SOMEONE, "Participant", password=None)
    with db.write(ws.id) as s:
        token, _ = accounts.create_link(s, Actor(ws.id, None, "cli", "cli"), uuid.UUID(invited), dt.timedelta(days=1))
    assert client.get(f"/invitations/{token}").status_code == 200
    set_rules(db, ws, require=True, glass=(glass,))
    refused = client.get(f"/invitations/{token}")
    assert refused.status_code == 403 and "identity provider" in refused.text


def test_removing_the_last_break_glass_admin_is_refused(
    client: httpx.Client, db: Database, ws: WS, provider: idp.Provider
) -> None:
    add_provider(db, ws, provider.url)
    glass = make_user(db, ws.id, "glass@example.com", "FullAdmin")
    set_rules(db, ws, require=True, glass=(glass,))
    assert http_login(client, "glass@example.com").status_code == 303
    page = client.get("/settings/sso")
    answer = client.post("/settings/sso/rules", data={"csrf_token": csrf_of(page.text), "requireSso": "on"})
    assert answer.status_code == 303
    shown = client.get(answer.headers["location"])
    assert "keep at least one break-glass administrator" in shown.text
    with db.read() as s:
        kept = sso.rules(s, ws.id)
    assert kept.require_sso and kept.break_glass == {uuid.UUID(glass)}
    with pytest.raises(Conflict):
        set_rules(db, ws, require=True)


def test_the_client_secret_never_leaves_the_server(
    client: httpx.Client, db: Database, ws: WS, ws_b: WS, provider: idp.Provider, caplog: pytest.LogCaptureFixture
) -> None:
    """Added through the page, used in sign-ins that succeed and fail: no response, log line, audit event or
    OData row holds the secret, and the database holds it only sealed."""
    caplog.set_level(logging.DEBUG)
    make_user(db, ws.id, "glass@example.com", "FullAdmin")
    make_user(db, ws.id, SOMEONE, "Participant", password=None)
    answers = [http_login(client, "glass@example.com")]
    page = client.get("/settings/sso")
    form = {"name": "Acme IdP", "issuer": provider.url, "clientId": "payroster-app", "clientSecret": SECRET}
    answers += [page, client.post("/settings/sso/providers", data={"csrf_token": csrf_of(page.text), **form})]
    answers.append(client.get("/settings/sso"))
    provider.user("sub-1", email=SOMEONE, email_verified=True)
    provider.user("sub-2", email="nobody@example.com", email_verified=True)
    for sub in ("sub-1", "sub-2"):
        with httpx.Client(base_url=str(client.base_url)) as person:
            answers.append(idp.sign_in(person, ws.slug, sub))
    assert [a.status_code for a in answers[-2:]] == [303, 403]
    answers += [client.get("/settings/activity"), client.get("/settings/activity", params={"action": "sso"})]
    for entity_set in ("Users", "Teams", "TeamMembers", "CustomVariables"):
        answers.append(client.get(f"/odata/{ws.slug}/{entity_set}", headers=ws.headers))
    assert [a.status_code for a in answers[-4:]] == [200] * 4
    assert "sso.providerAdded" in answers[-5].text and "sso.signInRefused" in answers[-5].text
    for answer in answers:
        assert SECRET not in answer.text and SECRET not in str(answer.headers)
    for record in caplog.records:
        assert SECRET not in record.getMessage() and SECRET not in (record.exc_text or "")
    with db.read() as s:
        events = list(s.scalars(select(AuditEvent.changes)))
        sealed = s.scalars(select(SsoProvider.client_secret_sealed)).one()
    assert len(events) > 5 and not any(SECRET in e for e in events)
    assert SECRET not in sealed and sso.unseal(TEST_SETTINGS["secret_key"], sealed) == SECRET
