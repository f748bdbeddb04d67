"""Teams: upsert by name, manager and parent validation, cycle-free hierarchy, rename, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from payroster.db.models import CustomVariable, Team, TeamMember, User, utcnow
from payroster.domain import normalize, periods
from payroster.domain.errors import Conflict, Detail, Invalid
from payroster.ids import new_id
from payroster.services import audit, hierarchy, memberships, variables
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, TeamInput
from payroster.services.scoping import get_scoped, insert_ignoring_conflicts, scoped

FLAG_COLUMNS = {
    "managerCanViewResults": "manager_can_view_results",
    "managerCanViewCredits": "manager_can_view_credits",
    "membersCanViewCredits": "members_can_view_credits",
}


def wire_fields(team: Team) -> dict[str, Any]:
    """A team's own fields as the JSON API shows them and its audit events record them, in wire names."""
    return {
        "name": team.name,
        "description": team.description,
        "managerId": str(team.manager_id) if team.manager_id else None,
        "parentTeamId": str(team.parent_team_id) if team.parent_team_id else None,
        **{wire: bool(getattr(team, col)) for wire, col in FLAG_COLUMNS.items()},
    }


def snapshot(team: Team) -> dict[str, Any]:
    """The audited fields, in wire names: the team's own (:func:`wire_fields`) and SCIM's ``externalId``."""
    return {**wire_fields(team), "externalId": team.external_id}


def get(session: Session, workspace_id: uuid.UUID, team_id: uuid.UUID | None, lock: bool = False) -> Team:
    """The team with that id in the workspace, or NotFound."""
    return get_scoped(session, Team, workspace_id, team_id, "team", lock=lock)


def find_by_name(session: Session, workspace_id: uuid.UUID, name: str, lock: bool = False) -> Team | None:
    """The team whose normalised name matches, or None."""
    stmt = scoped(Team, workspace_id).where(Team.name_key == normalize.key(name))
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def upsert(session: Session, actor: Actor, inp: TeamInput) -> tuple[Team, bool]:
    """Create or update the team by name. Returns (team, created)."""
    ws = actor.workspace_id
    team = find_by_name(session, ws, inp.name, lock=True)
    created = False
    if team is None:
        now = utcnow()
        stmt = insert_ignoring_conflicts(session, Team).values(
            workspace_id=ws,
            id=new_id(),
            name=inp.name,
            name_key=normalize.key(inp.name),
            manager_can_view_results=False,
            manager_can_view_credits=False,
            members_can_view_credits=False,
            created_at=now,
            updated_at=now,
        )
        created = session.execute(stmt.returning(Team.id)).first() is not None
        team = find_by_name(session, ws, inp.name, lock=True)
        assert team is not None
    before = snapshot(team)
    _apply(session, actor, team, inp)
    after = snapshot(team)
    changes = (
        [{"field": f, "before": None, "after": v} for f, v in after.items()] if created else (audit.diff(before, after))
    )
    if created or changes:
        team.updated_at = utcnow()
        audit.record(session, actor, "team.created" if created else "team.updated", "team", team.id, changes)
    session.flush()
    return team, created


def patch(session: Session, actor: Actor, team_id: uuid.UUID | None, inp: TeamInput) -> Team:
    """Change a team by id, including its name."""
    team = get(session, actor.workspace_id, team_id, lock=True)
    before = snapshot(team)
    if inp.name is not UNSET and normalize.key(inp.name) != team.name_key:
        if find_by_name(session, actor.workspace_id, inp.name) is not None:
            raise Conflict(f"team name '{inp.name}' is taken", target="name", scim_type="uniqueness")
        team.name_key = normalize.key(inp.name)
    if inp.name is not UNSET:
        team.name = inp.name
    _apply(session, actor, team, inp)
    changes = audit.diff(before, snapshot(team))
    if changes:
        team.updated_at = utcnow()
        audit.record(session, actor, "team.updated", "team", team.id, changes)
    session.flush()
    return team


