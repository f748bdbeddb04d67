"""Reading request bodies the way integrations send them (README.md, JSON API), and the text input every JSON
API request carries: its body and its query string."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from payroster.domain import numbers
from payroster.domain.errors import BadRequest, Detail, Invalid
from payroster.domain.text import MESSAGE, shown, unusable
from payroster.http import body
from payroster.http.body import query_text as query_text

# Every JSON type: a body sent as application/merge-patch+json or application/scim+json is read too.
ACCEPTS = body.Accepts(("application/json",), suffix=True, send="application/json")


def decode_json(raw: bytes, content_type: str | None) -> Any:
    """Parse a JSON body; numbers with a fraction become exact Decimals."""
    media, charset = body.content_type(content_type)
    body.check_media(media, ACCEPTS)
    text = body.text(raw, charset, lenient=media in body.LENIENT_TYPES)
    if not text.strip():
        raise BadRequest("the request body is empty: send a JSON document")
    return loads(text)


# The escapes that write text no door accepts (domain/text.py). Raw, a NUL is refused by the parser itself, and a
# surrogate by decoding (``http.body.text``).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def loads(text: str) -> Any:
    """Parse a JSON document as every JSON API door reads one: fractions as exact Decimals, integers past
    64 bits too; a duplicate key (in any letter case, in any object), a NUL or an unpaired surrogate in any string,
    or a number of more than ``numbers.MAX_DIGITS`` digits is a 422 naming each place by its JSON pointer."""
    reading = _Reading()
    try:
        document = json.loads(
            text,
            parse_float=reading.decimal,
            parse_int=reading.integer,
            parse_constant=_not_json,
            object_pairs_hook=reading.object,
        )
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    # The walk over every value runs only when the parse saw a reason for it, so that a 100,000-row bulk body
    # pays for one regular-expression scan and not for a second pass in Python.
    if reading.suspect or _SUSPECT_ESCAPE.search(text):
        problems = _problems(document)
        if problems:
            listed = "; ".join(f"{p.target or 'the body'}: {p.message}" for p in problems[:5])
            raise Invalid(f"the body cannot be accepted: {listed}", details=problems)
    return document


def _not_json(name: str) -> Any:
    """``NaN`` and ``Infinity``, which Python's parser accepts and JSON does not have."""
    raise BadRequest(f"malformed JSON: {name} is not a JSON value")


class _Duplicated(dict[str, Any]):
    """An object whose keys repeat (exactly or in another letter case): the walk reports them."""

    repeated: list[str]


class _Reading:
    """The parser's hooks for one document; ``suspect`` tells the walk to run."""

    def __init__(self) -> None:
        self.suspect = False
        # Whether a set of keys is distinct in any case, per set: a bulk body's 100,000 rows share a few, and
        # folding every key of every row cost more than the parse itself.
        self.distinct: dict[tuple[str, ...], bool] = {}

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made = dict(pairs)
        if len(made) == len(pairs):
            if len(made) < 2:
                return made
            keys = tuple(made)
            distinct = self.distinct.get(keys)
            if distinct is None:
                distinct = self.distinct[keys] = len({k.casefold() for k in keys}) == len(keys)
            if distinct:
                return made
        self.suspect = True
        odd = _Duplicated(made)
        seen: set[str] = set()
        odd.repeated = []
        for name, _ in pairs:
            folded = name.casefold()
            if folded in seen:
                odd.repeated.append(name)
            seen.add(folded)
        return odd

    def integer(self, text: str) -> int | Decimal:
        value = numbers.integer(text)
        if isinstance(value, Decimal) and len(text) > numbers.MAX_DIGITS:
            self.suspect = True
        return value

    def decimal(self, text: str) -> Decimal:
        value = Decimal(text)
        if numbers.too_long(value):
            self.suspect = True
        return value


def _problems(document: Any, limit: int = 100) -> list[Detail]:
    """Every duplicate key, unusable string and overlong number, by pointer (iterative: a document may be
    nested as deeply as the parser allows)."""
    problems: list[Detail] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack and len(problems) < limit:
        path, value = stack.pop()
        if isinstance(value, str):
            if unusable(value):
                problems.append(Detail("invalidCharacters", MESSAGE, _pointer(path, document)))
        elif isinstance(value, Decimal | int) and not isinstance(value, bool):
            if isinstance(value, Decimal) and numbers.too_long(value):
                message = f"numbers may have at most {numbers.MAX_DIGITS} digits"
                problems.append(Detail("numberTooLong", message, _pointer(path, document)))
        elif isinstance(value, list):
            stack.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            for name in getattr(value, "repeated", ()):
                message = f"field '{shown(name)}' given twice"
                problems.append(Detail("duplicateField", message, _pointer((*path, name), document)))
            for name, item in reversed(value.items()):
                if unusable(name):
                    problems.append(Detail("invalidCharacters", MESSAGE, _pointer((*path, name), document)))
                stack.append(((*path, name), item))
    return problems


def _pointer(path: tuple[str, ...], document: Any) -> str | None:
    """Where a problem is: a plain field name in a single object (as ``inputs.field_pointer`` names it), else a
    JSON pointer (``/17/role``); characters that cannot be written out are shown as U+FFFD."""
    if not path:
        return None
    if len(path) == 1 and isinstance(document, dict):
        return shown(path[0])
    return "/" + "/".join(shown(p).replace("~", "~0").replace("/", "~1") for p in path)


async def json_body(request: Request) -> Any:
    """Dependency: the JSON body of an ordinary request (1 MiB by default)."""
    limit = request.app.state.settings.max_body_bytes
    return decode_json(await body.read_bytes(request, limit), request.headers.get("content-type"))


async def bulk_body(request: Request) -> Any:
    """Dependency: the JSON body of ``users:bulk`` (32 MiB by default)."""
    limit = request.app.state.settings.max_bulk_bytes
    return decode_json(await body.read_bytes(request, limit), request.headers.get("content-type"))
