"""The pages' search-as-you-type pickers (a manager, a parent team, a team to join): a few matches of the typed
text in the workspace, and the lookup of what a form was sent, by e-mail or by a name that names one person."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from payroster.db.models import Team, User
from payroster.domain import normalize
from payroster.services import users

LIMIT = 10  # matches a picker offers: enough to choose from, small enough to read on a phone
MAX_TEXT = 200  # typed text searched; longer names nothing anyway


@dataclass(frozen=True)
class Person:
    """A person as a picker offers them: the e-mail the form takes, and the name shown beside it."""

    id: uuid.UUID
    email: str
    name: str


def _full_name() -> ColumnElement[str]:
    return func.lower(func.coalesce(User.first_name, "") + " " + func.coalesce(User.last_name, ""))


def people(session: Session, ws: uuid.UUID, text: str, limit: int = LIMIT) -> list[Person]:
    """Active people of the workspace whose e-mail or name holds ``text``, by e-mail; none for empty text."""
    text = text.strip()[:MAX_TEXT]
    if not text:
        return []
    key = normalize.key(text)
    matches = [
        *(User.email_key.contains(part, autoescape=True) for part in normalize.email_fragments(text)),
        _full_name().contains(key, autoescape=True),
    ]
    stmt = (
        select(User.id, User.email, User.first_name, User.last_name)
        .where(User.workspace_id == ws, User.active.is_(True), or_(*matches))
        .order_by(User.email_key)
        .limit(limit)
    )
    return [
        Person(uid, email, " ".join(p for p in (first, last) if p) or email)
        for uid, email, first, last in session.execute(stmt)
    ]


def teams(session: Session, ws: uuid.UUID, text: str, limit: int = LIMIT) -> list[str]:
    """Names of the workspace's teams holding ``text``, by name; none for empty text."""
    key = normalize.key(text.strip()[:MAX_TEXT])
    if not key:
        return []
    stmt = (
        select(Team.name)
        .where(Team.workspace_id == ws, Team.name_key.contains(key, autoescape=True))
        .order_by(Team.name_key)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def person(session: Session, ws: uuid.UUID, text: str) -> User | None:
    """The person a form's field names: by e-mail, or by a full name that exactly one person of the workspace
    has (what a picker shows, typed without choosing); None otherwise."""
    text = text.strip()
    if "@" in text:
        return users.find_by_email(session, ws, text)
    key = normalize.key(text)
    if not key:
        return None
    found = list(
        session.scalars(select(User).where(User.workspace_id == ws, _full_name() == key).order_by(User.id).limit(2))
    )
    return found[0] if len(found) == 1 else None


def suggestions(session: Session, ws: uuid.UUID, text: str, limit: int = 3) -> list[str]:
    """The e-mails of people a refused entry probably meant: matches of the whole text, else of an address's local
    part (a mistyped domain), else of its first word of three letters or more that matches anyone (a mistyped
    name). An address's domain is never a word to match: everyone shares it."""
    text = text.strip()[:MAX_TEXT]
    local = text.split("@", 1)[0]
    tries = [text, local] if "@" in text else [text]
    tries += [w for w in re.split(r"[\s.,;_+-]+", local) if len(w) >= 3]
    for attempt in tries:
        found = people(session, ws, attempt, limit)
        if found:
            return [p.email for p in found]
    return []


def hint(options: list[str]) -> str:
    """The "did you mean" of a refusal, from a picker's matches of the text refused ('' when none)."""
    return f"; did you mean {', '.join(options[:3])}?" if options else ""