def deletion_effects(session: Session, workspace_id: uuid.UUID, team_id: uuid.UUID) -> tuple[int, int, int]:
    """What deleting the team would do: memberships and variable entries that go, child teams that move up."""
    counts = []
    for stmt in (
        select(func.count()).where(TeamMember.workspace_id == workspace_id, TeamMember.team_id == team_id),
        select(func.count()).where(CustomVariable.workspace_id == workspace_id, CustomVariable.target_id == team_id),
        select(func.count()).where(Team.workspace_id == workspace_id, Team.parent_team_id == team_id),
    ):
        counts.append(session.scalar(stmt) or 0)
    return counts[0], counts[1], counts[2]


def delete_team(session: Session, actor: Actor, team_id: uuid.UUID | None) -> None:
    """Delete a team: from today its memberships end and its children move up to its parent (its place in
    other teams' timelines ends); its variables go; users stay; its periods before today stay readable."""
    ws = actor.workspace_id
    team = get(session, ws, team_id, lock=True)
    memberships.end_team(session, actor, team.id)
    parents = periods.field(hierarchy.team_timeline(session, ws, team.id), 1)
    events = []
    for child_id in hierarchy.children_from_today(session, ws, team.id):
        if child_id == team.id:
            continue
        child = get(session, ws, child_id, lock=True)
        before = snapshot(child)
        (child.manager_id, child.parent_team_id), change = hierarchy.move_up(session, ws, child.id, team.id, parents)
        if change:
            events += hierarchy.timeline_events(actor, "team", child.id, change)
        changes = audit.diff(before, snapshot(child))
        if changes:
            child.updated_at = utcnow()
            events.append(audit.event_row(actor, "team.updated", "team", child.id, changes))
    session.flush()
    ended = hierarchy.end_team(session, ws, team.id)
    variable_ids = variables.entry_ids(session, ws, team.id)
    session.execute(
        delete(CustomVariable).where(CustomVariable.workspace_id == ws, CustomVariable.target_id == team.id)
    )
    if ended:
        events += hierarchy.timeline_events(actor, "team", team.id, ended)
    gone = [{"field": f, "before": v, "after": None} for f, v in snapshot(team).items()]
    if variable_ids:
        gone.append({"field": "customVariableIds", "before": variable_ids, "after": []})
    events.append(audit.event_row(actor, "team.deleted", "team", team.id, gone))
    session.delete(team)
    session.flush()
    audit.record_many(session, events)


def _apply(session: Session, actor: Actor, team: Team, inp: TeamInput) -> None:
    """Apply the fields of ``inp``; a change of the team's timeline is audited by an event of its own."""
    if inp.description is not UNSET:
        team.description = inp.description
    if inp.manager_id is not UNSET and inp.manager_id is not None:
        _must_exist(session, User, team.workspace_id, inp.manager_id, "managerId", "user")
    if inp.parent_team_id is not UNSET and inp.parent_team_id is not None:
        _must_exist(session, Team, team.workspace_id, inp.parent_team_id, "parentTeamId", "team")
    if inp.manager_id is not UNSET or inp.parent_team_id is not UNSET:
        session.flush()  # a new team's row is written before its timeline
        (team.manager_id, team.parent_team_id), change = hierarchy.set_team(
            session, team.workspace_id, team.id, inp.manager_id, inp.parent_team_id, inp.effective_date
        )
        if change:
            audit.record_many(session, hierarchy.timeline_events(actor, "team", team.id, change))
    for wire, value in inp.flags.items():
        setattr(team, FLAG_COLUMNS[wire], value)
    if inp.external_id is not UNSET:
        team.external_id = inp.external_id


def _must_exist(session: Session, model: Any, ws: uuid.UUID, wanted: uuid.UUID, field: str, what: str) -> None:
    """422 naming ``field`` when ``wanted`` is no ``what`` of the workspace."""
    found = scoped(model, ws).where(model.id == wanted).with_only_columns(model.id)
    if session.scalar(found) is None:
        raise Invalid(
            f"{field} is not a {what} of this workspace",
            target=field,
            details=[Detail("unknownId", f"no such {what}", field)],
        )
