"""OData primitive literals (OData ABNF, "Literal Data Values"), as regular expressions.

Value rules (``dateTimeOffsetValue``...) are the payload forms and are matched as given; Literal rules
(``dateTimeOffsetLiteral``...) are URL forms and are matched after percent-decoding. The expression
parser uses the same patterns, so a literal means the same thing everywhere.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

from payroster.odata.errors import ODataSyntaxError, ODataUnsupported

IDENT = r"[^\W\d]\w{0,127}"
QUALIFIED = rf"{IDENT}(?:\.{IDENT})+"
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_YEAR = r"-?(?:0\d{3}|[1-9]\d{3,})"
DATE = rf"{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_HOUR = r"(?:[01]\d|2[0-3])"
_CLOCK = rf"{_HOUR}:[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d{{1,12}})?)?"
TIME = rf"{_HOUR}:[0-5]\d(?::[0-5]\d(?:\.\d{{1,12}})?)?"
DATETIME = rf"{DATE}T{_CLOCK}(?:Z|[+-]{_HOUR}:[0-5]\d)"
_NAN_INF = r"NaN|-?INF"
INTEGER = r"[+-]?\d+"
DECIMAL = rf"(?:[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|{_NAN_INF})"
DURATION = r"-?P(?=\d|T\d)(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?"
_B64 = r"[A-Za-z0-9_-]"
BINARY = rf"(?:{_B64}{{4}})*(?:{_B64}{{2}}(?:==)?|{_B64}{{3}}=?)?"
STRING = r"'(?:[^']|'')*'"
_ENUM_MEMBER = rf"(?:{IDENT}|[+-]?\d+)"
ENUM_VALUE = rf"{_ENUM_MEMBER}(?:,{_ENUM_MEMBER})*"
ENUM = rf"(?:{QUALIFIED})?'{ENUM_VALUE}'"


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern})\Z")


def _int_range(low: int, high: int) -> Callable[[str], bool]:
    pattern = _full(INTEGER)
    return lambda text: bool(pattern.match(text)) and low <= int(text) <= high


def _matcher(pattern: str) -> Callable[[str], bool]:
    compiled = _full(pattern)
    return lambda text: compiled.match(text) is not None


def _primitive_value(text: str) -> bool:
    if text.startswith("SRID="):
        raise ODataUnsupported("geographic and geometric values are not supported")
    return any(check(rule, text) for rule in _VALUE_RULES)


_LITERAL_PATTERN = "|".join(
    (
        "null",
        "true|false",
        GUID,
        DATETIME,
        DATE,
        TIME,
        DECIMAL,
        STRING,
        rf"(?:duration)?'{DURATION}'",
        rf"binary'{BINARY}'",
        ENUM,
    )
)

# rule -> (percent-decode first?, matcher)
_RULES: dict[str, tuple[bool, Callable[[str], bool]]] = {
    "null": (True, _matcher("null")),
    "boolean": (True, _matcher("(?i:true|false)")),
    "booleanValue": (False, _matcher("true|false")),
    "guid": (False, _matcher(GUID)),
    "guidValue": (False, _matcher(GUID)),
    "dateValue": (False, _matcher(DATE)),
    "dateLiteral": (True, _matcher(DATE)),
    "dateTimeOffsetValue": (False, _matcher(DATETIME)),
    "dateTimeOffsetValueInUrl": (True, _matcher(DATETIME)),
    "dateTimeOffsetLiteral": (True, _matcher(DATETIME)),
    "timeOfDayValue": (False, _matcher(TIME)),
    "timeOfDayLiteral": (True, _matcher(TIME)),
    "decimalValue": (False, _matcher(DECIMAL)),
    "decimalLiteral": (True, _matcher(DECIMAL)),
    "doubleValue": (False, _matcher(DECIMAL)),
    "doubleLiteral": (True, _matcher(DECIMAL)),
    "singleValue": (False, _matcher(DECIMAL)),
    "singleLiteral": (True, _matcher(DECIMAL)),
    "byteValue": (False, _int_range(0, 255)),
    "byteLiteral": (True, _int_range(0, 255)),
    "sbyteValue": (False, _int_range(-128, 127)),
    "sbyteLiteral": (True, _int_range(-128, 128)),
    "int16Value": (False, _int_range(-(2**15), 2**15 - 1)),
    "int16Literal": (True, _int_range(-(2**15), 2**15 - 1)),
    "int32Value": (False, _int_range(-(2**31), 2**31 - 1)),
    "int32Literal": (True, _int_range(-(2**31), 2**31 - 1)),
    "int64Value": (False, _int_range(-(2**63), 2**63 - 1)),
    "int64Literal": (True, _int_range(-(2**63), 2**63 - 1)),
    "durationValue": (False, _matcher(DURATION)),
    "durationLiteral": (True, _matcher(rf"(?:duration)?'{DURATION}'")),
    "binaryValue": (False, _matcher(BINARY)),
    "binaryLiteral": (True, _matcher(rf"binary'{BINARY}'")),
    "stringLiteral": (True, _matcher(STRING)),
    "enumValue": (False, _matcher(ENUM_VALUE)),
    "enumLiteral": (True, _matcher(ENUM)),
    "primitiveLiteral": (True, _matcher(_LITERAL_PATTERN)),
    "primitiveValue": (False, _primitive_value),
}
_VALUE_RULES = (
    "booleanValue",
    "guidValue",
    "dateTimeOffsetValue",
    "dateValue",
    "timeOfDayValue",
    "decimalValue",
    "durationValue",
    "enumValue",
    "binaryValue",
)


def known(rule: str) -> bool:
    """Whether ``rule`` is a literal rule this module checks."""
    return rule in _RULES


def check(rule: str, text: str) -> bool:
    """Whether ``text`` matches the literal ``rule``; unknown rules are unsupported."""
    if rule not in _RULES:
        raise ODataUnsupported(f"literal rule {rule} is not supported")
    decode, matcher = _RULES[rule]
    return matcher(urllib.parse.unquote(text) if decode else text)


def require(rule: str, text: str) -> None:
    """Raise a syntax error unless ``text`` matches ``rule``."""
    if not check(rule, text):
        raise ODataSyntaxError(f"not a valid {rule}: {text!r}", 0)
