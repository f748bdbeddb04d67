"""JSON API: dated reads (README.md, "Dates and timelines"): a team's members on a date, a user's and a team's
timelines, and the ``asOf`` form of a user or team."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from payroster import clock
from payroster.api import schemas
from payroster.api.deps import actor, database, principal
from payroster.api.errors import ERRORS
from payroster.db.engine import Database
from payroster.domain import periods
from payroster.domain.errors import Detail, Invalid, NotFound
from payroster.domain.periods import Period
from payroster.ids import parse_id
from payroster.services import hierarchy, memberships, teams, users
from payroster.services.context import Actor
from payroster.services.inputs import field_pointer, parse_date

router = APIRouter(dependencies=[Depends(principal)], responses=ERRORS)

MEMBERS_PAGE, MEMBERS_PAGE_MAX = 1000, 5000
AS_OF = Query(None, description="a date YYYY-MM-DD: the dated fields as they were (or will be) then")


def as_of(value: str | None) -> dt.date | None:
    """The ``asOf`` query parameter as a date (None when absent); 422 when it is not one."""
    if value is None:
        return None
    problems: list[Any] = []
    day = parse_date(value, "asOf", field_pointer(), problems)
    if problems or day is None:
        raise Invalid("asOf must be a date YYYY-MM-DD", details=problems)
    return day


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _members(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {"periodId": str(r.id), "systemUserId": str(r.user_id), **periods.Period(r.valid_from, r.valid_to).wire()}
        for r in rows
    ]


@router.get(
    "/api/v1/teams/{team_id}/members",
    operation_id="listTeamMembers",
    tags=["team members"],
    response_model=schemas.TeamMembersAsOf,
)
def team_members(
    team_id: str,
    asOf: str | None = AS_OF,
    limit: int = Query(MEMBERS_PAGE, ge=1, le=MEMBERS_PAGE_MAX, description="members per page"),
    after: str | None = Query(None, description="the `next` of the previous page: members after that user"),
    db: Database = Depends(database),
    who: Actor = Depends(actor),  # noqa: N803
) -> JSONResponse:
    """The members of a team on a date (today without ``asOf``), with the period each one is in, by user id, a
    page at a time: ``next`` is the ``after`` of the next page (null on the last)."""
    day = as_of(asOf) or clock.today()
    start = None if after is None else parse_id(after)
    if after is not None and start is None:
        raise Invalid("after must be a user id", details=[Detail("invalidValue", "a user id (GUID)", "after")])
    with db.read() as s:
        team = teams.get(s, who.workspace_id, parse_id(team_id))
        rows = memberships.members_on(s, who.workspace_id, team.id, day, limit + 1, start)
        more = len(rows) > limit
        rows = rows[:limit]
        return JSONResponse(
            {
                "teamId": str(team.id),
                "asOf": day.isoformat(),
                "members": _members(rows),
                "next": str(rows[-1].user_id) if more else None,
            }
        )


@router.get(
    "/api/v1/users/{user_id}/timeline",
    operation_id="getUserTimeline",
    tags=["users"],
    response_model=schemas.UserTimeline,
)
def user_timeline(user_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """A user's direct managers and team periods, past, current and scheduled, oldest first."""
    with db.read() as s:
        user = users.get(s, who.workspace_id, parse_id(user_id))
        managers = hierarchy.manager_timeline(s, who.workspace_id, user.id)
        rows = memberships.of_user(s, who.workspace_id, user.id)
        return JSONResponse(
            {
                "userId": str(user.id),
                "directManager": [
                    {"periodId": str(p.id), **p.wire(), "directManagerId": str(p.value)} for p in managers
                ],
                "teams": [
                    {"periodId": str(r.id), "teamId": str(r.team_id), **periods.Period(r.valid_from, r.valid_to).wire()}
                    for r in rows
                ],
            }
        )


def period_cursor(after: str | None) -> memberships.PeriodKey | None:
    """The ``after`` of a team timeline's page (the ``next`` of the page before) as the place it resumes at; 422
    when it is not one PayRoster wrote."""
    if after is None:
        return None
    try:
        user_id, day, period_id = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode().split("/")
        return memberships.PeriodKey(uuid.UUID(user_id), dt.date.fromisoformat(day), uuid.UUID(period_id))
    except (ValueError, UnicodeDecodeError):
        why = "after must be the next of an earlier page of this timeline"
        raise Invalid(why, details=[Detail("invalidValue", why, "after")]) from None


def _cursor(row: Any) -> str:
    text = f"{row.user_id}/{row.valid_from.isoformat()}/{row.id}"
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _team_or_history(s: Session, ws: uuid.UUID, team_id: uuid.UUID | None) -> tuple[uuid.UUID, list[Period]]:
    """The team's id and its manager and parent periods; a deleted team's history stays readable, so only an id
    without a team nor any period is unknown."""
    try:
        found: uuid.UUID = teams.get(s, ws, team_id).id
    except NotFound:
        if team_id is None:
            raise
        found = team_id
        timeline = hierarchy.team_timeline(s, ws, found)
        if not (timeline or memberships.team_has_periods(s, ws, found)):
            raise
        return found, timeline
    return found, hierarchy.team_timeline(s, ws, found)


@router.get(
    "/api/v1/teams/{team_id}/timeline",
    operation_id="getTeamTimeline",
    tags=["teams"],
    response_model=schemas.TeamTimeline,
)
def team_timeline(
    team_id: str,
    limit: int = Query(MEMBERS_PAGE, ge=1, le=MEMBERS_PAGE_MAX, description="member periods per page"),
    after: str | None = Query(None, description="the `next` of the previous page: the member periods after it"),
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> JSONResponse:
    """A team's managers and parents, whole on every page, and its member periods (a deleted team's too) by
    user, then date, a page at a time: ``next`` is the ``after`` of the next page (null on the last)."""
    start = period_cursor(after)
    with db.read() as s:
        tid, timeline = _team_or_history(s, who.workspace_id, parse_id(team_id))
        rows = memberships.of_team(s, who.workspace_id, tid, limit + 1, start)
    more = len(rows) > limit
    rows = rows[:limit]
    fields = {
        name: [{**p.wire(), name + "Id" if name == "manager" else "parentTeamId": str(p.value)}
               for p in periods.field(timeline, index)]
        for index, name in enumerate(("manager", "parent"))
    }  # fmt: skip
    page = {"members": _members(rows), "next": _cursor(rows[-1]) if more else None}
    return JSONResponse({"teamId": str(tid), **fields, **page})


def dated_manager(s: Session, ws: uuid.UUID, user_id: uuid.UUID, day: dt.date) -> str | None:
    """The user's direct manager on ``day``."""
    return _id(periods.at(hierarchy.manager_timeline(s, ws, user_id), day))


def dated_team(s: Session, ws: uuid.UUID, team_id: uuid.UUID, day: dt.date) -> dict[str, str | None]:
    """The team's manager and parent on ``day``."""
    value: Any = periods.at(hierarchy.team_timeline(s, ws, team_id), day) or (None, None)
    return {"managerId": _id(value[0]), "parentTeamId": _id(value[1])}
