"""JSON API: teams, team members and custom variables."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from payroster.api import schemas
from payroster.api.body import json_body, loads, query_text
from payroster.api.deps import actor, database, principal, schema_ref
from payroster.api.errors import ERRORS, check, exact_json
from payroster.api.render import team_body
from payroster.api.routes_timelines import AS_OF, as_of, dated_team
from payroster.db.engine import Database
from payroster.domain.effective import parse_instant
from payroster.domain.errors import BadRequest, Detail, Invalid, NotFound
from payroster.domain.periods import Period
from payroster.ids import parse_id
from payroster.services import memberships, teams, variables
from payroster.services.context import Actor
from payroster.services.inputs import (
    PERIOD_FIELDS,
    MemberInput,
    field_pointer,
    parse_date,
    parse_membership,
    parse_team,
)

router = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS)
compat = APIRouter(dependencies=[Depends(principal), Depends(query_text)], responses=ERRORS, include_in_schema=False)


@router.post(
    "/api/v1/teams",
    operation_id="upsertTeam",
    tags=["teams"],
    status_code=201,
    response_model=schemas.TeamOut,
    responses={200: {"model": schemas.TeamOut, "description": "updated"}},
    openapi_extra=schema_ref("TeamUpsert"),
)
@compat.post("/app/Api/SetTeam")
def upsert_team(
    body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Create (201) or update (200) a team by name."""
    inp = check(parse_team(body, field_pointer()), "invalid team")
    with db.write(who.workspace_id) as s:
        team, created = teams.upsert(s, who, inp)
        return JSONResponse(team_body(team), status_code=201 if created else 200)


