"""Door-agnostic parsing of upsert payloads (API, bulk, CSV import): canonical names, typed values.

Every door hands a plain ``dict`` here, so case-insensitive field names, unknown-field refusal and
value checks are written once, and every problem carries a target the door can point at.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payroster.domain import normalize
from payroster.domain.errors import Detail
from payroster.ids import parse_id


class _Unset:
    """Marks a field absent from the payload (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
Pointer = Callable[[str], str]

USER_FIELDS = ("emailAddress", "role", "firstName", "lastName", "directManagerId", "tags", "aliases", "effectiveDate")
TEAM_FIELDS = (
    "name",
    "description",
    "managerId",
    "parentTeamId",
    "managerCanViewResults",
    "managerCanViewCredits",
    "membersCanViewCredits",
    "effectiveDate",
)
MEMBER_FIELDS = ("systemUserId", "teamId")
PERIOD_FIELDS = ("validFrom", "validTo")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class UserInput:
    """A parsed user payload; ``UNSET`` fields are left as they are."""

    email: Any = UNSET
    role: Any = UNSET  # canonical role or "Deactivated"
    first_name: Any = UNSET
    last_name: Any = UNSET
    direct_manager_id: Any = UNSET  # uuid or None
    tags: Any = UNSET  # list[str]
    aliases: Any = UNSET  # list[str]
    # Written by the SCIM door only (docs/rules.md, "Users").
    active: Any = UNSET  # bool: applied after ``role``, so a role can change while the user stays inactive
    user_name: Any = UNSET  # str
    display_name: Any = UNSET  # str or None
    external_id: Any = UNSET  # str or None
    scim_emails: Any = UNSET  # JSON text or None
    scim_hidden: Any = UNSET  # bool
    effective_date: dt.date | None = None  # the dated fields' change applies from then (None: today)


@dataclass
class TeamInput:
    """A parsed team payload."""

    name: Any = UNSET
    description: Any = UNSET
    manager_id: Any = UNSET
    parent_team_id: Any = UNSET
    flags: dict[str, bool] = field(default_factory=dict)
    external_id: Any = UNSET  # str or None; written by the SCIM door only
    effective_date: dt.date | None = None  # the dated fields' change applies from then (None: today)


@dataclass
class MemberInput:
    """A parsed membership payload: the pair, and the period's dates (None: today, and open)."""

    user_id: uuid.UUID
    team_id: uuid.UUID
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


@functools.cache
def _by_key(names: tuple[str, ...]) -> dict[str, str]:
    return {n.casefold(): n for n in names}


def canonical(raw: Any, names: tuple[str, ...], at: Pointer) -> tuple[dict[str, Any], list[Detail]]:
    """Map case-insensitive keys to canonical names; unknown and duplicate keys are problems."""
    if not isinstance(raw, dict):
        return {}, [Detail("invalidType", "expected a JSON object", at("").rstrip("/") or None)]
    by_key = _by_key(names)
    out: dict[str, Any] = {}
    problems: list[Detail] = []
    for name, value in raw.items():
        known = by_key.get(str(name).casefold())
        if known is None:
            problems.append(Detail("unknownField", f"unknown field '{name}'", at(str(name))))
        elif known in out:
            problems.append(Detail("duplicateField", f"field '{known}' given twice", at(str(name))))
        else:
            out[known] = value
    return out, problems


def text_field(value: Any, name: str, at: Pointer, problems: list[Detail], limit: int = 255) -> str | None:
    """Optional printable text of at most ``limit`` characters, stripped (empty is None); problems appended."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(Detail("invalidType", f"{name} must be a string", at(name)))
        return None
    if normalize.has_control(value):
        problems.append(Detail("invalidCharacters", "control characters are not allowed", at(name)))
    if len(value) > limit:
        problems.append(Detail("tooLong", f"{name} is longer than {limit} characters", at(name)))
    return value.strip() or None


def _guid(value: Any, name: str, at: Pointer, problems: list[Detail]) -> uuid.UUID | None:
    if value is None:
        return None
    parsed = parse_id(value)
    if parsed is None:
        problems.append(Detail("invalidId", f"{name} is not a valid GUID", at(name)))
    return parsed


def parse_date(value: Any, name: str, at: Pointer, problems: list[Detail]) -> dt.date | None:
    """A calendar date ``YYYY-MM-DD`` (null: None); problems appended."""
    if value is None:
        return None
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.append(Detail("invalidDate", f"{name} must be a date YYYY-MM-DD", at(name)))
    return None


def _items(value: Any, name: str, at: Pointer, problems: list[Detail]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value) or isinstance(value, str):
        items = normalize.split_items(value)
    else:
        problems.append(
            Detail("invalidType", f"{name} must be a '|'-separated string or an array of strings", at(name))
        )
        return []
    problems += [Detail(d.code, d.message, at(d.target or name)) for d in normalize.item_problems(items, name)]
    return items


def parse_user(raw: Any, at: Pointer, require_email: bool = True) -> tuple[UserInput, list[Detail]]:
    """A ``UserInput`` and the list of problems in ``raw``."""
    data, problems = canonical(raw, USER_FIELDS, at)
    inp = UserInput()
    if "emailAddress" in data:
        email = data["emailAddress"]
        why = "emailAddress must be a string" if not isinstance(email, str) else normalize.email_problem(email)
        if why:
            problems.append(Detail("invalidEmail", why, at("emailAddress")))
        else:
            inp.email = email.strip()
    elif require_email and not problems and isinstance(raw, dict):
        problems.append(Detail("required", "emailAddress is required", at("emailAddress")))
    if "role" in data:
        role = normalize.parse_role(data["role"]) if isinstance(data["role"], str) else None
        if role is None:
            problems.append(
                Detail("invalidRole", "role must be FullAdmin, LimitedAdmin, Participant or Deactivated", at("role"))
            )
        inp.role = role if role is not None else UNSET
    for wire, attr in (("firstName", "first_name"), ("lastName", "last_name")):
        if wire in data:
            setattr(inp, attr, text_field(data[wire], wire, at, problems))
    if "directManagerId" in data:
        inp.direct_manager_id = _guid(data["directManagerId"], "directManagerId", at, problems)
    for wire in ("tags", "aliases"):
        if wire in data:
            setattr(inp, wire, _items(data[wire], wire, at, problems))
    if "effectiveDate" in data:
        inp.effective_date = parse_date(data["effectiveDate"], "effectiveDate", at, problems)
    return inp, problems


def parse_team(raw: Any, at: Pointer, require_name: bool = True) -> tuple[TeamInput, list[Detail]]:
    """A ``TeamInput`` and the list of problems in ``raw``."""
    data, problems = canonical(raw, TEAM_FIELDS, at)
    inp = TeamInput()
    if "name" in data:
        name = text_field(data["name"], "name", at, problems)
        if name is None and not any(p.target == at("name") for p in problems):
            problems.append(Detail("required", "name must not be empty", at("name")))
        inp.name = name
    elif require_name and isinstance(raw, dict):
        problems.append(Detail("required", "name is required", at("name")))
    if "description" in data:
        inp.description = text_field(data["description"], "description", at, problems, limit=4000)
    if "managerId" in data:
        inp.manager_id = _guid(data["managerId"], "managerId", at, problems)
    if "parentTeamId" in data:
        inp.parent_team_id = _guid(data["parentTeamId"], "parentTeamId", at, problems)
    for flag in TEAM_FIELDS[4:7]:
        if flag in data:
            value = data[flag]
            if value is not None and not isinstance(value, bool):
                problems.append(Detail("invalidType", f"{flag} must be true, false or null", at(flag)))
            inp.flags[flag] = bool(value)
    if "effectiveDate" in data:
        inp.effective_date = parse_date(data["effectiveDate"], "effectiveDate", at, problems)
    return inp, problems


def parse_member(raw: Any, at: Pointer) -> tuple[tuple[uuid.UUID, uuid.UUID] | None, list[Detail]]:
    """``(systemUserId, teamId)`` and the list of problems in ``raw``."""
    data, problems = canonical(raw, MEMBER_FIELDS, at)
    ids: list[uuid.UUID] = []
    for name in MEMBER_FIELDS:
        if name not in data and isinstance(raw, dict):
            problems.append(Detail("required", f"{name} is required", at(name)))
            continue
        parsed = _guid(data.get(name), name, at, problems)
        if parsed is not None:
            ids.append(parsed)
        elif data.get(name) is None and name in data:
            problems.append(Detail("required", f"{name} must not be null", at(name)))
    if problems or len(ids) != 2:
        return None, problems
    return (ids[0], ids[1]), problems


def parse_membership(
    raw: Any, at: Pointer, dates: tuple[str, ...] = PERIOD_FIELDS
) -> tuple[MemberInput | None, list[Detail]]:
    """A ``MemberInput`` and the list of problems in ``raw``; ``dates`` are the period fields the door takes."""
    data, problems = canonical(raw, MEMBER_FIELDS + dates, at)
    if not isinstance(raw, dict):
        return None, problems
    ids, more = parse_member({k: v for k, v in data.items() if k in MEMBER_FIELDS}, at)
    problems += more
    found = {name: parse_date(data.get(name), name, at, problems) for name in dates}
    if problems or ids is None:
        return None, problems
    return MemberInput(ids[0], ids[1], found.get("validFrom"), found.get("validTo")), problems


def field_pointer(prefix: str = "") -> Pointer:
    """A pointer maker: plain field names for single objects, ``/17/emailAddress`` under a prefix."""
    if not prefix:
        return lambda name: name
    return lambda name: f"{prefix}/{name}" if name else prefix
