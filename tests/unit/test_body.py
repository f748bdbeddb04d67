"""Body decoding (README.md, "JSON API": content types, encodings), without a server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payroster.api.body import decode_json
from payroster.domain.errors import BadRequest, Invalid, UnsupportedMediaType


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


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"v": -Infinity}'])
def test_nan_and_infinity_are_not_json(raw: bytes) -> None:
    """Python's parser accepts NaN and Infinity; JSON has neither."""
    with pytest.raises(BadRequest, match="not a JSON value"):
        decode_json(raw, "application/json")


def test_integers_past_64_bits_are_exact_decimals() -> None:
    """Integers that fit 64 bits stay ints; longer ones are Decimals with every digit (orjson and the databases'
    integer columns stop at 64 bits)."""
    assert decode_json(b"[9223372036854775807, 18446744073709551616]", None) == [
        9223372036854775807,
        Decimal("18446744073709551616"),
    ]
    assert type(decode_json(b"[123456789012345678]", None)[0]) is int


def test_problems_are_named_by_json_pointer_at_any_depth() -> None:
    """Duplicate keys (any case), NUL and unpaired surrogates (in values and keys) and overlong numbers are
    reported together, each at its pointer; ``~`` and ``/`` in keys are escaped as JSON pointers escape them, and
    a character that cannot be written out is shown as U+FFFD."""
    raw = rb'{"a": [{"x": 1, "X": 2}], "top": "\u0000", "d": {"\udfff": 1, "n": 1e1000, "b/c~": "\ud800"}}'
    with pytest.raises(Invalid) as refused:
        decode_json(raw, None)
    found = {(d.code, d.target) for d in refused.value.details}
    assert found == {
        ("duplicateField", "/a/0/X"),
        ("invalidCharacters", "top"),  # a field of a single object is named as the API names it
        ("invalidCharacters", "/d/\ufffd"),
        ("invalidCharacters", "/d/b~1c~0"),
        ("numberTooLong", "/d/n"),
    }


def test_a_document_nested_to_the_parsers_limit_is_walked_without_recursion() -> None:
    """The walk that finds problems keeps its own stack: as deep as the parser accepts, it answers."""
    depth = 900
    raw = ("[" * depth + '"\\u0000"' + "]" * depth).encode()
    with pytest.raises(Invalid) as refused:
        decode_json(raw, None)
    assert refused.value.details[0].target == "/" + "/".join(["0"] * depth)


def test_text_a_charset_decodes_to_nul_or_a_surrogate_is_a_400() -> None:
    """A declared charset cannot smuggle in what an escape could not: text that decodes to an unpaired surrogate
    is not valid in that charset (400); a raw NUL is a control character the JSON parser refuses (400)."""
    with pytest.raises(BadRequest, match="not valid raw_unicode_escape"):
        decode_json(b'{"a": "\\ud800"}', "application/json; charset=raw_unicode_escape")
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_json('{"a": "\x00"}'.encode("utf-16"), "application/json; charset=utf-16")


def test_escaped_backslashes_and_surrogate_pairs_are_ordinary_text() -> None:
    """``\\\\u0000`` is a backslash and five characters; an escaped pair is one character."""
    assert decode_json(rb'{"a": "\\u0000", "b": "\ud83d\ude00"}', None) == {"a": "\\u0000", "b": "\U0001f600"}