@router.get("/api/v1/teams", operation_id="findTeam", tags=["teams"], response_model=schemas.TeamOut)
def find_team(name: str = Query(...), db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """The team with that name."""
    with db.read() as s:
        team = teams.find_by_name(s, who.workspace_id, name)
        if team is None:
            raise NotFound("team not found", target="name")
        return JSONResponse(team_body(team))


@router.get("/api/v1/teams/{team_id}", operation_id="getTeam", tags=["teams"], response_model=schemas.TeamOut)
def get_team(
    team_id: str,
    asOf: str | None = AS_OF,
    db: Database = Depends(database),
    who: Actor = Depends(actor),  # noqa: N803
) -> JSONResponse:
    """One team by id; with ``asOf``, its manager and parent on that date."""
    day = as_of(asOf)
    with db.read() as s:
        team = teams.get(s, who.workspace_id, parse_id(team_id))
        body = team_body(team)
        if day is not None:
            body.update(dated_team(s, who.workspace_id, team.id, day))
        return JSONResponse(body)


@router.patch(
    "/api/v1/teams/{team_id}",
    operation_id="patchTeam",
    tags=["teams"],
    response_model=schemas.TeamOut,
    openapi_extra=schema_ref("TeamPatch"),
)
def patch_team(
    team_id: str, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Change a team, rename included."""
    tid = parse_id(team_id)
    if tid is None:
        raise NotFound("team not found", target="team")
    inp = check(parse_team(body, field_pointer(), require_name=False), "invalid team")
    with db.write(who.workspace_id) as s:
        return JSONResponse(team_body(teams.patch(s, who, tid, inp)))


@router.delete(
    "/api/v1/teams/{team_id}", operation_id="deleteTeam", tags=["teams"], status_code=204, response_class=Response
)
def delete_team(team_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> Response:
    """Delete a team: children move up, memberships and variables go, users stay."""
    with db.write(who.workspace_id) as s:
        teams.delete_team(s, who, parse_id(team_id))
    return Response(status_code=204)


def _membership(body: Any, dates: tuple[str, ...]) -> MemberInput:
    found, problems = parse_membership(body, field_pointer(), dates)
    if problems or found is None:
        raise Invalid("invalid team member", details=problems)
    return found


@router.post(
    "/api/v1/team-members",
    operation_id="addTeamMember",
    tags=["team members"],
    status_code=201,
    response_model=schemas.MemberCreated,
    responses={200: {"model": schemas.MemberCreated, "description": "already a member on validFrom"}},
    openapi_extra=schema_ref("MemberIn"),
)
@compat.post("/app/Api/CreateTeamMember")
def add_member(
    body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """Add a user to a team from ``validFrom`` (today) to ``validTo`` (open); periods it overlaps or touches
    merge. A membership already in force on ``validFrom`` is no error (200, ``created: false``)."""
    m = _membership(body, PERIOD_FIELDS)
    with db.write(who.workspace_id) as s:
        done = memberships.add(s, who, m.user_id, m.team_id, m.valid_from, m.valid_to)
    assert done.period is not None
    answer = {"systemUserId": str(m.user_id), "teamId": str(m.team_id), "created": done.done,
              "periodId": str(done.period.id), **done.period.wire()}  # fmt: skip
    return JSONResponse(answer, status_code=201 if done.done else 200)


@router.post(
    "/api/v1/team-members:delete",
    operation_id="removeTeamMember",
    tags=["team members"],
    response_model=schemas.MemberDeleted,
    openapi_extra=schema_ref("MemberEnd"),
)
@compat.post("/app/Api/DeleteTeamMember")
def remove_member(
    body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> JSONResponse:
    """End a membership on ``validTo`` (today): a past date truncates, a future one schedules the end; the
    history before stays. A membership not in force that day is no error (``deleted: false``)."""
    m = _membership(body, ("validTo",))
    return _remove(db, who, m.user_id, m.team_id, m.valid_to)


@router.delete(
    "/api/v1/teams/{team_id}/members/{user_id}",
    operation_id="removeTeamMemberByPath",
    tags=["team members"],
    response_model=schemas.MemberDeleted,
)
def remove_member_by_path(
    team_id: str,
    user_id: str,
    validTo: str | None = Query(None, description="the end date YYYY-MM-DD (default today)"),  # noqa: N803
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> JSONResponse:
    """End a membership by path ids, on ``validTo`` (today)."""
    tid, uid = parse_id(team_id), parse_id(user_id)
    if tid is None or uid is None:
        raise NotFound("team or user not found", target="team" if tid is None else "user")
    problems: list[Detail] = []
    day = parse_date(validTo, "validTo", field_pointer(), problems)
    if problems:
        raise Invalid("invalid team member", details=problems)
    return _remove(db, who, uid, tid, day)


def _remove(db: Database, who: Actor, user_id: Any, team_id: Any, day: Any) -> JSONResponse:
    with db.write(who.workspace_id) as s:
        deleted = memberships.end(s, who, user_id, team_id, day)
    return JSONResponse({"systemUserId": str(user_id), "teamId": str(team_id), "deleted": deleted})


@router.delete(
    "/api/v1/team-members/{period_id}",
    operation_id="eraseTeamMemberPeriod",
    tags=["team members"],
    response_model=schemas.PeriodErased,
)
def erase_period(period_id: str, db: Database = Depends(database), who: Actor = Depends(actor)) -> JSONResponse:
    """Erase one membership period entered by mistake (audited); the other periods stay."""
    with db.write(who.workspace_id) as s:
        row = memberships.erase(s, who, parse_id(period_id))
        answer = {"periodId": str(row.id), "systemUserId": str(row.user_id), "teamId": str(row.team_id),
                  **Period(row.valid_from, row.valid_to).wire(), "deleted": True}  # fmt: skip
    return JSONResponse(answer)


def _at(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise Invalid("at must be a date or datetime", details=[Detail("invalidDate", "bad date", "at")]) from None


@router.get(
    "/api/v1/custom-variables/{target_id}",
    operation_id="getCustomVariables",
    tags=["custom variables"],
    response_model=list[schemas.VariableEntry],
)
def get_variables(
    target_id: str,
    at: str | None = Query(None, description="only entries in force then"),
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> Response:
    """The entries of a user or team, optionally only those in force at a date."""
    with db.read() as s:
        entries = variables.list_entries(s, who.workspace_id, parse_id(target_id), _at(at))
    return exact_json([e.wire() for e in entries])


@router.put(
    "/api/v1/custom-variables/{target_id}",
    operation_id="setCustomVariables",
    tags=["custom variables"],
    response_model=list[schemas.VariableEntry],
    openapi_extra=schema_ref("VariableEntry", array=True),
)
@router.post(
    "/api/v1/custom-variables/{target_id}",
    operation_id="setCustomVariablesByPost",
    tags=["custom variables"],
    response_model=list[schemas.VariableEntry],
    openapi_extra=schema_ref("VariableEntry", array=True),
)
def set_variables(
    target_id: str, body: Any = Depends(json_body), db: Database = Depends(database), who: Actor = Depends(actor)
) -> Response:
    """Replace every entry of a user or team in one transaction."""
    tid = parse_id(target_id)
    if tid is None:
        raise NotFound("user or team not found", target="id")
    return _replace(db, who, tid, body)


def _replace(db: Database, who: Actor, target_id: Any, body: Any) -> Response:
    if isinstance(body, str):  # the commercial product's samples send the array as a JSON string
        try:
            body = loads(body)
        except BadRequest:
            raise BadRequest("the string body is not a JSON array") from None
    entries = variables.parse_entries(body)
    with db.write(who.workspace_id) as s:
        stored = variables.replace(s, who, target_id, entries)
    return exact_json([e.wire() for e in stored])


@compat.get("/app/Api/GetCustomProperties")
def compat_get_variables(
    id: str = Query(...),
    db: Database = Depends(database),  # noqa: A002
    who: Actor = Depends(actor),
) -> Response:
    """Drop-in path of ``GET /api/v1/custom-variables/{id}``."""
    with db.read() as s:
        entries = variables.list_entries(s, who.workspace_id, parse_id(id))
    return exact_json([e.wire() for e in entries])


@compat.post("/app/Api/SetCustomProperties")
def compat_set_variables(
    id: str = Query(...),
    body: Any = Depends(json_body),  # noqa: A002
    db: Database = Depends(database),
    who: Actor = Depends(actor),
) -> Response:
    """Drop-in path of ``PUT /api/v1/custom-variables/{id}``."""
    tid = parse_id(id)
    if tid is None:
        raise NotFound("user or team not found", target="id")
    return _replace(db, who, tid, body)
