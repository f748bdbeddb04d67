"""Normalisation of the keys PayRoster compares: e-mails, aliases, tags, team names (contract §1)."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from email_validator import EmailNotValidError, validate_email

from payroster.domain.errors import Detail

MAX_EMAIL = 254
MAX_ITEM = 255
MAX_ITEMS = 1000
ROLES = ("FullAdmin", "LimitedAdmin", "Participant")
DEACTIVATED = "Deactivated"
_ROLE_BY_KEY = {r.casefold(): r for r in (*ROLES, DEACTIVATED)}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly
# An ASCII dot-atom local part: for these, email-validator's local-part rules reduce to this pattern, so
# only the domain needs the full check, and that is cached (a bulk import repeats a few domains).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=65536)  # bulk imports repeat the same tags and domains many times
def key(value: str) -> str:
    """The comparison key of a name: ``NFC(casefold(strip(value)))``."""
    return unicodedata.normalize("NFC", value.strip().casefold())


def has_control(value: str) -> bool:
    """True when ``value`` holds NUL or another control character."""
    return _CONTROL.search(value) is not None


def email_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable e-mail address, or None when it is."""
    if has_control(value):
        return "control characters are not allowed"
    if len(value) > MAX_EMAIL:
        return f"longer than {MAX_EMAIL} characters"
    local, at, domain = value.strip().rpartition("@")
    if at and len(local) <= 64 and _DOT_ATOM.fullmatch(local):
        return _address_problem(f"a@{domain}")
    return _address_problem(value)


@functools.lru_cache(maxsize=4096)
def _address_problem(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def parse_role(value: str) -> str | None:
    """The canonical role (or ``Deactivated``) for a case-insensitive input, None if unknown."""
    return _ROLE_BY_KEY.get(value.strip().casefold())


def split_items(value: str | Iterable[str]) -> list[str]:
    """Items of a pipe-separated string or a list: trimmed, empties dropped, duplicates merged by key."""
    raw = value.split("|") if isinstance(value, str) else list(value)
    seen: set[str] = set()
    items: list[str] = []
    for item in raw:
        text = item.strip()
        if text and (k := key(text)) not in seen:
            seen.add(k)
            items.append(text)
    return items


def item_problems(items: list[str], field: str) -> list[Detail]:
    """Length, count and character problems of a tag or alias list."""
    problems: list[Detail] = []
    if any(len(item) > MAX_ITEM for item in items):
        problems += [
            Detail("tooLong", f"item longer than {MAX_ITEM} characters", f"{field}/{i}")
            for i, item in enumerate(items)
            if len(item) > MAX_ITEM
        ]
    if has_control("".join(items)):  # one scan for the common case of clean items
        problems += [
            Detail("invalidCharacters", "control characters are not allowed", f"{field}/{i}")
            for i, item in enumerate(items)
            if has_control(item)
        ]
    if len(items) > MAX_ITEMS:
        problems.append(Detail("tooMany", f"more than {MAX_ITEMS} items", field))
    return problems
