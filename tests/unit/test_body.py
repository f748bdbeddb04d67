"""Body decoding of contract §3 (content types, encodings), without a server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payroster.api.body import decode_json
from payroster.domain.errors import BadRequest, UnsupportedMediaType


def test_no_content_type_reads_json() -> None:
    """A body without Content-Type (WebClient.UploadString) is read as JSON."""
    assert decode_json(b'{"a": 1}', None) == {"a": 1}


def test_windows_1252_fallback_only_when_lenient() -> None:
    """Invalid UTF-8 without a declared JSON type is Windows-1252; with application/json it is a 400."""
    raw = '{"firstName": "José"}'.encode("cp1252")
    assert decode_json(raw, None) == {"firstName": "José"}
    assert decode_json(raw, "text/plain") == {"firstName": "José"}
    with pytest.raises(BadRequest):
        decode_json(raw, "application/json")


def test_declared_charset_is_honoured() -> None:
    """An explicit charset parameter decodes the body."""
    assert decode_json('{"n": "Zoë"}'.encode("latin-1"), "application/json; charset=ISO-8859-1") == {"n": "Zoë"}


def test_decimals_are_exact() -> None:
    """Fractional numbers keep their exact digits."""
    assert decode_json(b'{"v": 1.10}', "application/json") == {"v": Decimal("1.10")}


@pytest.mark.parametrize("ctype", ["application/xml", "multipart/form-data; boundary=x", "text/csv"])
def test_other_types_are_415(ctype: str) -> None:
    """Anything but JSON, text/plain or no type is refused."""
    with pytest.raises(UnsupportedMediaType):
        decode_json(b"{}", ctype)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,]", b"\xef\xbb\xbf"])
def test_malformed_is_400(raw: bytes) -> None:
    """Empty and malformed bodies are a 400."""
    with pytest.raises(BadRequest):
        decode_json(raw, "application/json")
