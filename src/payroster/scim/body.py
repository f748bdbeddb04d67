"""A SCIM request body: JSON a database can store, in shapes of bounded size, refused as SCIM Errors.

Python's ``json`` accepts what no column can hold: a lone surrogate (``"\\ud800"``, not a character: neither
driver can encode it) and U+0000 (PostgreSQL's text refuses it), and an integer of any length (more than 4,300
digits cannot even be printed back into an error message). Both failed deep in a write as 500s; they are refused
here as ``invalidValue`` before the body is validated. ``NaN`` and ``Infinity`` are not JSON and are
``invalidSyntax``. The sizes of what a body asks for (README.md, SCIM provisioning) are checked on the raw JSON,
before scim2-models parses its filter or paths.
"""

from __future__ import annotations

import json
from typing import Any

from scim2_models import InvalidFilterException, InvalidPathException, InvalidSyntaxException, InvalidValueException

from payroster.scim.filters import MAX_FILTER_LENGTH, MAX_PATH_LENGTH, text_problem

# A JSON integer SCIM carries is a startIndex or a count; 20 digits hold any 64-bit value.
MAX_INTEGER_DIGITS = 20
# Entra sends its member changes in operations of up to a few hundred values, Okta one operation per request;
# each operation is applied to the resource in turn, so their number is what a PATCH costs.
MAX_PATCH_OPERATIONS = 1_000
# attributes or excludedAttributes: PayRoster publishes a few dozen attribute paths.
MAX_ATTRIBUTES = 100


def decode(raw: bytes) -> Any:
    """The JSON value of a SCIM body (``null`` when empty), or the SCIM Error of what it holds."""
    try:
        value = json.loads(raw or b"null", parse_int=_integer, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError):
        raise InvalidSyntaxException(detail="the body is not valid JSON") from None
    except RecursionError:
        raise InvalidSyntaxException(detail="the body is nested too deeply") from None
    _check_strings(value)
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise InvalidValueException(detail=f"a number of the body has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _not_json(text: str) -> Any:
    raise InvalidSyntaxException(detail=f"the body is not valid JSON: {text} is not a JSON number")


def _check_strings(value: Any) -> None:
    """Refuse a body whose strings (keys included) hold what :func:`filters.text_problem` names."""
    stack = [value]
    while stack:  # a loop, not recursion: json.loads nests deeper than a recursive walk could
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and (problem := text_problem(item)) is not None:
            raise InvalidValueException(detail=f"a string of the body {problem}")


def _field(payload: Any, name: str) -> Any:
    """A member of a JSON object, its name compared case-insensitively as SCIM's are; None if absent."""
    if not isinstance(payload, dict):
        return None
    return next((v for k, v in payload.items() if isinstance(k, str) and k.lower() == name), None)


def check_search(payload: Any) -> None:
    """A SearchRequest's filter, sortBy and attribute lists within their limits, before they are parsed."""
    flt = _field(payload, "filter")
    if isinstance(flt, str) and len(flt) > MAX_FILTER_LENGTH:
        raise InvalidFilterException(detail=f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    sort_by = _field(payload, "sortby")
    if isinstance(sort_by, str) and len(sort_by) > MAX_PATH_LENGTH:
        raise InvalidFilterException(detail=f"sortBy is longer than {MAX_PATH_LENGTH} characters")
    for name in ("attributes", "excludedattributes"):
        check_attribute_names(_field(payload, name), name)


def check_attribute_names(names: Any, what: str) -> None:
    """At most :data:`MAX_ATTRIBUTES` names of at most :data:`MAX_PATH_LENGTH` characters (``invalidValue``)."""
    if not isinstance(names, list):
        return
    if len(names) > MAX_ATTRIBUTES:
        raise InvalidValueException(detail=f"{what} lists more than {MAX_ATTRIBUTES} attributes")
    if any(isinstance(n, str) and len(n) > MAX_PATH_LENGTH for n in names):
        raise InvalidValueException(detail=f"an attribute of {what} is longer than {MAX_PATH_LENGTH} characters")


def check_patch(payload: Any) -> None:
    """At most :data:`MAX_PATCH_OPERATIONS` operations whose paths are at most :data:`MAX_FILTER_LENGTH` long."""
    operations = _field(payload, "operations")
    if not isinstance(operations, list):
        return
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise InvalidValueException(detail=f"a PATCH holds at most {MAX_PATCH_OPERATIONS} operations")
    for operation in operations:
        path = _field(operation, "path")
        if isinstance(path, str) and len(path) > MAX_FILTER_LENGTH:
            raise InvalidPathException(detail=f"a path is longer than {MAX_FILTER_LENGTH} characters")
