"""Normalisation of the keys PayRoster compares: e-mails, aliases, tags, team names (docs/architecture.md,
"Normalised keys")."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import email_validator
import idna
from email_validator import EmailNotValidError, validate_email

from payroster.domain.errors import Detail

MAX_EMAIL = 254
MAX_LOCAL_PART = 64
MAX_DOMAIN = 253
MAX_ITEM = 255
MAX_ITEMS = 1000
ROLES = ("FullAdmin", "LimitedAdmin", "Participant")
DEACTIVATED = "Deactivated"
_ROLE_BY_KEY = {r.casefold(): r for r in (*ROLES, DEACTIVATED)}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly
# An ASCII dot-atom local part: for these, email-validator's local-part rules reduce to this pattern, so
# only the domain needs the full check, and that is cached (a bulk import repeats a few domains).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")

# A directory, not a mailer: an address at a special-use domain (``contoso.local``, the usual Active Directory
# domain, ``*.test``, ``home.arpa``) names a real person as well as any other, so none is refused. The library's
# documented way to allow them is to empty this list; it does not depend on the call (README.md, "E-mail addresses").
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()


@functools.lru_cache(maxsize=65536)  # bulk imports repeat the same tags and domains many times
def key(value: str) -> str:
    """The comparison key of a name: ``NFC(casefold(strip(value)))``."""
    return unicodedata.normalize("NFC", value.strip().casefold())


def email_key(value: str) -> str:
    """The identity of an e-mail address, unique per workspace: the local part in Unicode lower case after NFC
    (``Straße`` stays apart from ``strasse``, a ligature from its letters), ``@``, the domain in its IDNA A-label
    form (``müller.de`` and ``xn--mller-kva.de`` are one domain). A domain that is not valid IDNA is compared in
    lower case; a value without ``@`` is lower-cased whole (it finds nobody: no stored address lacks one)."""
    local, at, domain = unicodedata.normalize("NFC", value.strip()).rpartition("@")
    if not at:
        return _lower(domain)
    return f"{_lower(local)}@{domain_key(domain)}"


def email_fragments(text: str) -> list[str]:
    """What a search for ``text`` looks for inside stored e-mail keys: the text as a key's local part would hold
    it, and, when it holds no ``@``, the start of a domain in A-label form (``müller`` finds ``@xn--mller-kva.de``)."""
    found = [email_key(text)]
    if "@" not in text:
        found.append(email_key("@" + text))
    return found


def _lower(text: str) -> str:
    # Lower-casing may decompose (İ is i and a combining dot), so compose again.
    return unicodedata.normalize("NFC", text.lower())


@functools.lru_cache(maxsize=4096)  # a bulk import repeats a few domains many times
def domain_key(domain: str) -> str:
    """A domain's identity: its IDNA (A-label) form in lower case (README.md, "E-mail addresses")."""
    # UTS 46 maps case, width and compatibility forms as DNS resolvers do; its non-transitional processing keeps
    # ß and ς, which are distinct names under IDNA 2008. A long value is not given to idna: checking a long
    # label costs time quadratic in its length, and no domain is longer than 253 characters anyway.
    if len(domain) <= MAX_DOMAIN:
        try:
            return idna.encode(domain, uts46=True).decode("ascii").lower()
        except idna.IDNAError:
            pass
    return _lower(domain)


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
    if at and len(local) <= MAX_LOCAL_PART and _DOT_ATOM.fullmatch(local):
        problem = _address_problem(f"a@{domain}")
    else:
        problem = _address_problem(value)
    if problem is None and len(email_key(value)) > MAX_EMAIL:  # the key holds the domain's longer A-label form
        return f"longer than {MAX_EMAIL} characters with its domain in IDNA form"
    return problem


@functools.lru_cache(maxsize=4096)
def _address_problem(value: str) -> str | None:
    # Syntax only: no DNS (check_deliverability), any domain a company names its mail by, a single label
    # (``jdoe@intranet``) included (globally_deliverable); strict enforces the 64-character local part.
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=True, globally_deliverable=False, strict=True)
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
