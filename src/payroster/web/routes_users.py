"""Users > All Users, Add user, Bulk add (preview, fix, apply), and a user's tabs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from payroster import clock
from payroster.db.models import User
from payroster.domain import normalize
from payroster.domain.errors import Detail, Forbidden, Invalid, NotFound
from payroster.ids import parse_id
from payroster.services import (
    accounts,
    bulk,
    csvimport,
    hierarchy,
    imports,
    listings,
    memberships,
    pickers,
    reads,
    teams,
    userreads,
    users,
    variables,
)
from payroster.services.inputs import UserInput, field_pointer, parse_user
from payroster.urls import public_base
from payroster.web import forms, mail, shared
from payroster.web.core import (
    PAGE_SIZE,
    database,
    field,
    form,
    need_admin,
    need_full_admin,
    need_user,
    query_text,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(query_text)])
STATUSES = listings.STATUSES
# The manager by e-mail (as the users export writes it) or by id, not both.
BULK_FIELDS = (
    "emailAddress", "firstName", "lastName", "role", "directManagerEmail", "directManagerId", "tags", "aliases",
)  # fmt: skip
# How the column-matching step and the template name the fields.
FIELD_TITLES = {
    "emailAddress": "Email", "firstName": "First name", "lastName": "Last name", "role": "Role",
    "directManagerEmail": "Manager e-mail", "directManagerId": "Manager ID", "tags": "Tags", "aliases": "Aliases",
}  # fmt: skip


def _page(value: str) -> int:
    return int(value) if value.isdigit() and 0 < int(value) < 1_000_000 else 1


@router.get("/users")
def users_page(
    request: Request,
    q: str = "",
    status: str = "active",
    role: str = "",
    page: str = "1",
    sort: str = "name",
    dir: str = "asc",  # noqa: A002
) -> Response:
    """Users > All Users: search, filter, 50 per page sorted by name (last, first), e-mail or role."""
    who = need_admin(request)
    status = status if status in STATUSES else "active"
    sort = sort if sort in userreads.SORTS else "name"
    direction = "desc" if dir == "desc" else "asc"
    pages = 1
    with database(request).read() as s:
        rows, total, tags, aliases = userreads.search(
            s, who.workspace_id, q, status, role, _page(page), PAGE_SIZE, sort, direction
        )
        pages = max(1, -(-total // PAGE_SIZE))
        number = _page(page)
        if number > pages:  # a jump past the end lands on the last page
            number = pages
            rows, total, tags, aliases = userreads.search(
                s, who.workspace_id, q, status, role, number, PAGE_SIZE, sort, direction
            )
    return render(
        request, "users.html", rows=rows, total=total, tags=tags, aliases=aliases, q=q, status_filter=status, role=role,
        page=number, pages=pages, roles=normalize.ROLES, statuses=STATUSES, sort=sort, direction=direction,
    )  # fmt: skip


@router.post("/users")
async def add_user(request: Request) -> Response:
    """Add one user (an existing e-mail is refused here: open that user instead)."""
    who = need_full_admin(request)
    data = await form(request)
    raw: dict[str, Any] = {
        k: field(data, k).strip() for k in ("emailAddress", "firstName", "lastName", "role") if field(data, k).strip()
    }
    for name in ("tags", "aliases"):
        items = [t.strip() for t in field(data, name).split(",") if t.strip()]
        if items:
            raw[name] = items
    raw.setdefault("role", "Participant")
    inp, problems = parse_user(raw, field_pointer())
    if problems:
        return _refused(request, "/users", forms.state("add-user", data, problems))
    with database(request).write(who.workspace_id) as s:
        existing = users.find_by_email(s, who.workspace_id, inp.email)
        if existing is None:
            view, _ = users.upsert(s, who.actor(), inp)
    if existing is not None:
        problem = Detail("taken", "this e-mail address belongs to a person of this workspace already", "emailAddress")
        link = (f"/users/{existing.id}", f"Open {display_name(existing)}")
        return _refused(request, "/users", forms.state("add-user", data, [problem], {"emailAddress": link}))
    return redirect(request, f"/users/{view.user.id}", notice=f"{view.user.email} was added.")


def _refused(request: Request, url: str, found: dict[str, Any]) -> Response:
    """Back to the form's page, which shows it again with its values and the messages beside its fields."""
    return redirect(request, url, error=forms.summary(found), form=found)


