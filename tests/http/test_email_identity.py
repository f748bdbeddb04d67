"""An e-mail address's identity (README.md, "E-mail addresses"), through every door that takes one: the local part
compared in Unicode lower case (``straße@`` is not ``strasse@``, ``ﬁnance@`` with its ligature is not
``finance@``), the domain in its IDNA form (``müller.de`` is ``xn--mller-kva.de``); and any syntactically valid
address accepted, at any domain, while what is not an address (or has a local part over 64 characters) is
refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from payroster.db.engine import Database
from payroster.db.models import User
from payroster.services import users
from tests.conftest import WS, create_workspace
from tests.procs import run_cli
from tests.scim.conftest import USER, is_error, scim_for
from tests.web.conftest import csrf_of, http_login, make_user

# Different mailboxes that NFC(casefold()) merged, and one mailbox it kept apart.
APART = [("strasse@example.com", "Straße@example.com"), ("finance@example.com", "\ufb01nance@example.com")]
UNICODE_DOMAIN, A_LABEL_DOMAIN = "jdoe@müller.de", "JDoe@XN--MLLER-KVA.DE"
# Addresses companies use that a mailer's rules refused: Active Directory's usual domain, special-use names, and a
# single label.
ACCEPTED = ["jdoe@contoso.local", "jdoe@lab.test", "jdoe@printer.home.arpa", "jdoe@intranet"]
REFUSED = ["x" * 65 + "@example.com", "not an address", "jdoe@", "jdoe@exa mple.com"]


def _upsert(client: httpx.Client, ws: WS, email: str, **extra: Any) -> httpx.Response:
    body = {"emailAddress": email, "role": "Participant", **extra}
    return client.post("/api/v1/users", json=body, headers=ws.headers)


def _emails(db: Database, ws: WS) -> dict[str, str]:
    with db.read() as s:
        return dict(s.execute(select(User.email, User.email_key).where(User.workspace_id == ws.id)).all())


def test_the_api_upsert_keeps_mailboxes_apart_and_one_domain_together(
    client: httpx.Client, ws: WS, db: Database
) -> None:
    for one, other in APART:
        first, second = _upsert(client, ws, one), _upsert(client, ws, other)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        assert first.json()["id"] != second.json()["id"]
        found = client.get(
            "/api/v1/users", params={"emailAddress": other.replace("example.com", "Example.COM")}, headers=ws.headers
        )
        assert found.json()["id"] == second.json()["id"]
    made = _upsert(client, ws, UNICODE_DOMAIN, tags="A")
    again = _upsert(client, ws, A_LABEL_DOMAIN, tags="B")
    assert (made.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == made.json()["id"] and again.json()["tags"] == ["A", "B"]
    found = client.get("/api/v1/users", params={"emailAddress": "jdoe@MÜLLER.de"}, headers=ws.headers)
    assert found.json()["id"] == made.json()["id"]
    keys = _emails(db, ws)
    assert keys["Straße@example.com"] == "straße@example.com" and keys[UNICODE_DOMAIN] == "jdoe@xn--mller-kva.de"


def test_a_patch_to_another_form_of_a_taken_address_conflicts(client: httpx.Client, ws: WS) -> None:
    holder = _upsert(client, ws, UNICODE_DOMAIN).json()["id"]
    other = _upsert(client, ws, "strasse@example.com").json()["id"]
    taken = client.patch(f"/api/v1/users/{other}", json={"emailAddress": A_LABEL_DOMAIN}, headers=ws.headers)
    assert taken.status_code == 409 and taken.json()["error"]["target"] == "emailAddress"
    moved = client.patch(f"/api/v1/users/{other}", json={"emailAddress": "straße@example.com"}, headers=ws.headers)
    assert moved.status_code == 200 and moved.json()["emailAddress"] == "straße@example.com"
    assert holder != other


def test_bulk_rows_are_one_user_per_mailbox(client: httpx.Client, ws: WS, db: Database) -> None:
    rows = [{"emailAddress": e, "role": "Participant"} for pair in APART for e in pair]
    rows += [{"emailAddress": UNICODE_DOMAIN, "role": "Participant"}, {"emailAddress": A_LABEL_DOMAIN, "tags": "X"}]
    done = client.post("/api/v1/users:bulk", json=rows, headers=ws.headers)
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["updated"]) == (5, 1)
    ids = [u["id"] for u in done.json()["users"]]
    assert len(set(ids[:4])) == 4 and ids[4] == ids[5]
    assert len(_emails(db, ws)) == 6  # the admin and five


def test_scim_user_names_and_emails_use_the_same_identity(client: httpx.Client, ws: WS, db: Database) -> None:
    scim = scim_for(client, db, ws)
    made = scim.create_user(UNICODE_DOMAIN)
    clash = scim.post("Users", {"schemas": [USER], "userName": A_LABEL_DOMAIN})
    assert is_error(clash, 409, "uniqueness"), clash.text
    for attr in ("userName", "emails"):
        found = scim.get("Users", filter=f'{attr} eq "{A_LABEL_DOMAIN}"').json()
        assert [u["id"] for u in found["Resources"]] == [made["id"]], (attr, found)
    for one, other in APART:
        a, b = scim.create_user(one), scim.create_user(other)
        assert a["id"] != b["id"]
        found = scim.get("Users", filter=f'userName eq "{other}"').json()
        assert [u["id"] for u in found["Resources"]] == [b["id"]]


def test_the_feed_finds_an_address_by_either_form_of_its_domain(client: httpx.Client, ws: WS) -> None:
    made = _upsert(client, ws, "Straße@müller.de").json()["id"]
    feed = client.get(
        f"/odata/{ws.slug}/Users", params={"$filter": "emailAddress eq 'Straße@müller.de'"}, headers=ws.headers
    )
    assert [u["id"] for u in feed.json()["value"]] == [made], feed.text


@pytest.fixture
def admin(base_url: str, ws: WS, db: Database) -> Iterator[httpx.Client]:
    """A signed-in FullAdmin's browser-like client."""
    make_user(db, ws.id, "chief@example.com", "FullAdmin")
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert http_login(c, "chief@example.com").status_code == 303
        yield c


