"""Users: upsert by e-mail, additive tags and aliases, role rules, manager chain, lookups."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    String,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from payroster.db.feed import feed_text
from payroster.db.models import AuditEvent, User, UserAlias, UserTag, table, utcnow
from payroster.db.prepared import Prepared
from payroster.domain import normalize, wire
from payroster.domain.errors import Conflict
from payroster.services import audit, hierarchy, sessions, userkernel
from payroster.services.context import Actor
from payroster.services.inputs import UNSET, UserInput
from payroster.services.scoping import get_scoped, insert_ignoring


@dataclass
class UserView:
    """A user with its tags and aliases, as every door shows it."""

    user: User
    tags: list[str]
    aliases: list[str]
    # The position the next added tag / alias takes (positions keep gaps where items were removed).
    next_position: dict[str, int] = field(default_factory=lambda: {"tags": 0, "aliases": 0})
    # Tags and aliases added and not written yet: the change's end writes them with the row (``_updated``).
    pending: list[tuple[type[UserTag] | type[UserAlias], list[dict[str, Any]]]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        """The audited fields, in wire names: every door's (wire.user_audited), then SCIM's own."""
        u = self.user
        return {
            **wire.user_audited(
                u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, self.tags, self.aliases
            ),
            "userName": u.user_name,
            "displayName": u.display_name,
            "externalId": u.external_id,
            "scimHidden": True if u.scim_hidden else None,
        }

    def state(self) -> userkernel.UserState:
        """The user as the kernel folds it, as read."""
        u = self.user
        return userkernel.UserState(
            u.id, u.email, u.role, u.active, u.first_name, u.last_name, u.direct_manager_id, list(self.tags),
            list(self.aliases), True, u.email_key, u.created_at,
        ).loaded()  # fmt: skip


def item_selects(ws: Any, uids: Any, *extra: Any, one: bool = False) -> list[Select[Any]]:
    """``(kind, user_id, value, position, *extra)`` of these users' tags and of their aliases, one SELECT
    each (``kind`` is ``"tags"`` or ``"aliases"``), for a ``UNION ALL``; ``ws`` and ``uids`` are bound
    parameters (``uids`` expanding, or a single id when ``one``)."""
    return [
        select(literal(kind).label("kind"), model.user_id, model.value, model.position, *extra).where(
            model.workspace_id == ws, model.user_id == uids if one else model.user_id.in_(uids)
        )
        for kind, model in (("tags", UserTag), ("aliases", UserAlias))
    ]


def item_params() -> tuple[Any, Any]:
    """The ``ws`` and expanding ``uids`` parameters :func:`item_selects` takes."""
    return bindparam("ws", type_=Uuid), bindparam("uids", type_=Uuid, expanding=True)


def _items_query(one: bool = False) -> Select[Any]:
    ws, uids = item_params()
    items = union_all(*item_selects(ws, bindparam("uid", type_=Uuid) if one else uids, one=one)).subquery()
    return select(items).order_by(items.c.kind, items.c.user_id, items.c.position)


# The statements every upsert runs, built once with bound parameters: each call then skips building the
# statement and its cache key (a measurable share of a single upsert, bench/JOURNAL.md). Those of a single
# user's write run on the driver (db.prepared), the user read as a detached ``User`` of its loaded columns.
_ITEMS = _items_query()
_ITEMS_OF_ONE = Prepared(_items_query(one=True))
READ_COLUMNS = [c for c in table(User).c if c.key != "feed_json"]  # the feed's text is written, never read
_BY_EMAIL = select(*READ_COLUMNS).where(User.workspace_id == bindparam("ws"), User.email_key == bindparam("key"))
_BY_EMAIL_READ = Prepared(_BY_EMAIL)
_BY_EMAIL_LOCKED = Prepared(_BY_EMAIL.with_for_update())
_BY_USER_NAME = select(*READ_COLUMNS).where(
    User.workspace_id == bindparam("ws"), User.user_name_key == bindparam("key")
)
_BY_USER_NAME_READ = Prepared(_BY_USER_NAME)
_BY_USER_NAME_LOCKED = Prepared(_BY_USER_NAME.with_for_update())


def loaded(row: tuple[Any, ...]) -> User:
    """A user as read: every column but the feed's text, no pending change, in no session (its changes are
    written by :func:`_updated`)."""
    # As SQLAlchemy's own loading does: a new instance whose state holds the values as loaded. The
    # constructor set each column through its instrumented attribute, recording history only for
    # make_transient_to_detached to clear it: 34 -> 10 us a user.
    user = _USER_CLASS.new_instance()
    user.__dict__.update(zip(_BY_EMAIL_READ.columns, row, strict=True))
    make_transient_to_detached(user)
    return user


_USER_CLASS = inspect(User).class_manager


@functools.cache
def _create_statement(dialect: str) -> Any:
    """``INSERT INTO users ... ON CONFLICT DO NOTHING RETURNING users.*`` with bound values, built once."""
    users = table(User)
    columns = [c.name for c in users.c if c.name != "password_hash"]
    return insert_ignoring(dialect, users).values({c: bindparam(c) for c in columns}).returning(*users.c)


def items_of(session: Session, workspace_id: uuid.UUID, user_ids: list[uuid.UUID]) -> Any:
    """``(kind, user_id, value, position)`` of these users' tags and aliases in one query, ordered by kind,
    user and position (``kind`` is ``"tags"`` or ``"aliases"``)."""
    return session.connection().execute(_ITEMS, {"ws": workspace_id, "uids": user_ids})


def view(session: Session, user: User) -> UserView:
    """Load a user's tags and aliases in position order (one query for both)."""
    current = UserView(user, [], [])
    for kind, _, value, position in _ITEMS_OF_ONE.run(session, {"ws": user.workspace_id, "uid": user.id}):
        getattr(current, kind).append(value)
        current.next_position[kind] = position + 1
    return current