def display_name(user: User) -> str:
    """How pages name a person: first and last name, or the e-mail when there is no name."""
    return reads.person_name(user.first_name, user.last_name, user.email)


# -- bulk add -------------------------------------------------------------------------------------------------


@router.get("/users/bulk")
def bulk_page(request: Request) -> Response:
    """Paste rows or upload a CSV."""
    need_full_admin(request)
    return render(request, "bulk.html", fields=BULK_FIELDS, synonyms=_synonyms())


def _synonyms() -> dict[str, list[str]]:
    """Each field's ordinary titles as the Bulk add page lists them."""
    found: dict[str, list[str]] = defaultdict(list)
    for title, name in csvimport.SYNONYMS.items():
        found[name].append(title)
    return found


TEMPLATE_ROWS = (
    ("Email", "First name", "Last name", "Role", "Tags", "Aliases", "Manager ID"),
    ("ana.silva@example.com", "Ana", "Silva", "Participant", "West|Hunters", "ana@example.org", ""),
)


@router.get("/users/bulk/template.csv")
def bulk_template(request: Request) -> Response:
    """A CSV file with the columns Bulk add reads and one example row, to fill in a spreadsheet."""
    need_full_admin(request)
    out = io.StringIO()
    csv.writer(out).writerows(TEMPLATE_ROWS)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="payroster-users-template.csv"'},
    )


def _check_rows(session: Session, who: Any, rows: list[dict[str, Any]]) -> tuple[dict[int, list[Detail]], Any]:
    """Every row's problems by index (parse rules first, then the rules across rows and the database),
    and what applying would do when there are none."""
    found: dict[int, list[Detail]] = defaultdict(list)
    inputs, managers, kept = [], [], []
    for i, raw in enumerate(rows):
        inp, manager, problems = imports.parse_user_row(raw, field_pointer(f"/{i}"))
        if problems:
            found[i] += problems
        else:
            inputs.append(inp)
            managers.append(manager)
            kept.append(i)
    result = None
    try:
        result = bulk.check(session, who.actor(), inputs, managers)
    except Invalid as exc:
        for d in exc.details:
            parts = (d.target or "").split("/")
            index = kept[int(parts[1])] if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(kept) else 0
            found[index].append(d)
    return dict(found), (None if found else result)


def _rows_from(data: Any) -> tuple[list[int], list[dict[str, Any]]]:
    """The preview's rows (JSON in a hidden field) with the cells edited in the preview applied."""
    try:
        numbered = json.loads(field(data, "rows"))
        lines = [int(n) for n, _ in numbered]
        rows = [{str(k): v for k, v in row.items()} for _, row in numbered]
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise Invalid("the preview is damaged: upload the file again") from None
    for key in data:
        if key.startswith("cell:"):
            _, index, name = key.split(":", 2)
            if index.isdigit() and int(index) < len(rows) and name in BULK_FIELDS:
                value = field(data, key).strip()
                row = rows[int(index)]
                if value:
                    row[name] = value
                else:
                    row.pop(name, None)
    _match_columns(data, rows)
    return lines, rows


def _match_columns(data: Any, rows: list[dict[str, Any]]) -> None:
    """The column-matching step's answers (``map:<column>`` = a field, or empty to ignore it) applied to the rows:
    each matched column's cells move to its field, the ignored ones are dropped."""
    chosen = {key[4:]: field(data, key) for key in data if key.startswith("map:")}
    for row in rows:
        for column, name in chosen.items():
            if column in row and column not in BULK_FIELDS:
                value = row.pop(column)
                if name in BULK_FIELDS and name not in row:
                    row[name] = value