def _add(admin: httpx.Client, email: str) -> str:
    """The add-user form of the directory, answered with the page it redirects to."""
    token = csrf_of(admin.get("/users").text)
    answer = admin.post("/users", data={"csrf_token": token, "emailAddress": email, "role": "Participant"})
    assert answer.status_code == 303
    return admin.get(answer.headers["location"]).text


def test_the_web_form_and_search_use_the_same_identity(admin: httpx.Client, ws: WS, db: Database) -> None:
    assert "was added" in _add(admin, UNICODE_DOMAIN)
    # The A-label form names the same person: the form is refused, linking to the one who has it.
    taken = _add(admin, A_LABEL_DOMAIN)
    assert "belongs to a person of this workspace already" in taken
    with db.read() as s:
        existing = users.find_by_email(s, ws.id, UNICODE_DOMAIN)
    assert existing is not None and f'href="/users/{existing.id}"' in taken
    assert "was added" in _add(admin, "straße@example.com")
    assert "was added" in _add(admin, "strasse@example.com")
    for q in ("müller", "Straße", "xn--mller"):
        page = admin.get("/users", params={"q": q}).text
        assert ("jdoe@müller.de" in page) == (q != "Straße") and ("straße@example.com" in page) == (q == "Straße")
        assert "strasse@example.com" not in page, q


@pytest.mark.parametrize("email", ACCEPTED)
def test_any_syntactically_valid_domain_is_accepted_by_the_api(client: httpx.Client, ws: WS, email: str) -> None:
    made = _upsert(client, ws, email)
    assert made.status_code == 201, made.text
    other = _upsert(client, ws, "someone@example.com").json()["id"]
    patched = client.patch(f"/api/v1/users/{other}", json={"emailAddress": "x." + email}, headers=ws.headers)
    assert patched.status_code == 200, patched.text
    bulk = client.post("/api/v1/users:bulk", json=[{"emailAddress": "y." + email, "role": "Participant"}],
                       headers=ws.headers)  # fmt: skip
    assert bulk.status_code == 200 and bulk.json()["created"] == 1, bulk.text


@pytest.mark.parametrize("email", REFUSED)
def test_what_is_not_an_address_is_refused_by_the_api(client: httpx.Client, ws: WS, email: str) -> None:
    assert _upsert(client, ws, email).status_code == 422
    other = _upsert(client, ws, "someone@example.com").json()["id"]
    patched = client.patch(f"/api/v1/users/{other}", json={"emailAddress": email}, headers=ws.headers)
    assert patched.status_code == 422, patched.text
    bulk = client.post("/api/v1/users:bulk", json=[{"emailAddress": email, "role": "Participant"}], headers=ws.headers)
    assert bulk.status_code == 422 and bulk.json()["error"]["details"][0]["target"] == "/0/emailAddress", bulk.text


def test_scim_accepts_any_domain_and_refuses_a_long_local_part(client: httpx.Client, ws: WS, db: Database) -> None:
    scim = scim_for(client, db, ws)
    for n, email in enumerate(ACCEPTED):
        assert scim.create_user(email)["emails"][0]["value"] == email
        # A userName that is not an address: the primary of ``emails`` is the user's e-mail.
        made = scim.create_user(f"person {n}", emails=[{"value": "w." + email, "primary": True}])
        assert [e["value"] for e in made["emails"]] == ["w." + email]
    refused = scim.post("Users", {"schemas": [USER], "userName": REFUSED[0]})
    assert is_error(refused, 400), refused.text
    refused = scim.post(
        "Users", {"schemas": [USER], "userName": "someone", "emails": [{"value": REFUSED[0], "primary": True}]}
    )
    assert is_error(refused, 400), refused.text


def test_the_web_add_user_form_accepts_any_domain(admin: httpx.Client) -> None:
    if True:
        for email in ACCEPTED:
            assert "was added" in _add(admin, email)
        page = _add(admin, REFUSED[0])
        assert "was added" not in page and "too long" in page


def test_the_csv_import_accepts_any_domain_and_refuses_a_long_local_part(env: dict[str, str], tmp_path: Path) -> None:
    create_workspace(env)
    people = tmp_path / "people.csv"
    people.write_text("Email Address,Role\n" + "".join(f"{e},Participant\n" for e in ACCEPTED), encoding="utf-8")
    done = run_cli(env, "import", "users", "--workspace", "acme-corp", str(people), "--json")
    assert done.code == 0, done.err
    assert done.json()["created"] == len(ACCEPTED)
    long = tmp_path / "long.csv"
    long.write_text(f"Email Address,Role\nok@example.com,Participant\n{REFUSED[0]},Participant\n", encoding="utf-8")
    refused = run_cli(env, "import", "users", "--workspace", "acme-corp", str(long))
    assert refused.code == 1 and "line 3" in refused.err, refused.err
    engine = create_engine(env["PAYROSTER_DATABASE_URL"])
    with engine.connect() as conn:
        stored = {row[0] for row in conn.execute(text("SELECT email FROM users"))}
    engine.dispose()
    assert stored == {"owner@acme.example", *ACCEPTED}
