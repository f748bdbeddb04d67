"""A refused form, shown again: the values typed, and each problem beside its field in words.

The services address problems by JSON pointer and wire name (``/emailAddress``, ``/1/startDate``); a page's
fields have their own names (``manager`` for ``directManagerId``). ``state`` maps one to the other and words
the message ("First name is longer than 255 characters", not "firstName: ..."); the page redirects with it in
the flash (``core.redirect``) and the templates' ``field`` macro puts each message under its input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.datastructures import FormData

from payroster.domain.errors import Detail, DomainError

# Wire names as the pages' labels say them.
WORDS = {
    "emailAddress": "e-mail address",
    "firstName": "first name",
    "lastName": "last name",
    "directManagerId": "direct manager",
    "managerId": "manager",
    "parentTeamId": "parent team",
    "startDate": "from date",
    "endDate": "until date",
    "tags": "tags",
    "aliases": "aliases",
}
# Wire names the pages' fields are called differently.
FIELD_OF = {"directManagerId": "manager", "managerId": "manager", "parentTeamId": "parent"}
SECRET_FIELDS = frozenset({"password", "confirm", "clientSecret"})  # never echoed back nor kept in a cookie
MAX_VALUE = 2000  # a kept value longer than this is not worth a cookie


def words(message: str) -> str:
    """A service message as a sentence: wire names replaced by words, a capital first letter, a full stop."""
    text = re.sub(r"'?\b(" + "|".join(WORDS) + r")\b'?", lambda m: WORDS[m.group(1)], message).strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def _field(target: str | None, known: Iterable[str], rename: Mapping[str, str]) -> str:
    """The page field a problem's target names ('' when it names none of them)."""
    name = (target or "").rstrip("/").split("/")[-1]
    name = rename.get(name) or FIELD_OF.get(name, name)
    return name if name in set(known) else ""


def state(
    form_id: str,
    data: FormData | Mapping[str, Any],
    problems: list[Detail] | DomainError,
    links: Mapping[str, tuple[str, str]] | None = None,
    rename: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the page needs to show the form again: its values (never a password), and a message per field
    (``''`` for the form as a whole); ``rename`` maps wire names to this form's field names."""
    rename = rename or {}
    known = [k for k, v in data.items() if isinstance(v, str) and k != "csrf_token"]
    values = {k: str(data[k])[:MAX_VALUE] for k in known if k not in SECRET_FIELDS}
    if isinstance(problems, DomainError):
        exc = problems
        problems = list(exc.details) or [Detail(exc.code, exc.message, exc.target)]
    errors: dict[str, str] = {}
    for p in problems:
        name = "role" if p.code == "lastFullAdmin" else _field(p.target, known, rename)
        errors[name] = (errors[name] + " " if name in errors else "") + words(p.message)
    return {"id": form_id, "values": values, "fields": known, "errors": errors, "links": dict(links or {})}


def summary(found: dict[str, Any]) -> str:
    """The line at the top of the page: the form-wide problem, or where to look."""
    unplaced = [m for name, m in found["errors"].items() if name not in found["fields"]]
    if unplaced:  # no input to stand beside
        return " ".join(unplaced)
    return "Please correct the marked field." if len(found["errors"]) == 1 else "Please correct the marked fields."