def _unmatched(rows: list[dict[str, Any]]) -> list[str]:
    """The columns no field is known by, in the order the file gives them."""
    return list(dict.fromkeys(k for r in rows for k in r if k not in BULK_FIELDS))


def _matching(request: Request, lines: list[int], rows: list[dict[str, Any]], error: str = "") -> Response:
    """The column-matching step: each unknown column with a few of its values, and a field (or "ignore") to pick."""
    unknown = _unmatched(rows)
    present = [f for f in BULK_FIELDS if any(f in r for r in rows)]
    samples = {c: [r[c] for r in rows if c in r][:3] for c in unknown}
    return render(
        request, "bulk_match.html", 422 if error else 200, unknown=unknown, samples=samples, error=error,
        choices=[(f, FIELD_TITLES[f]) for f in BULK_FIELDS if f not in present], present=present, titles=FIELD_TITLES,
        payload=json.dumps([[n, r] for n, r in zip(lines, rows, strict=True)], ensure_ascii=False),
    )  # fmt: skip


def _preview(
    request: Request, who: Any, lines: list[int], rows: list[dict[str, Any]], status: int = 200, **extra: Any
) -> Response:
    with database(request).read() as s:
        problems, result = _check_rows(s, who, rows)
    # The e-mail column is always shown: it is the one a row cannot do without, so the fix-up grid must offer it.
    columns = [f for f in BULK_FIELDS if f == "emailAddress" or any(f in r for r in rows)]
    extras = sorted({k for r in rows for k in r if k not in BULK_FIELDS})
    return render(
        request, "bulk_preview.html", status, rows=rows, lines=lines,
        problems=problems, result=result, columns=columns, extras=extras, fields=BULK_FIELDS,
        bad_cells={i: {(d.target or "").rstrip("/").split("/")[-1] for d in found} for i, found in problems.items()},
        payload=json.dumps([[n, r] for n, r in zip(lines, rows, strict=True)], ensure_ascii=False), **extra,
    )  # fmt: skip


@router.post("/users/bulk")
async def bulk_preview(request: Request) -> Response:
    """Read the pasted or uploaded rows (or the preview with its edits) and show what would happen."""
    who = need_full_admin(request)
    data = await form(request, request.app.state.settings.max_bulk_bytes)
    if field(data, "rows"):
        lines, rows = _rows_from(data)
        picked = [field(data, k) for k in data if k.startswith("map:") and field(data, k)]
        twice = sorted({FIELD_TITLES.get(p, p) for p in picked if picked.count(p) > 1})
        if twice:
            return _matching(request, *_rows_from_unmatched(data), error=f"{', '.join(twice)}: pick each field once.")
    else:
        upload = data.get("file")
        text = field(data, "text")
        if isinstance(upload, UploadFile) and upload.filename:
            text = csvimport.decode(await upload.read())
        if not text.strip():
            return redirect(request, "/users/bulk", error="Paste rows or choose a CSV file first.")
        try:
            numbered = csvimport.parse_numbered(text)
        except Invalid as exc:
            return redirect(request, "/users/bulk", error=exc.message)
        if len(numbered) > request.app.state.settings.max_bulk_rows:
            return redirect(request, "/users/bulk", error=f"at most {request.app.state.settings.max_bulk_rows} rows")
        lines, rows = [n for n, _ in numbered], [_split_lists(r) for _, r in numbered]
    if _unmatched(rows):  # a title no field is known by: match the columns first
        return _matching(request, lines, rows)
    return _preview(request, who, lines, rows)


def _rows_from_unmatched(data: Any) -> tuple[list[int], list[dict[str, Any]]]:
    """The rows of the column-matching step as they came, before its answers are applied."""
    numbered = json.loads(field(data, "rows"))
    return [int(n) for n, _ in numbered], [{str(k): v for k, v in row.items()} for _, row in numbered]


