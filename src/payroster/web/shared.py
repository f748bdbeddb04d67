"""Pieces several pages use: the Custom tab (effective-dated variables) and the Activity tab (audit events)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import simplejson
from sqlalchemy import Select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from payroster import clock
from payroster.db.models import User
from payroster.domain import effective
from payroster.domain.errors import Conflict, Detail, DomainError, Invalid, NotFound
from payroster.ids import parse_id
from payroster.services import listings, teams, users, variables
from payroster.services.context import Actor
from payroster.services.listings import ACTIONS
from payroster.services.listings import EventFilter as EventFilter  # the Activity tabs' and log's filter
from payroster.services.listings import events_query as events_query
from payroster.web import activity, forms
from payroster.web.core import database, describe, field, form, need_full_admin, redirect

ACTIVITY_PAGE = 50


@dataclass
class Partly:
    """A change done in part: the notice of what was done, and the form shown again with what was not (its
    values and the reason beside its field), e.g. the addresses of a pasted list that name nobody."""

    notice: str
    form_id: str
    values: dict[str, str]
    problems: list[Detail]


# What a page change answers: a notice for the page it came from, (notice, another page to go to), or ``Partly``.
Action = Callable[[Session, Any, uuid.UUID, FormData], "str | tuple[str, str] | Partly"]


async def change(
    request: Request,
    what: str,
    target_id: str,
    tab: str,
    action: Action,
    form_id: str | Callable[[FormData], str] | None = None,
) -> Response:
    """Run one change of a user's or team's page as a FullAdmin in one transaction. The page's own record
    unknown (or of another workspace) is a 404; any other refusal comes back as a message on the page, beside
    the fields of the form ``form_id`` (its values kept) when given."""
    who = need_full_admin(request)
    tid = parse_id(target_id)
    if tid is None:
        raise NotFound(f"{what} not found", target=what)
    data = await form(request)
    back = f"/{what}s/{tid}" + ("" if tab == "overview" else f"?tab={tab}")
    get = users.get if what == "user" else teams.get
    try:
        with database(request).write(who.workspace_id) as s:
            get(s, who.workspace_id, tid)
            notice = action(s, who, tid, data)
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.target == what:
            raise
        if form_id is None:
            return redirect(request, back, error=describe(exc))
        fid = form_id if isinstance(form_id, str) else form_id(data)
        found = forms.state(fid, data, exc, _links(request, who, exc, data))
        return redirect(request, back, error=forms.summary(found), form=found)
    if isinstance(notice, tuple):
        return redirect(request, notice[1], notice=notice[0])
    if isinstance(notice, Partly):
        return redirect(
            request, back, notice=notice.notice, form=forms.state(notice.form_id, notice.values, notice.problems)
        )
    return redirect(request, back, notice=notice)


LAST_ADMIN = "Promote another full admin first"


def _links(request: Request, who: Any, exc: DomainError, data: FormData) -> dict[str, tuple[str, str]]:
    """The way forward a refusal offers: the person who has the e-mail, or whom to promote."""
    if isinstance(exc, Conflict) and exc.target == "emailAddress":
        with database(request).read() as s:
            holder = users.find_by_email(s, who.workspace_id, field(data, "emailAddress"))
        if holder is not None:
            return {"emailAddress": (f"/users/{holder.id}", f"Open {users_name(holder)}")}
    if exc.code == "lastFullAdmin":
        return {"role": ("/users?status=active&sort=role", LAST_ADMIN)}
    return {}


def users_name(user: User) -> str:
    """How pages name a person: first and last name, or the e-mail when there is no name."""
    return " ".join(p for p in (user.first_name, user.last_name) if p) or user.email


def custom_action(session: Session, who: Any, target_id: uuid.UUID, data: FormData) -> str:
    """The Custom tab's forms: change the entry at ``index`` in place (``op=edit``), end it and start a new value
    from a date (``op=split``), remove it, or add the one described."""
    op = field(data, "op")
    if op in ("edit", "split"):
        return (edit_entry if op == "edit" else split_entry)(session, who.actor(), target_id, data)
    if field(data, "index"):
        remove_entry(session, who.actor(), target_id, data)
        return "Entry removed."
    add_entry(session, who.actor(), target_id, data)
    return "Entry added."


def custom_form(data: FormData) -> str:
    """The id of the Custom tab's form that was sent (a refused one is shown again with its values)."""
    op = field(data, "op")
    return f"{op}-entry-{field(data, 'index')}" if op in ("edit", "split") else "add-entry"