def get(session: Session, workspace_id: uuid.UUID, user_id: uuid.UUID | None, lock: bool = False) -> User:
    """The user with that id in the workspace, or NotFound."""
    return get_scoped(session, User, workspace_id, user_id, "user", lock=lock)


def find_by_email(session: Session, workspace_id: uuid.UUID, email: str, lock: bool = False) -> User | None:
    """The user whose normalised e-mail matches, or None: a detached ``User`` read on the driver (db.prepared),
    never the session's own object for that row; a user the session already holds keeps its values."""
    rows = (_BY_EMAIL_LOCKED if lock else _BY_EMAIL_READ).run(
        session, {"ws": workspace_id, "key": normalize.email_key(email)}
    )
    return loaded(rows[0]) if rows else None


def upsert(session: Session, actor: Actor, inp: UserInput) -> tuple[UserView, bool]:
    """Create or update the user by e-mail; tags and aliases are added. Returns (user, created)."""
    ws = actor.workspace_id
    user = find_by_email(session, ws, inp.email, lock=True)
    if user is None:
        current = _create(session, actor, inp)
        if current is not None:
            return current, True
        # Conflict-safe: a concurrent request created the same e-mail first; update that one.
        user = find_by_email(session, ws, inp.email, lock=True)
        assert user is not None
    current = view(session, user)
    _change(session, actor, current, inp, replace=False)
    return current, False


def _one(
    session: Session, ws: uuid.UUID, inp: UserInput, key: str, state: userkernel.UserState | None, replace: bool
) -> userkernel.UserState:
    """The kernel's plan of a batch of one: the user's state after ``inp``, or its first problem raised (409 for
    a rule of the set, 422 otherwise)."""
    states = {} if state is None else {key: state}
    _, problems = userkernel.plan(session, ws, [inp], [key], states, userkernel.alone, replace=replace)
    if problems:
        raise userkernel.refusal(problems)
    return states[key]


