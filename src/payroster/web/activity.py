"""The Activity Log in words (README.md, "Web app"): who an event is about by name, what happened as a sentence
("Ann Lee joined team West", "Bo Chen was deactivated"), and each change's before and after as a person reads it
(names for ids, dates for instants, the variables added and removed rather than both lists whole)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from payroster.ids import parse_id
from payroster.services import reads
from payroster.services.listings import ACTIONS

# Fields as the pages' labels say them.
LABELS = {
    "emailAddress": "e-mail", "firstName": "first name", "lastName": "last name", "role": "role", "active": "status",
    "directManagerId": "manager", "managerId": "manager", "parentTeamId": "parent team", "tags": "tags",
    "aliases": "aliases", "name": "name", "description": "description", "customVariables": "variables",
    "periods": "periods", "userName": "user name", "displayName": "display name", "externalId": "external id",
    "password": "password",
}  # fmt: skip
_ID_FIELDS = ("directManagerId", "managerId", "parentTeamId", "systemUserId", "teamId")
NONE = "(none)"


@dataclass
class Line:
    """One change as the table shows it."""

    label: str
    before: str
    after: str


def names(
    session: Session, ws: uuid.UUID, rows: Iterable[tuple[str, uuid.UUID, list[dict[str, Any]]]]
) -> dict[str, str]:
    """The names of the people and teams a page of events mentions (targets, members, managers, parents): two
    queries, whatever the page holds. Keys are ids as text."""
    ids: set[uuid.UUID] = set()
    for _, target_id, changes in rows:
        ids.add(target_id)
        for c in changes:
            if c.get("field") in _ID_FIELDS:
                for value in (c.get("before"), c.get("after")):
                    if isinstance(value, str) and (parsed := parse_id(value)) is not None:
                        ids.add(parsed)
    return reads.labels(session, ws, ids)


def _change(changes: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in changes if c.get("field") == name), None)


def sentence(
    action: str, target_type: str, target_id: uuid.UUID, changes: list[dict[str, Any]], known: dict[str, str]
) -> str:
    """What happened, as a sentence naming who or what it happened to."""
    target = known.get(str(target_id))
    if action.startswith("membership."):
        member = _change(changes, "systemUserId") or {}
        person = known.get(str(member.get("before") or member.get("after")), "someone")
        team = f"team {target}" if target else "a deleted team"
        verb = {"membership.added": "joined", "membership.removed": "left"}.get(action)
        return f"{person} {verb} {team}" if verb else f"{person}'s membership of {team} changed"
    if target_type == "team" and action.startswith("team."):
        named = _change(changes, "name") or {}
        shown = target or named.get("before") or named.get("after") or "(deleted)"
        return f"Team {shown} " + {"team.created": "created", "team.deleted": "deleted"}.get(action, "changed")
    who = target or target_type
    if action == "user.created":
        return f"{who} was added"
    if action == "user.updated":
        active = _change(changes, "active")
        if active is not None:
            return f"{who} was " + ("reactivated" if active.get("after") else "deactivated")
        fields = [LABELS.get(str(c.get("field")), str(c.get("field"))) for c in changes]
        return f"{who}: {', '.join(fields)} changed" if fields else f"{who} was changed"
    if action == "customVariables.replaced":
        return f"{who}'s variables changed"
    if action.endswith("LinkCreated"):
        return f"{ACTIONS.get(action, action).capitalize()} for {who}"
    words = ACTIONS.get(action, action)
    return words[0].upper() + words[1:]


def lines(action: str, changes: list[dict[str, Any]], known: dict[str, str]) -> list[Line]:
    """Each change's before and after in words; a membership's own ids are in the sentence, not repeated here."""
    out: list[Line] = []
    for c in changes:
        name = str(c.get("field"))
        if action.startswith("membership.") and name in ("systemUserId", "teamId"):
            continue
        if name == "customVariableIds":  # the entries' ids, for the feed's delta; the entries say it in words
            continue
        before, after = c.get("before"), c.get("after")
        if name == "customVariables":
            out += _variables(before or [], after or [])
            continue
        shown_before = "" if before is None and action.endswith(".created") else _text(name, before, known)
        out.append(Line(LABELS.get(name, name), shown_before, _text(name, after, known)))
    return out


def _variables(before: list[Any], after: list[Any]) -> list[Line]:
    """The entries removed and added, each as ``Quota 120,000 from 2027-01-01 until 2027-12-31``."""
    gone = [e for e in before if e not in after]
    new = [e for e in after if e not in before]
    out = [Line(_entry(e), "", "removed") for e in gone]
    out += [Line(_entry(e), "", "added") for e in new]
    return out


def _entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    span = f"from {_day(entry.get('startDate')) or 'the start'} until {_day(entry.get('endDate')) or 'open'}"
    return f"{entry.get('name')} = {_value(entry.get('value'))} {span}"


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _day(value: Any) -> str:
    """An instant as a date when it falls at midnight (as the variables' dates do), else as written."""
    if not isinstance(value, str):
        return ""
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return instant.date().isoformat() if instant.time() == dt.time() else instant.isoformat(sep=" ")


def _text(name: str, value: Any, known: dict[str, str]) -> str:
    if value is None or value == []:
        return NONE
    if name == "active":
        return "active" if value else "deactivated"
    if name in _ID_FIELDS and isinstance(value, str):
        return known.get(value, "(deleted)")
    if name == "periods" and isinstance(value, list):
        return (
            "; ".join(
                f"from {p.get('validFrom')} until {p.get('validTo') or 'open'}" for p in value if isinstance(p, dict)
            )
            or NONE
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