@dataclass
class Bar:
    """An entry placed on the timeline: its offset and width in percent of the shown span."""

    entry: variables.Entry
    left: float
    width: float
    open_start: bool
    open_end: bool


def _window(points: list[dt.date]) -> tuple[dt.date, float]:
    """The days a timeline shows: from the earliest point, past the latest by a quarter of the span (a month at
    least), so an open end runs on to the edge and a closed one visibly stops before it."""
    low, high = min(points), max(points)
    days = max((high - low).days, 1)
    return low, days + max(days / 4, 30)


def _dates(entries: list[variables.Entry]) -> list[dt.date]:
    return [p.date() for e in entries for p in (e.start, e.end) if p is not None] + [clock.today()]


def timeline(entries: list[variables.Entry]) -> list[Bar]:
    """Bars for every entry over the days :func:`_window` shows around its dates and today (open ends reach the
    edge); :func:`timeline_scale` labels the same days."""
    low, shown = _window(_dates(entries))
    origin = dt.datetime.combine(low, dt.time())
    bars = []
    for e in entries:
        start = 0.0 if e.start is None else (e.start - origin).total_seconds() / 86400 / shown * 100
        end = 100.0 if e.end is None else (e.end - origin).total_seconds() / 86400 / shown * 100
        bars.append(Bar(e, round(start, 2), round(max(end - start, 1.0), 2), e.start is None, e.end is None))
    return bars


TICKS = (0, 25, 50, 75, 100)  # where a timeline's scale puts its dates, in percent (classes of app.css)


def _ticks(low: dt.date, shown: float) -> list[tuple[int, str]]:
    return [(at, (low + dt.timedelta(days=round(shown * at / 100))).isoformat()) for at in TICKS]


def timeline_scale(entries: list[variables.Entry]) -> list[tuple[int, str]]:
    """The dates under the bars of :func:`timeline`: (percent from the left, date) at each of ``TICKS``."""
    return _ticks(*_window(_dates(entries)))


def span_scale(periods: list[tuple[dt.date, dt.date | None, Any]], today: dt.date) -> list[tuple[int, str]]:
    """The dates under the bars of :func:`spans`, as :func:`timeline_scale` gives them."""
    return _ticks(*_window([d for start, end, _ in periods for d in (start, end) if d is not None] + [today]))


# A number written with thousands separators, as people type and spreadsheets copy them: 120,000 · 1,234,567.50 ·
# 120 000 (a space, or the no-break spaces of French formats) · 120'000 (Swiss). One separator throughout, groups
# of three after the first.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?P<sep>[,\u00a0\u202f '’])\d{3}(?:(?P=sep)\d{3})*(?:\.\d+)?")
# Digits with separators in no such pattern (12,50 · 1.234,56 · 1,2345): a number, but which one is a guess.
_NUMBERISH = re.compile(r"[+-]?[\d.,\u00a0\u202f '’]*\d[\d.,\u00a0\u202f '’]*")


def parse_value(text: str) -> variables.Scalar:
    """A typed cell: a number keeps its exact digits (thousands separators allowed, ``120,000``), ``true``/
    ``false``/``null`` are JSON, anything else text. Digits and separators that make no unambiguous number
    (``12,50``, ``1.234,56``) are refused with the question to settle, rather than stored as text."""
    stripped = text.strip()
    if stripped in ("true", "false", "null"):
        value: variables.Scalar = json.loads(stripped)
        return value
    if _GROUPED.fullmatch(stripped):
        stripped = re.sub(r"[,\u00a0\u202f '’]", "", stripped)
    try:
        number = Decimal(stripped)
    except InvalidOperation:
        if _NUMBERISH.fullmatch(stripped):
            guess = stripped.replace(".", "").replace(",", ".") if "," in stripped else stripped
            question = (
                f"is {stripped} the number {guess}? Type it with a dot for decimals and commas only between "
                "groups of three digits (12.5, 120,000, 1,234.56)"
            )
            raise Invalid(question, details=[Detail("ambiguousNumber", question, "value")]) from None
        return text
    if not number.is_finite():
        return text
    return (
        int(number)
        if number == number.to_integral_value() and "." not in stripped and "e" not in stripped.lower()
        else number
    )