def _split_lists(row: dict[str, Any]) -> dict[str, Any]:
    """Cells as the CSV gives them; tags and aliases are pipe-separated."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = next((f for f in BULK_FIELDS if f.casefold() == key.casefold()), key)
        out[name] = value
    return out


def _inputs(rows: list[dict[str, Any]]) -> tuple[list[UserInput], list[str | None]]:
    """Every row parsed (tags and aliases as pipe-separated text, as in the CSV) with its manager's e-mail when it
    names one; ``Invalid`` with every problem."""
    inputs, managers, problems = [], [], []
    for i, raw in enumerate(rows):
        inp, manager, found = imports.parse_user_row(raw, field_pointer(f"/{i}"))
        inputs.append(inp)
        managers.append(manager)
        problems += found
    if problems:
        raise Invalid("invalid rows; nothing was written", details=problems)
    return inputs, managers


@router.post("/users/bulk/apply")
async def bulk_apply(request: Request) -> Response:
    """Apply every row in one transaction through the bulk service, only when every row is valid."""
    who = need_full_admin(request)
    data = await form(request, request.app.state.settings.max_bulk_bytes)
    lines, rows = _rows_from(data)
    wants_json = request.headers.get("x-payroster-progress") == "1"

    def apply() -> bulk.BulkResult:
        with bulk.collector_paused():
            inputs, managers = _inputs(rows)
            return bulk.run(database(request), who.actor(), inputs, managers)

    try:
        result = await run_in_threadpool(apply)  # seconds for a large file: off the event loop
    except Invalid:
        if wants_json:
            return JSONResponse({"ok": False}, status_code=422)
        return _preview(request, who, lines, rows, 422, refused=True)
    notice = (
        f"Applied {len(rows)} rows: {result.created} created, {result.updated} updated, {result.unchanged} unchanged."
    )
    response: Response = redirect(request, "/users", notice=notice)
    if wants_json:
        cookie = response.headers.get("set-cookie")
        response = JSONResponse({"ok": True, "location": "/users"})
        if cookie:
            response.headers["set-cookie"] = cookie
    return response


@router.get("/users/invitations")
def invitations_page(request: Request) -> Response:
    """The invitation and password-reset links not yet used, with their expiry."""
    who = need_full_admin(request)
    with database(request).read() as s:
        pending = accounts.pending_links(s, who.workspace_id)
    return render(request, "invitations.html", pending=pending, shown=accounts.PENDING_SHOWN)


# -- one user -------------------------------------------------------------------------------------------------

TABS = ("overview", "teams", "custom", "activity")


def _visible_user(request: Request, user_id: str) -> tuple[Any, uuid.UUID]:
    """The signed-in user and the id, when they may see that user (admins: anyone; others: themselves)."""
    who = need_user(request)
    uid = parse_id(user_id)
    if uid is None:
        raise NotFound("user not found", target="user")
    if not who.is_admin and uid != who.user_id:
        raise Forbidden("you can only see your own profile")
    return who, uid


@router.get("/users/{user_id}")
def user_page(request: Request, user_id: str, tab: str = "overview", page: str = "1") -> Response:
    """A user's tabs: Overview, Teams (``from``: the team the Move form starts from), Custom, Activity."""
    who, uid = _visible_user(request, user_id)
    tab = tab if tab in TABS else "overview"
    context: dict[str, Any] = {"tab": tab, "tabs": TABS, "move_from": request.query_params.get("from", "")}
    with database(request).read() as s:
        view = users.view(s, users.get(s, who.workspace_id, uid))
        context["view"] = view
        if view.user.direct_manager_id:
            context["manager"] = users.get(s, who.workspace_id, view.user.direct_manager_id)
        today = context["today"] = clock.today()
        if tab == "overview":
            managers = hierarchy.manager_timeline(s, who.workspace_id, uid)
            names = reads.emails(s, who.workspace_id, [p.value for p in managers if p.value])
            context["managers"] = shared.spans(
                [(p.start, p.end, (p.value, names.get(p.value))) for p in managers], today
            )
        if tab == "teams":
            held = memberships.of_user(s, who.workspace_id, uid)
            found = reads.team_names_of(s, who.workspace_id, [p.team_id for p in held])
            dated = [(p.valid_from, p.valid_to, (p.team_id, found.get(p.team_id))) for p in held]
            context["periods"] = shared.spans(dated, today)
            context["scale"] = shared.span_scale(dated, today)
            # The Move form leaves a team the person is in today or is scheduled to join.
            context["movable"] = list(
                dict.fromkeys(p.item for p in context["periods"] if p.state != "past" and p.item[1])
            )
            context["team_names"] = reads.team_names(s, who.workspace_id, 1000)
        elif tab == "custom":
            entries = variables.list_entries(s, who.workspace_id, uid)
            context["bars"] = shared.timeline(entries)
            context["scale"] = shared.timeline_scale(entries)
            context["cells"] = [shared.entry_text(e) for e in entries]
        elif tab == "activity":
            context["events"], context["more"] = shared.events(
                s, shared.events_query(who.workspace_id, target_id=uid), _page(page)
            )
            context["page"] = _page(page)
    return render(request, "user.html", roles=normalize.ROLES, **context)


