"""The error pipeline every door shares (payroster.http): what any exception becomes, the headers that travel with
it, and the body reader's refusals, without a server (docs/architecture.md, "Errors")."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from payroster.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    Invalid,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from payroster.http import body
from payroster.http.errors import as_domain_error, headers

log = logging.getLogger("payroster.test")


def test_a_domain_error_is_itself() -> None:
    exc = NotFound("no such user")
    assert as_domain_error(exc, log) is exc


def test_a_unique_index_race_is_a_409_of_scim_type_uniqueness() -> None:
    found = as_domain_error(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), log)
    assert isinstance(found, Conflict) and found.status == 409 and found.scim_type == "uniqueness"


def test_an_outage_is_a_503_with_retry_after() -> None:
    found = as_domain_error(OperationalError("SELECT 1", {}, Exception("connection refused")), log)
    assert isinstance(found, Unavailable) and found.status == 503
    assert headers(found) == {"Retry-After": "5"}


def test_anything_else_is_a_500_naming_the_request_id_and_nothing_of_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="payroster.test"):
        found = as_domain_error(RuntimeError("secret detail"), log)
    assert isinstance(found, InternalError) and found.status == 500
    assert found.message.startswith("internal error; request id ") and "secret" not in found.message
    assert caplog.records[0].exc_info is not None  # the traceback goes to the log only


def test_headers_carry_the_wait_and_the_challenge_of_a_401_only() -> None:
    assert headers(RateLimited("slow down", retry_after=7)) == {"Retry-After": "7"}
    assert headers(Unauthorized("no key", challenge='Basic realm="PayRoster"')) == {
        "WWW-Authenticate": 'Basic realm="PayRoster"'
    }
    assert headers(Forbidden("not an admin", challenge="Bearer")) == {}
    assert headers(Conflict("taken")) == {}


def test_scim_types_are_set_where_errors_are_raised() -> None:
    """A refused value is invalidValue; a conflict has no type unless its raiser names one (a cycle, the last
    admin); a taken name is raised as uniqueness."""
    assert BadRequest("x").scim_type == Invalid("x").scim_type == "invalidValue"
    assert Conflict("cycle").scim_type is None
    assert Conflict("taken", scim_type="uniqueness").scim_type == "uniqueness"


def test_content_type_and_media_per_door() -> None:
    assert body.content_type('Application/JSON; Charset="UTF-8"') == ("application/json", "utf-8")
    assert body.content_type(None) == ("", "")
    api = body.Accepts(("application/json",), suffix=True, send="application/json")
    scim = body.Accepts(("application/scim+json", "application/json"), suffix=False, send="application/scim+json")
    for media in ("", "text/plain", "application/json", "application/merge-patch+json"):
        body.check_media(media, api)
    body.check_media("application/scim+json", scim)
    with pytest.raises(UnsupportedMediaType, match="send application/scim\\+json"):
        body.check_media("application/merge-patch+json", scim)
    with pytest.raises(UnsupportedMediaType, match="send application/json"):
        body.check_media("application/xml", api)


def test_text_in_its_charset() -> None:
    assert body.text("Zoë".encode("latin-1"), "iso-8859-1", lenient=False) == "Zoë"
    assert body.text(b"\xef\xbb\xbf{}", "", lenient=False) == "{}"
    assert body.text("José".encode("cp1252"), "", lenient=True) == "José"
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        body.text("José".encode("cp1252"), "", lenient=False)
