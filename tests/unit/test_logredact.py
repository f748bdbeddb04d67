"""The access log's redaction, table-driven: every form a token reaches the request line in, and what stays."""

from __future__ import annotations

import logging

import pytest

from payroster.logredact import RedactTokens, redact

CASES = [
    ("/invitations/AbC-12_xyz", "/invitations/[redacted]"),
    ("/invitations/AbC-12_xyz/", "/invitations/[redacted]/"),
    ("/Invitations/AbC-12_xyz", "/Invitations/[redacted]"),  # a 404, but the token is the user's all the same
    ("/login?next=%2Finvitations%2FAbC-12_xyz", "/login?next=%2Finvitations%2F[redacted]"),
    ("/odata/acme/Users?%24skiptoken=eyJr.abc&%24top=5", "/odata/acme/Users?%24skiptoken=[redacted]&%24top=5"),
    ("/odata/acme/Users?$top=5&$skiptoken=eyJr.abc", "/odata/acme/Users?$top=5&$skiptoken=[redacted]"),
    ("/api/v1/me?api_key=pr_x_y&x=1", "/api/v1/me?api_key=[redacted]&x=1"),
    ("/api/v1/me?ApiKey=pr_x_y", "/api/v1/me?ApiKey=[redacted]"),
    ("/scim/v2/acme/Users?access_token=abc", "/scim/v2/acme/Users?access_token=[redacted]"),
    # What is no secret stays readable.
    ("/api/v1/users?emailAddress=a%40b.example", "/api/v1/users?emailAddress=a%40b.example"),
    ("/api/v1/users/0190/tags?value=AE", "/api/v1/users/0190/tags?value=AE"),
    ("/odata/acme/Users?$filter=tokens%20eq%201", "/odata/acme/Users?$filter=tokens%20eq%201"),
    ("/users/0190/invitation", "/users/0190/invitation"),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_filter_rewrites_the_access_records_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/invitations/AbC-12_xyz", "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /invitations/[redacted] HTTP/1.1" 200'