def _back(user_id: uuid.UUID, tab: str = "overview") -> str:
    return f"/users/{user_id}" + ("" if tab == "overview" else f"?tab={tab}")


@router.post("/users/{user_id}")
async def edit_user(request: Request, user_id: str) -> Response:
    """Overview: e-mail, names, role (Deactivated included), direct manager by e-mail."""

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        raw: dict[str, Any] = {
            "emailAddress": field(data, "emailAddress").strip(),
            "firstName": field(data, "firstName").strip() or None,
            "lastName": field(data, "lastName").strip() or None,
            "role": field(data, "role"),
        }
        manager = field(data, "manager").strip()
        if manager:
            found = pickers.person(s, who.workspace_id, manager)
            if found is None:
                hint = pickers.hint(pickers.suggestions(s, who.workspace_id, manager))
                why = f"no person {manager} in this workspace{hint}"
                raise Invalid(why, details=[Detail("notFound", why, "manager")])
            raw["directManagerId"] = str(found.id)
        else:
            raw["directManagerId"] = None
        inp, problems = parse_user(raw, field_pointer(), require_email=False)
        if problems:
            raise Invalid("please correct the form", details=problems)
        if inp.role != normalize.DEACTIVATED:  # a role change leaves a deactivated user deactivated
            inp.active = users.get(s, who.workspace_id, uid).active
        users.patch(s, who.actor(), uid, inp)
        return "Saved."

    return await shared.change(request, "user", user_id, "overview", act, "edit-user")


@router.get("/users/{user_id}/deactivate")
def deactivate_page(request: Request, user_id: str) -> Response:
    """What deactivating a person does, and the button that does it."""
    who = need_full_admin(request)
    with database(request).read() as s:
        user = users.get(s, who.workspace_id, parse_id(user_id))
        teams_count = userreads.membership_count(s, who.workspace_id, user.id)
        sessions = accounts.open_sessions(s, user)
    name = display_name(user)
    return render(
        request, "confirm.html", title=f"Deactivate {name}", action=f"/users/{user.id}/deactivate",
        button=f"Deactivate {name}", cancel=f"/users/{user.id}",
        effects=[
            f"{name} ({user.email}) can no longer log in; {_count(sessions, 'open session')} end now.",
            f"Their {_count(teams_count or 0, 'team membership')}, tags, aliases and variables are kept.",
            "Reactivate them at any time from their page.",
        ],
    )  # fmt: skip


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@router.post("/users/{user_id}/deactivate")
async def deactivate(request: Request, user_id: str) -> Response:
    """Deactivate the person (refused for the last active full admin)."""

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        inp, _ = parse_user({"role": normalize.DEACTIVATED}, field_pointer(), require_email=False)
        view = users.patch(s, who.actor(), uid, inp)
        return f"{display_name(view.user)} was deactivated."

    return await shared.change(request, "user", user_id, "overview", act, "user-state")