def add_entry(session: Session, actor: Actor, target_id: uuid.UUID, data: FormData) -> None:
    """Add one entry to a user's or team's variables (the whole set is replaced, as the API does)."""
    raw = {
        "name": field(data, "name"),
        "value": parse_value(field(data, "value")),
        "startDate": field(data, "startDate").strip() or None,
        "endDate": field(data, "endDate").strip() or None,
    }
    current = variables.list_entries(session, actor.workspace_id, target_id)
    _replace(session, actor, target_id, [*(e.wire() for e in current), raw])


_ENTRY_PROBLEM_FIELDS = ("name", "value", "startDate", "endDate")


def _at(current: list[variables.Entry], data: FormData) -> int:
    """The position of the entry a form names, refused when the list has changed under it."""
    try:
        index = int(field(data, "index"))
        if not 0 <= index < len(current):
            raise ValueError(index)
    except ValueError:
        raise Invalid("that entry no longer exists", details=[Detail("notFound", "no such entry", "index")]) from None
    return index


def _replace(session: Session, actor: Actor, target_id: uuid.UUID, raws: list[dict[str, Any]]) -> None:
    """Check and store the whole new set (as the API checks a replacement); a problem is put beside the form's
    field it concerns, an overlap in words that say what to do instead."""
    try:
        entries = variables.parse_entries(raws)
    except Invalid as exc:
        details = []
        for d in exc.details:
            parts = (d.target or "").strip("/").split("/")
            name = parts[-1] if len(parts) > 1 else ("startDate" if d.code == "overlap" else "")
            message = d.message
            if d.code == "overlap":
                message = (
                    "these dates overlap another entry of this name: change that entry in place (Edit), "
                    "or end it and start the new value from a date"
                )
            details.append(Detail(d.code, message, name if name in _ENTRY_PROBLEM_FIELDS else None))
        raise Invalid(exc.message, details=details) from None
    variables.replace(session, actor, target_id, entries)


def _day(value: dt.datetime | None) -> str | None:
    return effective.format_instant(value)


def edit_entry(session: Session, actor: Actor, target_id: uuid.UUID, data: FormData) -> str:
    """Change the entry at ``index`` in place: its value and dates (its name stays)."""
    current = variables.list_entries(session, actor.workspace_id, target_id)
    index = _at(current, data)
    raws = [e.wire() for e in current]
    raws[index] = {
        "name": current[index].name,
        "value": parse_value(field(data, "value")),
        "startDate": field(data, "startDate").strip() or None,
        "endDate": field(data, "endDate").strip() or None,
    }
    _replace(session, actor, target_id, raws)
    return f"{current[index].name} changed."


def split_entry(session: Session, actor: Actor, target_id: uuid.UUID, data: FormData) -> str:
    """End the entry at ``index`` the day before a date and start a new value from that date, until the old end."""
    current = variables.list_entries(session, actor.workspace_id, target_id)
    index = _at(current, data)
    old = current[index]
    start = field(data, "startDate").strip()
    try:
        begins = effective.parse_instant(start)
    except ValueError:
        why = f"{start} is not a date like 2027-07-01" if start else "the date the new value starts is required"
        raise Invalid(why, details=[Detail("invalidDate", why, "startDate")]) from None
    if (old.start is not None and begins <= old.start) or (old.end is not None and begins >= old.end):
        span = f"from {effective.format_day(old.start) or 'the start'} until {effective.format_day(old.end) or 'open'}"
        why = f"the new value must start inside the current one ({span})"
        raise Invalid(why, details=[Detail("outOfRange", why, "startDate")])
    value = parse_value(field(data, "value"))
    raws = [e.wire() for e in current]
    raws[index] = {**raws[index], "endDate": start}
    raws.append({"name": old.name, "value": value, "startDate": start, "endDate": _day(old.end)})
    _replace(session, actor, target_id, raws)
    return f"{old.name} ends before {start[:10]}; the new value starts then."


