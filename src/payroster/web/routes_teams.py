"""Teams > All Teams, Teams > Hierarchy, and a team's tabs (Overview, Members, Custom, Activity)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from payroster.db.models import Team
from payroster.domain.errors import Detail, DomainError, Invalid
from payroster.ids import parse_id
from payroster.services import memberships, pickers, reads, teamreads, teams, teamtree, users, variables
from payroster.services.inputs import address_list, field_pointer, parse_team
from payroster.web import forms, routes_users, shared
from payroster.web.core import (
    PAGE_SIZE,
    database,
    field,
    form,
    need_admin,
    need_full_admin,
    query_text,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
TABS = ("overview", "members", "custom", "activity")
FLAGS = (
    ("managerCanViewResults", "Manager can view results"),
    ("managerCanViewCredits", "Manager can view credits"),
    ("membersCanViewCredits", "Members can view credits"),
)
MAX_BULK_MEMBERS = 5000


def _page(value: str) -> int:
    return int(value) if value.isdigit() and 0 < int(value) < 1_000_000 else 1


@router.get("/teams")
def teams_page(request: Request, q: str = "", page: str = "1") -> Response:
    """Teams > All Teams: search by name, 50 per page, with manager and member count."""
    who = need_admin(request)
    number = _page(page)
    with database(request).read() as s:
        rows, total = teamreads.page(s, who.workspace_id, q, number, PAGE_SIZE)
        counts = teamreads.member_counts(s, who.workspace_id, [t.id for t in rows])
        people = reads.people_names(s, who.workspace_id, [t.manager_id for t in rows if t.manager_id])
        parents = reads.team_names_of(s, who.workspace_id, [t.parent_team_id for t in rows if t.parent_team_id])
    return render(
        request, "teams.html", rows=rows, total=total, counts=counts, people=people, parents=parents, q=q,
        page=number, pages=max(1, -(-total // PAGE_SIZE)),
    )  # fmt: skip


def _team_input(session: Session, ws: uuid.UUID, data: Any, creating: bool) -> Any:
    raw: dict[str, Any] = {
        "name": field(data, "name").strip(),
        "description": field(data, "description").strip() or None,
    }
    manager = field(data, "manager").strip()
    problems: list[Detail] = []
    if manager:
        found = pickers.person(session, ws, manager)
        if found is None:
            hint = pickers.hint(pickers.suggestions(session, ws, manager))
            problems.append(Detail("notFound", f"no user {manager} in this workspace{hint}", "manager"))
        else:
            raw["managerId"] = str(found.id)
    elif not creating:
        raw["managerId"] = None
    parent = field(data, "parent").strip()
    if parent:
        found_team = teams.find_by_name(session, ws, parent)
        if found_team is None:
            hint = pickers.hint(pickers.teams(session, ws, parent, 3))
            problems.append(Detail("notFound", f"no team named {parent}{hint}", "parent"))
        else:
            raw["parentTeamId"] = str(found_team.id)
    elif not creating:
        raw["parentTeamId"] = None
    for name, _ in FLAGS:
        raw[name] = field(data, name) == "on"
    inp, found_problems = parse_team(raw, field_pointer())
    problems += found_problems
    if problems:
        raise Invalid("please correct the form: " + "; ".join(p.message for p in problems), details=problems)
    return inp


@router.post("/teams")
async def add_team(request: Request) -> Response:
    """Create a team (a taken name is refused here: open that team instead)."""
    who = need_full_admin(request)
    data = await form(request)
    try:
        with database(request).write(who.workspace_id) as s:
            inp = _team_input(s, who.workspace_id, data, creating=True)
            existing = teams.find_by_name(s, who.workspace_id, inp.name)
            if existing is None:
                team, _ = teams.upsert(s, who.actor(), inp)
    except DomainError as exc:
        found = forms.state("add-team", data, exc)
        return redirect(request, "/teams", error=forms.summary(found), form=found)
    if existing is not None:
        problem = Detail("taken", f"a team named {existing.name} exists already", "name")
        found = forms.state("add-team", data, [problem], {"name": (f"/teams/{existing.id}", f"Open {existing.name}")})
        return redirect(request, "/teams", error=forms.summary(found), form=found)
    return redirect(request, f"/teams/{team.id}", notice=f"Team {team.name} was created.")


@dataclass
class Node:
    """A team in the tree, with its children."""

    team: Team
    children: list[Node] = dc_field(default_factory=list)


@router.get("/teams/hierarchy")
def hierarchy(request: Request, asOf: str = "") -> Response:  # noqa: N803 - the API's name for it
    """Teams > Hierarchy: the tree of teams, collapsible (one query; teams are few next to users), each with its
    manager and its member counts, direct and with its sub-teams (one query), today or as of a date: parents,
    managers and members as they stood that day (README.md, "Dates and timelines")."""
    who = need_admin(request)
    day, problem = shared.as_of(asOf)
    ws = who.workspace_id
    with database(request).read() as s:
        rows = teamreads.all_teams(s, ws)
        figures = teamtree.figures(s, ws, day)
        people = teamreads.first_members(s, ws, day)
        parents = {t.id: t.parent_team_id for t in rows}
        if day is not None:
            held = teamreads.parents_on(s, ws, day)
            parents = dict.fromkeys(parents) | {tid: parent for tid, parent in held.items() if tid in parents}
    nodes = {t.id: Node(t) for t in rows}
    roots: list[Node] = []
    children: dict[uuid.UUID, list[Node]] = defaultdict(list)
    for node in nodes.values():
        parent = parents[node.team.id]
        (children[parent] if parent in nodes else roots).append(node)
    for tid, kids in children.items():
        nodes[tid].children = kids
    context: dict[str, Any] = {"roots": roots, "figures": figures, "people": people, "as_of": day}
    if problem:
        context["error"] = problem
    return render(request, "hierarchy.html", **context)


@router.get("/teams/{team_id}")
def team_page(
    request: Request,
    team_id: str,
    tab: str = "overview",
    page: str = "1",
    asOf: str = "",  # noqa: N803 - the API's name for it
) -> Response:
    """A team's tabs; Members lists today's members, or those of a date (``asOf``) with their periods."""
    who = need_admin(request)
    tab = tab if tab in TABS else "overview"
    number = _page(page)
    day, problem = shared.as_of(asOf)
    context: dict[str, Any] = {"tab": tab, "tabs": TABS, "flags": FLAGS, "page": number, "as_of": day}
    if problem and tab == "members":
        context["error"] = problem
    with database(request).read() as s:
        team = teams.get(s, who.workspace_id, parse_id(team_id))
        context["team"] = team
        context["manager"] = users.get(s, who.workspace_id, team.manager_id) if team.manager_id else None
        context["parent"] = teams.get(s, who.workspace_id, team.parent_team_id) if team.parent_team_id else None
        if tab == "members" and day is not None:
            found, context["total"] = teamreads.members_on(s, who.workspace_id, team.id, day, number, PAGE_SIZE)
            context["members"] = [user for user, _, _ in found]
            context["spans"] = [(start, end) for _, start, end in found]
            context["pages"] = max(1, -(-context["total"] // PAGE_SIZE))
        elif tab == "members":
            context["members"], context["total"] = teamreads.members(s, who.workspace_id, team.id, number, PAGE_SIZE)
            context["pages"] = max(1, -(-context["total"] // PAGE_SIZE))
        elif tab == "custom":
            entries = variables.list_entries(s, who.workspace_id, team.id)
            context["bars"] = shared.timeline(entries)
            context["scale"] = shared.timeline_scale(entries)
            context["cells"] = [shared.entry_text(e) for e in entries]
        elif tab == "activity":
            context["events"], context["more"] = shared.events(
                s, shared.events_query(who.workspace_id, target_id=team.id), number
            )
    return render(request, "team.html", **context)


@router.post("/teams/{team_id}")
async def edit_team(request: Request, team_id: str) -> Response:
    """Overview: name, description, manager, parent, visibility flags."""

    def act(s: Session, who: Any, tid: uuid.UUID, data: Any) -> str:
        teams.patch(s, who.actor(), tid, _team_input(s, who.workspace_id, data, creating=False))
        return "Saved."

    return await shared.change(request, "team", team_id, "overview", act, "edit-team")


@router.get("/teams/{team_id}/delete")
def delete_team_page(request: Request, team_id: str) -> Response:
    """What deleting the team does (memberships end, variables go, child teams move up), and the button."""
    who = need_full_admin(request)
    with database(request).read() as s:
        team = teams.get(s, who.workspace_id, parse_id(team_id))
        members, entries, children = teams.deletion_effects(s, who.workspace_id, team.id)
        parent = teams.get(s, who.workspace_id, team.parent_team_id) if team.parent_team_id else None
    up = f"move up to {parent.name}" if parent else "move up to the top level"
    return render(
        request, "confirm.html", title=f"Delete team {team.name}", action=f"/teams/{team.id}/delete",
        button=f"Delete {team.name}", cancel=f"/teams/{team.id}",
        effects=[
            f"{_count(members, 'membership')} {'ends' if members == 1 else 'end'} today "
            f"(earlier periods stay readable) and {_count(entries, 'variable')} go; "
            f"{_count(children, 'child team')} {'moves' if children == 1 else 'move'} up.",
            f"The members stay people of this workspace; the child teams {up}.",
        ],
    )  # fmt: skip


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@router.get("/teams/{team_id}/members/{user_id}/remove")
def remove_member_page(request: Request, team_id: str, user_id: str) -> Response:
    """What removing the member does, and the button that does it (from the team's Members tab)."""
    return routes_users.membership_confirm(
        request, user_id, team_id, f"/teams/{team_id}/members", f"/teams/{team_id}?tab=members"
    )


@router.post("/teams/{team_id}/delete")
async def delete_team(request: Request, team_id: str) -> Response:
    """Delete the team (its members stay users; sub-teams move up)."""

    def act(s: Session, who: Any, tid: uuid.UUID, data: Any) -> tuple[str, str]:
        team = teams.get(s, who.workspace_id, tid)
        teams.delete_team(s, who.actor(), tid)
        return f"Team {team.name} was deleted.", "/teams"

    return await shared.change(request, "team", team_id, "overview", act)


@router.post("/teams/{team_id}/members")
async def members(request: Request, team_id: str) -> Response:
    """Members tab: add by e-mail (one, or many pasted as Outlook copies them: semicolons, commas, spaces or new
    lines; the valid ones are added and the rest listed with why), or remove one."""

    def act(s: Session, who: Any, tid: uuid.UUID, data: Any) -> str | shared.Partly:
        if field(data, "remove"):
            uid = parse_id(field(data, "remove"))
            user = users.get(s, who.workspace_id, uid)
            memberships.remove(s, who.actor(), user.id, tid)
            return f"{user.email} was removed."
        emails = address_list(field(data, "emails"))
        if not emails:
            raise Invalid("enter at least one e-mail address", target="emails")
        if len(emails) > MAX_BULK_MEMBERS:
            raise Invalid(f"add at most {MAX_BULK_MEMBERS} members at once", target="emails")
        done = memberships.add_by_emails(s, who.actor(), tid, emails)
        notice = f"{done.added} added, {done.already} already {'a member' if done.already == 1 else 'members'}."
        if not done.refused:
            return notice
        # The addresses not added stay in the box, each with why, for the admin to correct or drop.
        shown = "; ".join(f"{a}: {why}" for a, why in done.refused[:20])
        more = f" and {len(done.refused) - 20} more" if len(done.refused) > 20 else ""
        why = Detail("notAdded", f"{len(done.refused)} not added: {shown}{more}", "emails")
        kept = {"emails": "\n".join(a for a, _ in done.refused)}
        return shared.Partly(f"{notice} {len(done.refused)} not added (listed below).", "add-members", kept, [why])

    return await shared.change(request, "team", team_id, "members", act, "add-members")


@router.post("/teams/{team_id}/custom")
async def team_custom(request: Request, team_id: str) -> Response:
    """Custom tab: add or remove an effective-dated entry."""
    return await shared.change(request, "team", team_id, "custom", shared.custom_action, shared.custom_form)