@router.post("/users/{user_id}/reactivate")
async def reactivate(request: Request, user_id: str) -> Response:
    """Reactivate the person with the role they had."""

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        inp, _ = parse_user({}, field_pointer(), require_email=False)
        inp.active = True
        view = users.patch(s, who.actor(), uid, inp)
        return f"{display_name(view.user)} was reactivated."

    return await shared.change(request, "user", user_id, "overview", act, "user-state")


@router.post("/users/{user_id}/{kind}/add")
async def add_items(request: Request, user_id: str, kind: str) -> Response:
    """Add tags or aliases (comma-separated); those already present are kept once."""
    if kind not in ("tags", "aliases"):
        raise NotFound("no such page")

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        items = [t.strip() for t in field(data, "value").split(",") if t.strip()]
        user = users.get(s, who.workspace_id, uid)
        inp, problems = parse_user({"emailAddress": user.email, kind: items}, field_pointer())
        if problems:
            raise Invalid("please correct the value", details=problems)
        users.upsert(s, who.actor(), inp)
        return f"{len(items)} {kind} added." if len(items) != 1 else f"{kind[:-1].replace('aliase', 'alias')} added."

    return await shared.change(request, "user", user_id, "overview", act, f"add-{kind}")


@router.post("/users/{user_id}/{kind}/remove")
async def remove_item(request: Request, user_id: str, kind: str) -> Response:
    """Remove one tag or alias."""
    if kind not in ("tags", "aliases"):
        raise NotFound("no such page")

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        users.remove_item(s, who.actor(), uid, kind, field(data, "value"))
        return f"Removed {field(data, 'value')}."

    return await shared.change(request, "user", user_id, "overview", act)


@router.post("/users/{user_id}/teams")
async def user_teams(request: Request, user_id: str) -> Response:
    """Teams tab: add the user to a team by name from a date (today) to a date (open), end a membership on a
    date (today), or remove them from a team today (README.md, "Dates and timelines")."""

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        problems: list[Detail] = []
        if field(data, "remove") or field(data, "end"):
            team = teams.get(s, who.workspace_id, parse_id(field(data, "remove") or field(data, "end")))
            day = shared.date_field(data, "validTo", problems, clock.today())
            if problems or day is None:
                raise Invalid("please correct the date", details=problems)
            if not memberships.end(s, who.actor(), uid, team.id, day):
                return f"No membership of {team.name} was in force on {day}; later ones end then."
            return (
                f"Removed from {team.name}." if field(data, "remove") else f"Membership of {team.name} ends on {day}."
            )
        found = teams.find_by_name(s, who.workspace_id, field(data, "team"))
        if found is None:
            problems.append(Detail("notFound", "unknown team", "team"))
        start = shared.date_field(data, "validFrom", problems, clock.today())
        end = shared.date_field(data, "validTo", problems)
        if found is None or problems or start is None:
            name = field(data, "team")
            raise Invalid(f"no team named {name!r}" if found is None else "please correct the dates", details=problems)
        outcome = memberships.add(s, who.actor(), uid, found.id, start, end)
        if not outcome.done:
            return f"Already on {found.name} on {start}; the period now runs {_span_text(outcome.period)}."
        return f"Added to {found.name} {_span_text(outcome.period)}."

    return await shared.change(request, "user", user_id, "teams", act, "add-team")