def _create(session: Session, actor: Actor, inp: UserInput) -> UserView | None:
    """A new user with every field of ``inp``, its tags and aliases and its audit event; None when the e-mail
    was taken meanwhile (nothing written).

    The kernel's plan of one new user gives its state (a new user loses no admin and, as nothing names it yet,
    closes no cycle). Written with Core statements: creating through the ORM's unit of work cost about twice the
    SQL's own time (bench/JOURNAL.md). On PostgreSQL the four inserts are one statement
    (:func:`_create_all_statement`); SQLite, without data-modifying CTEs, runs them in turn.
    """
    ws = actor.workspace_id
    state = _one(session, ws, inp, normalize.email_key(inp.email), None, replace=False)
    uid = state.id
    if inp.user_name is not UNSET:
        _check_user_name(session, ws, uid, inp.user_name)
    now = utcnow()
    values = {
        "workspace_id": ws,
        "id": uid,
        "email": inp.email,
        "email_key": state.key,
        "role": state.role,
        "active": state.active,
        "created_at": now,
        "updated_at": now,
        "user_name_key": None if inp.user_name is UNSET else normalize.email_key(inp.user_name),
        "scim_hidden": False if inp.scim_hidden is UNSET else inp.scim_hidden,
        **{name: None if getattr(inp, name) is UNSET else getattr(inp, name) for name in _AS_GIVEN},
        "direct_manager_id": state.manager,
    }
    timeline = [] if state.timeline is None else state.timeline[1]
    tags, aliases = state.tags, state.aliases
    user = User(**values, password_hash=None)  # every column: once written, it is as if loaded
    current = UserView(user, tags, aliases, {"tags": len(tags), "aliases": len(aliases)})
    values["feed_json"] = user.feed_json = _feed_of(session, current)
    # The timeline's own event, made first so it comes before the user's (both are written below).
    dated = hierarchy.timeline_events(actor, "user", uid, hierarchy.manager_change([], timeline))
    event = audit.event_row(actor, "user.created", "user", uid, audit.created(current.snapshot()))
    lists: dict[type[UserTag] | type[UserAlias], list[dict[str, Any]]] = {
        UserTag: _item_rows(user, tags, 0),
        UserAlias: _item_rows(user, aliases, 0),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        params = {**values, **_event_params(event)}
        for model, rows in lists.items():
            params.update(_items_params(model, rows))
        written = _create_all_statement().run(session, params)
    else:
        written = _create_statement_sqlite().run(session, values)
    if not written:
        return None
    make_transient_to_detached(user)  # as if loaded: the row is in the database already
    if dialect != "postgresql":
        for model, rows in lists.items():
            _items_insert(dialect, model).run_many(session, rows)
        audit.record_many(session, [event])
    hierarchy.store_new_manager(session, ws, uid, timeline)
    audit.record_many(session, dated)
    if aliases:
        # A concurrent request may have taken one of these aliases after the first check.
        userkernel.aliases_still_free(session, ws, uid, aliases)
    return current


def _feed_of(session: Session, current: UserView) -> str:
    """The stored feed entity of a user as this write leaves it."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    row = {k: getattr(current.user, k) for k in wire.USER_ROW_COLUMNS}
    return feed_text(sqlite, tags=current.tags, aliases=current.aliases, **row)


@functools.cache
def _create_statement_sqlite() -> Prepared:
    """SQLite's create (:func:`_create_statement`), run on the driver."""
    return Prepared(_create_statement("sqlite"))


@functools.cache
def _create_all_statement() -> Prepared:
    """PostgreSQL: the new user (``INSERT ... ON CONFLICT DO NOTHING``), its tags and aliases
    (:func:`_new_items_cte`) and its audit event, as data-modifying CTEs that all read the inserted row, so a
    conflict writes nothing at all; returns the user's row. One statement instead of three or four, each of
    which was a round trip and an execution of its own (bench/JOURNAL.md)."""
    new_user = _create_statement("postgresql").cte("new_user")
    lists = [_new_items_cte(model, new_user.c.workspace_id, new_user.c.id, new_user) for model in (UserTag, UserAlias)]
    event = select(*_event_binds().values()).select_from(new_user)
    written = insert(table(AuditEvent)).from_select(list(audit.COLUMNS), event).cte("new_event")
    return Prepared(select(new_user).add_cte(*lists, written))


# PostgreSQL: a user's new tags or aliases travel as three arrays, unnested into rows by the statement.
_ITEM_ARRAYS = (("keys", "value_key", String), ("values", "value", String), ("positions", "position", Integer))


def _list_name(model: type[UserTag] | type[UserAlias]) -> str:
    return "tags" if model is UserTag else "aliases"


def _new_items_cte(model: type[UserTag] | type[UserAlias], workspace_id: Any, user_id: Any, source: Any = None) -> Any:
    """PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` of a user's new tags or aliases from the arrays of
    :func:`_items_params`, as a CTE; ``source`` is the CTE the ids are columns of, when they are."""
    name = _list_name(model)
    given = (
        func.unnest(*(bindparam(f"{name}_{part}", type_=ARRAY(kind)) for part, _, kind in _ITEM_ARRAYS))
        .table_valued("key", "value", "position")
        .render_derived(name=f"given_{name}")
    )
    made = select(workspace_id, user_id, *given.c)
    if source is not None:
        made = made.join_from(source, given, true())
    columns = ["workspace_id", "user_id", *(column for _, column, _ in _ITEM_ARRAYS)]
    return insert_ignoring("postgresql", table(model)).from_select(columns, made).cte(f"new_{name}")


def _items_params(model: type[UserTag] | type[UserAlias], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The arrays :func:`_new_items_cte` takes, from rows of :func:`_item_rows`."""
    name = _list_name(model)
    return {f"{name}_{part}": [row[column] for row in rows] for part, column, _ in _ITEM_ARRAYS}


def _event_binds() -> dict[str, Any]:
    """An audit event's columns as the ``event_*`` parameters of a statement that writes it."""
    events = table(AuditEvent)
    return {c: bindparam(f"event_{c}", type_=events.c[c].type) for c in audit.COLUMNS}


def _event_params(event: dict[str, Any]) -> dict[str, Any]:
    """The values of :func:`_event_binds` for one event (an ``audit.event_row``)."""
    return {f"event_{name}": value for name, value in event.items()}


# Columns a new user takes from the input as they are (None when absent); its role, flag and manager are the
# kernel's.
_AS_GIVEN = ("first_name", "last_name", "user_name", "display_name", "external_id", "scim_emails")


def patch(session: Session, actor: Actor, user_id: uuid.UUID | None, inp: UserInput) -> UserView:
    """Change any field of a user by id, e-mail included; here tags and aliases replace."""
    return patch_locked(session, actor, get(session, actor.workspace_id, user_id, lock=True), inp)


def patch_locked(session: Session, actor: Actor, user: User, inp: UserInput) -> UserView:
    """:func:`patch` of a user this transaction has already read with ``lock=True`` (SCIM reads it first, to
    apply a PATCH or check a version), without reading it again."""
    current = view(session, user)
    before = current.snapshot()
    if inp.email is not UNSET and normalize.email_key(inp.email) != user.email_key:
        holder = find_by_email(session, actor.workspace_id, inp.email)
        if holder is not None:
            raise Conflict(f"e-mail address {inp.email} is taken", target="emailAddress", scim_type="uniqueness")
        user.email_key = normalize.email_key(inp.email)
    if inp.email is not UNSET:
        user.email = inp.email
    _change(session, actor, current, inp, replace=True, before=before)
    return current


def remove_item(session: Session, actor: Actor, user_id: uuid.UUID | None, kind: str, value: str) -> UserView:
    """Remove one tag or alias (case-insensitive); a missing value is a no-op."""
    user = get(session, actor.workspace_id, user_id, lock=True)
    current = view(session, user)
    before = current.snapshot()
    model = UserTag if kind == "tags" else UserAlias
    session.execute(
        delete(model).where(
            model.workspace_id == user.workspace_id, model.user_id == user.id, model.value_key == normalize.key(value)
        )
    )
    items = [v for v in getattr(current, kind) if normalize.key(v) != normalize.key(value)]
    setattr(current, kind, items)
    _updated(session, actor, current, before)
    return current


def _updated(session: Session, actor: Actor, current: UserView, before: dict[str, Any]) -> None:
    """End a change of an existing user: when anything changed, its ``updatedAt``, its stored feed entity (in
    the row's own ``UPDATE``) and its audit event; the tags and aliases it added. On PostgreSQL these writes
    are one statement (:func:`_update_all_statement`); SQLite runs them in turn."""
    user = current.user
    changes = audit.diff(before, current.snapshot())
    event = None
    if changes:
        user.updated_at = utcnow()
        user.feed_json = _feed_of(session, current)
        event = audit.event_row(actor, "user.updated", "user", user.id, changes)
    pending, current.pending = current.pending, []
    state = inspect(user)
    touched = state.committed_state
    # Only what differs: a value set again writes nothing.
    changed = {key: state.dict[key] for key, before in touched.items() if state.dict.get(key) != before}
    row = {"w_s": user.workspace_id, "u_id": user.id, **changed}
    dialect = session.get_bind().dialect.name
    if changed and dialect == "postgresql":
        for model, rows in pending:
            row.update(_items_params(model, rows))
        if event is not None:
            row.update(_event_params(event))
        lists = tuple(model for model, _ in pending)
        _update_all_statement(tuple(sorted(changed)), lists, event is not None).run(session, row)
    else:
        for model, rows in pending:
            _items_insert(dialect, model).run_many(session, rows)
        if event is not None:
            audit.record_many(session, [event])
        if changed:
            _update_statement(tuple(sorted(changed))).run(session, row)
    # The user's history is clean: a user this session had loaded itself is not written again at commit.
    for key in list(touched):
        set_committed_value(user, key, state.dict.get(key))
    for model, rows in pending:
        if model is UserAlias:
            # A concurrent request may have taken one of these aliases after the first check.
            userkernel.aliases_still_free(session, user.workspace_id, user.id, [r["value"] for r in rows])


@functools.cache
def _update_statement(keys: tuple[str, ...]) -> Prepared:
    """``UPDATE users SET <keys> WHERE`` its key, one per set of changed columns."""
    return Prepared(_update_of(keys))


def _update_of(keys: tuple[str, ...]) -> Any:
    users = table(User)
    where = (users.c.workspace_id == bindparam("w_s", type_=Uuid), users.c.id == bindparam("u_id", type_=Uuid))
    return update(users).where(*where).values({k: bindparam(k) for k in keys})


@functools.cache
def _update_all_statement(
    keys: tuple[str, ...], lists: tuple[type[UserTag] | type[UserAlias], ...], event: bool
) -> Prepared:
    """PostgreSQL: the ``UPDATE`` of a user's changed columns with, as data-modifying CTEs, its new tags and
    aliases and its audit event: one statement where there were up to four, each a round trip and an
    execution of its own (bench/JOURNAL.md). Nothing here reads what another part writes, so one snapshot
    serves all."""
    ids = (bindparam("w_s", type_=Uuid), bindparam("u_id", type_=Uuid))
    ctes = [_new_items_cte(model, *ids) for model in lists]
    if event:
        ctes.append(insert(table(AuditEvent)).values(_event_binds()).cte("new_event"))
    return Prepared(_update_of(keys).add_cte(*ctes))


def _change(
    session: Session,
    actor: Actor,
    current: UserView,
    inp: UserInput,
    replace: bool,
    before: dict[str, Any] | None = None,
) -> None:
    """Apply ``inp`` to a locked user as the kernel's plan of one leaves it (``replace``: the lists replace),
    with SCIM's own fields, and end the change (:func:`_updated`)."""
    user = current.user
    ws = user.workspace_id
    before = current.snapshot() if before is None else before
    state = _one(session, ws, inp, user.email_key, current.state(), replace)
    if (state.role, state.active) != (user.role, user.active):
        if user.active and not state.active:
            sessions.end_all(session, ws, [user.id])  # a deactivated user's browser sessions end
        user.role, user.active = state.role, state.active
    if inp.first_name is not UNSET:
        user.first_name = state.first_name
    if inp.last_name is not UNSET:
        user.last_name = state.last_name
    if state.timeline is not None:
        audit.record_many(session, userkernel.write_timelines(session, actor, [state]))
        user.direct_manager_id = state.manager
    if inp.tags is not UNSET:
        _stage_items(session, current, UserTag, state.tags)
    if inp.aliases is not UNSET:
        _stage_items(session, current, UserAlias, state.aliases)
    if inp.user_name is not UNSET:
        _set_user_name(session, user, inp.user_name)
    for name in ("display_name", "external_id", "scim_emails", "scim_hidden"):
        if (value := getattr(inp, name)) is not UNSET:
            setattr(user, name, value)
    _updated(session, actor, current, before)


def find_by_user_name(session: Session, workspace_id: uuid.UUID, user_name: str, lock: bool = False) -> User | None:
    """The user whose SCIM userName matches case-insensitively, or None."""
    statement = _BY_USER_NAME_LOCKED if lock else _BY_USER_NAME_READ
    rows = statement.run(session, {"ws": workspace_id, "key": normalize.email_key(user_name)})
    return loaded(rows[0]) if rows else None


def _check_user_name(session: Session, ws: uuid.UUID, user_id: uuid.UUID, user_name: str) -> None:
    """Conflict when another user of the workspace has this userName (case-insensitively)."""
    holder = find_by_user_name(session, ws, user_name)
    if holder is not None and holder.id != user_id:
        raise Conflict(f"userName {user_name} is taken", target="userName", code="uniqueness", scim_type="uniqueness")


def _set_user_name(session: Session, user: User, user_name: str) -> None:
    key = normalize.email_key(user_name)
    if key != user.user_name_key:
        _check_user_name(session, user.workspace_id, user.id, user_name)
        user.user_name_key = key
    user.user_name = user_name


def _stage_items(
    session: Session, current: UserView, model: type[UserTag] | type[UserAlias], wanted: list[str]
) -> None:
    """Make a user's tags or aliases ``wanted`` (the kernel's list): those dropped are deleted now, those added
    wait in ``current.pending`` for :func:`_updated`, at the positions after the last."""
    user = current.user
    kind = _list_name(model)
    existing: list[str] = getattr(current, kind)
    keep = {normalize.key(v) for v in wanted}
    gone = [normalize.key(v) for v in existing if normalize.key(v) not in keep]
    if gone:
        session.execute(
            delete(model).where(
                model.workspace_id == user.workspace_id, model.user_id == user.id, model.value_key.in_(gone)
            )
        )
    have = {normalize.key(v) for v in existing}
    added = [v for v in wanted if normalize.key(v) not in have]
    if added:
        start = current.next_position[kind]  # read with the list, under the user's row lock
        current.pending.append((model, _item_rows(user, added, start)))  # written by _updated
        current.next_position[kind] = start + len(added)
    setattr(current, kind, list(wanted))


def _item_rows(user: User, values: list[str], start: int) -> list[dict[str, Any]]:
    """The rows of new tags or aliases of ``user``, positions from ``start``."""
    return [
        {"workspace_id": user.workspace_id, "user_id": user.id, "value": v, "value_key": normalize.key(v),
         "position": start + i}
        for i, v in enumerate(values)
    ]  # fmt: skip


@functools.cache
def _items_insert(dialect: str, model: type[UserTag] | type[UserAlias]) -> Prepared:
    """``INSERT ... ON CONFLICT DO NOTHING`` of tags or aliases, run on the driver (db.prepared)."""
    columns = ("workspace_id", "user_id", "value", "value_key", "position")
    return Prepared(insert_ignoring(dialect, table(model)).values({c: bindparam(c) for c in columns}))


def set_password_hash(session: Session, user: User, password_hash: str) -> None:
    """Store a new password hash (audited as ``(changed)``, never the value)."""
    session.execute(
        update(User)
        .where(User.workspace_id == user.workspace_id, User.id == user.id)
        .values(password_hash=password_hash)
    )