def remove_entry(session: Session, actor: Actor, target_id: uuid.UUID, data: FormData) -> None:
    """Remove the entry at the given position of the ordered list."""
    current = variables.list_entries(session, actor.workspace_id, target_id)
    try:
        index = int(field(data, "index"))
        if not 0 <= index < len(current):
            raise ValueError(index)
    except ValueError:
        raise Invalid("that entry no longer exists", details=[Detail("notFound", "no such entry", "index")]) from None
    variables.replace(session, actor, target_id, current[:index] + current[index + 1 :])


def entry_text(entry: variables.Entry) -> dict[str, str]:
    """An entry's cells as the Custom tab shows them."""
    return {
        "value": entry.value if isinstance(entry.value, str) else simplejson.dumps(entry.value, use_decimal=True),
        "start": effective.format_day(entry.start) or "open",
        "end": effective.format_day(entry.end) or "open",
    }


def events(session: Session, stmt: Select[Any], page: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of events as the tables show them (named, in words), and whether there is a next page."""
    rows = listings.events_page(session, stmt, page, ACTIVITY_PAGE)
    shown = [(event, email, json.loads(event.changes)) for event, email in rows[:ACTIVITY_PAGE]]
    ws = shown[0][0].workspace_id if shown else None
    known = activity.names(session, ws, [(e.target_type, e.target_id, c) for e, _, c in shown]) if ws else {}
    out = []
    for event, email, changes in shown:
        out.append(
            {
                "at": event.occurred_at,
                "actor": email or event.actor_kind,
                "via": f"{event.actor_kind} · {event.channel}",
                "action": event.action,
                "words": ACTIONS.get(event.action, event.action),
                "sentence": activity.sentence(event.action, event.target_type, event.target_id, changes, known),
                "target_type": event.target_type,
                "target_id": event.target_id,
                "target_name": known.get(str(event.target_id)),
                "changes": activity.lines(event.action, changes, known),
            }
        )
    return out, len(rows) > ACTIVITY_PAGE


# -- dated periods (memberships, managers) -----------------------------------------------------------------------


@dataclass
class Span:
    """A dated period on a page's timeline (README.md, "Dates and timelines"): its place in percent of the shown
    days, and whether it is past, current or scheduled on ``today``."""

    start: dt.date
    end: dt.date | None
    item: Any
    left: float
    width: float
    state: str


def spans(periods: list[tuple[dt.date, dt.date | None, Any]], today: dt.date) -> list[Span]:
    """Periods placed over the days from the earliest start (or today) to past the latest date, so an open end
    runs on to the edge (a quarter of the span, a month at least) and a closed one stops before it."""
    low, shown = _window([d for start, end, _ in periods for d in (start, end) if d is not None] + [today])
    out = []
    for start, end, item in periods:
        left = (start - low).days / shown * 100
        right = 100.0 if end is None else (end - low).days / shown * 100
        state = "past" if end is not None and end <= today else "future" if start > today else "current"
        out.append(Span(start, end, item, round(left, 2), round(max(right - left, 1.0), 2), state))
    return out


def date_field(data: FormData, name: str, problems: list[Detail], default: dt.date | None = None) -> dt.date | None:
    """A form's ``<input type=date>`` (empty: ``default``); a problem named after the field when not a date."""
    text = field(data, name).strip()
    if not text:
        return default
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    problems.append(Detail("invalidDate", f"{name} must be a date YYYY-MM-DD", name))
    return None


def as_of(value: str) -> tuple[dt.date | None, str | None]:
    """A page's ``asOf`` query parameter: the day (None: today's view) and an error message for a bad one."""
    text = value.strip()
    if not text:
        return None, None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text), None
    except ValueError:
        pass
    return None, f"{text!r} is not a date (YYYY-MM-DD); showing today"