@router.post("/users/{user_id}/teams/move")
async def move_team(request: Request, user_id: str) -> Response:
    """Teams tab: move the person from one team to another from a date: the old membership's last day is the day
    before, the new one starts that day; both in one transaction, each audited."""

    def act(s: Session, who: Any, uid: uuid.UUID, data: Any) -> str:
        problems: list[Detail] = []
        try:
            leaving: Any = teams.get(s, who.workspace_id, parse_id(field(data, "from")))
        except NotFound:
            leaving = None
        if leaving is None:
            problems.append(Detail("notFound", "choose the team they leave", "from"))
        name = field(data, "team").strip()
        joining = teams.find_by_name(s, who.workspace_id, name) if name else None
        if joining is None:
            hint = pickers.hint(pickers.teams(s, who.workspace_id, name, 3)) if name else ""
            why = f"no team named {name}{hint}" if name else "choose the team they join"
            problems.append(Detail("notFound", why, "team"))
        start = shared.date_field(data, "validFrom", problems, clock.today())
        if leaving is None or joining is None or problems or start is None:
            raise Invalid("please correct the form", details=problems)
        memberships.move(s, who.actor(), uid, leaving.id, joining.id, start)
        last = start - dt.timedelta(days=1)
        return f"Moved from {leaving.name} (last day {last}) to {joining.name} from {start}."

    return await shared.change(request, "user", user_id, "teams", act, "move-team")


@router.get("/users/{user_id}/teams/{team_id}/remove")
def leave_team_page(request: Request, user_id: str, team_id: str) -> Response:
    """What removing the person from the team does, and the button that does it (from the user's Teams tab)."""
    return membership_confirm(request, user_id, team_id, f"/users/{user_id}/teams", f"/users/{user_id}?tab=teams")


def membership_confirm(request: Request, user_id: str, team_id: str, action: str, cancel: str) -> Response:
    """The confirmation page of removing one person from one team."""
    who = need_full_admin(request)
    with database(request).read() as s:
        user = users.get(s, who.workspace_id, parse_id(user_id))
        team = teams.get(s, who.workspace_id, parse_id(team_id))
    name = display_name(user)
    return render(
        request, "confirm.html", title=f"Remove {name} from {team.name}", action=action, button="Remove from team",
        hidden={"remove": str(team.id) if action.startswith("/users/") else str(user.id)}, cancel=cancel,
        effects=[
            f"{name} ({user.email}) leaves {team.name}.",
            f"{name} stays a person of this workspace, in their other teams; {team.name} keeps its other members.",
        ],
    )  # fmt: skip


def _span_text(period: Any) -> str:
    if period is None:
        return ""
    return f"from {period.start}" + (f" until {period.end}" if period.end else "")


@router.post("/users/{user_id}/custom")
async def user_custom(request: Request, user_id: str) -> Response:
    """Custom tab: add or remove an effective-dated entry."""
    return await shared.change(request, "user", user_id, "custom", shared.custom_action, shared.custom_form)


@router.post("/users/{user_id}/invitation")
async def invite(request: Request, user_id: str) -> Response:
    """Create an invitation (or password-reset) link; shown to copy, and e-mailed when SMTP is configured."""
    who = need_full_admin(request)
    uid = parse_id(user_id)
    await form(request)
    settings = request.app.state.settings
    try:
        with database(request).write(who.workspace_id) as s:
            token, purpose = accounts.create_link(s, who.actor(), uid, settings.invitation_lifetime)
            view = users.view(s, users.get(s, who.workspace_id, uid))
    except Invalid as exc:
        return redirect(request, _back(uid or uuid.UUID(int=0)), error=exc.message)
    link = f"{public_base(request)}/invitations/{token}"
    sent = mail.send_link(settings, view.user.email, who.workspace_name, link, purpose)
    # Post/redirect/get: the link is shown once, on the page the browser lands on; a reload makes no other.
    reveal = {"link": link, "purpose": purpose, "sent": "yes" if sent else ""}
    return redirect(request, _back(view.user.id), reveal=reveal)
