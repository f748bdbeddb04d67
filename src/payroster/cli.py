"""The ``payroster`` command (README.md, "Commands"): exit 0 success, 1 failure, 2 usage; logs on stderr."""

from __future__ import annotations

import json
import logging
import logging.config
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click
import pydantic

from payroster.config import Settings, parse_duration
from payroster.db import migrate, restore
from payroster.db.engine import Database
from payroster.domain.errors import DomainError
from payroster.observability import logs, metrics
from payroster.services import apikeys, changes, demo, imports, unit, workspaces
from payroster.services.context import Actor

log = logging.getLogger("payroster.cli")


def _open(settings: Settings) -> Database:
    """The database, with SQLite migrated automatically (PostgreSQL only by ``db upgrade``). The command uses an
    SQLite file until it exits: ``db restore`` refuses meanwhile (``db.restore.Presence``)."""
    if settings.sqlite_path is not None:
        presence = restore.Presence(settings.sqlite_path)
        presence.hold()
        _HELD.append(presence)
    return migrate.prepare_database(settings)


_HELD: list[restore.Presence] = []  # released with the process


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data))
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")


class _Group(click.Group):
    """Turns domain errors into a message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            details = "".join(f"\n  {d.target}: {d.message}" for d in exc.details[:50])
            click.echo(f"error: {exc.message}{details}", err=True)
            sys.exit(1)
        except pydantic.ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            for e in exc.errors():
                name = "PAYROSTER_" + "_".join(str(p) for p in e["loc"]).upper()
                click.echo(f"error: {name}: {e['msg'].removeprefix('Value error, ')}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """PayRoster: the people directory for sales-commission workspaces."""
    # One configuration for every command and for each worker of ``serve`` (docs/operations.md, "Logs").
    config = logs.config(Settings().log_format, verbose)
    logging.config.dictConfig(config)
    click.get_current_context().obj = config


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", type=click.IntRange(1, 64), help="server processes  [default: PAYROSTER_WORKERS, else the CPU count]"
)
def serve(host: str, port: int, workers: int | None) -> None:
    """Run the web server: API, OData, SCIM and UI."""
    settings = Settings()
    workers = workers or settings.workers
    try:
        _open(settings).dispose()
    except migrate.SchemaBehind as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    metrics.clear_multiprocess_dir()
    run_server("payroster.app:factory", host, port, workers, click.get_current_context().find_root().obj)


WORKER_HEALTHCHECK = 60  # seconds a server process may take to answer uvicorn's supervisor (run_server)


def run_server(app: str, host: str, port: int, workers: int, log_config: dict[str, Any]) -> None:
    """Uvicorn serving the application factory ``app`` as ``serve`` runs it (the benchmarks serve theirs alike)."""
    import uvicorn

    uvicorn.run(
        app,
        log_config=log_config,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        log_level="info",
        timeout_graceful_shutdown=30,
        # uvicorn kills a worker that does not answer its supervisor's ping within this time, and a worker answers
        # only once it has imported PayRoster (2.6-3.5 s on a quiet machine of two cores, over 5 s, uvicorn's
        # default, on a loaded one): with 5 s the workers were killed and restarted in a loop (bench/JOURNAL.md).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK,
    )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations."""
    settings = Settings()
    with restore.using(settings.sqlite_path):  # never while a restore replaces the file: it waits for it
        database = Database(settings)
        migrate.upgrade(database.engine)
        click.echo(f"database at revision {migrate.current_revision(database.engine)}", err=True)
        database.dispose()


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(path: Path) -> None:
    """Online backup of the SQLite database to PATH (PostgreSQL: use pg_dump)."""
    source = _sqlite_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    click.echo(f"backed up {source} to {path}", err=True)


@db.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(path: Path) -> None:
    """Restore the SQLite database from a PayRoster backup at PATH (refused while a server uses the database)."""
    target = _sqlite_file()
    try:
        done = restore.restore(target, path)
    except restore.RestoreRefused as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot restore {target} from {path}: {exc.strerror or exc}") from None
    kept = f"; the database it replaced is kept at {done.safety_copy}" if done.safety_copy else ""
    click.echo(f"restored {target} from {path} (schema revision {done.backup_revision}){kept}", err=True)


def _sqlite_file() -> Path:
    path = Settings().sqlite_path
    if path is None:
        raise click.ClickException(
            "backup and restore handle SQLite files; for PostgreSQL use pg_dump -Fc and pg_restore (docs/operations.md)"
        )
    return path


@main.group()
def workspace() -> None:
    """Workspaces."""


@workspace.command("create")
@click.option("--name", required=True)
@click.option("--admin-email", required=True)
@click.option("--admin-password", default=None)
@click.option("--json", "as_json", is_flag=True)
def workspace_create(name: str, admin_email: str, admin_password: str | None, as_json: bool) -> None:
    """Create a workspace, its first FullAdmin and an API key."""
    database = _open(Settings())
    with database.write() as s:
        made = workspaces.create(s, name, admin_email, admin_password)
        out = {
            "workspaceId": str(made.workspace.id),
            "workspaceSlug": made.workspace.slug,
            "adminUserId": made.admin_user_id,
            "apiKey": made.api_key,
        }
    _emit(out, as_json)


@workspace.command("update")
@click.option("--workspace", "slug", required=True)
@click.option(
    "--default-scim-role",
    type=click.Choice(["FullAdmin", "LimitedAdmin", "Participant"]),
    required=True,
    help="the role of users created by SCIM when the identity provider sends none",
)
def workspace_update(slug: str, default_scim_role: str) -> None:
    """Change a workspace's settings."""
    database = _open(Settings())
    with database.write() as s:
        ws = workspaces.by_slug(s, slug)
        workspaces.set_default_scim_role(s, Actor(ws.id, None, "cli", "cli"), default_scim_role)
    click.echo(f"{slug}: default SCIM role {default_scim_role}", err=True)


def _key_command(kind: str, slug: str, email: str | None, name: str | None, as_json: bool) -> None:
    from payroster.services import users

    database = _open(Settings())
    with unit.write_by_slug(database, slug) as work:
        s, ws = work.session, work.workspace_id
        owner = None
        if email is not None:
            user = users.find_by_email(s, ws, email)
            if user is None:
                raise DomainError(f"no user {email} in workspace {slug}", code="notFound", status=404)
            owner = user.id
        label = name or ("API key" if kind == "api" else "Provisioning token")
        key, row = apikeys.issue(s, Actor(ws, owner, "cli", "cli"), owner, label, kind)
    out = (
        {"apiKey": key, "keyId": row.key_id, "userId": str(owner)}
        if kind == "api"
        else {"token": key, "keyId": row.key_id}
    )
    _emit(out, as_json)


def _revoke(slug: str, key_id: str) -> None:
    database = _open(Settings())
    with unit.write_by_slug(database, slug) as work:
        apikeys.revoke(work.session, Actor(work.workspace_id, None, "cli", "cli"), key_id)
    click.echo(f"revoked {key_id}", err=True)


@main.group()
def apikey() -> None:
    """API keys."""


@apikey.command("create")
@click.option("--workspace", "slug", required=True)
@click.option("--email", required=True)
@click.option("--name", default=None)
@click.option("--json", "as_json", is_flag=True)
def apikey_create(slug: str, email: str, name: str | None, as_json: bool) -> None:
    """Issue an API key for an existing user."""
    _key_command("api", slug, email, name, as_json)


@apikey.command("revoke")
@click.option("--workspace", "slug", required=True)
@click.option("--key-id", required=True)
def apikey_revoke(slug: str, key_id: str) -> None:
    """Revoke an API key."""
    _revoke(slug, key_id)


@main.group("scim-token")
def scim_token() -> None:
    """SCIM provisioning tokens."""


@scim_token.command("create")
@click.option("--workspace", "slug", required=True)
@click.option("--name", default=None)
@click.option("--json", "as_json", is_flag=True)
def scim_token_create(slug: str, name: str | None, as_json: bool) -> None:
    """Issue a provisioning token for a workspace's SCIM door."""
    _key_command("scim", slug, None, name, as_json)


@scim_token.command("revoke")
@click.option("--workspace", "slug", required=True)
@click.option("--key-id", required=True)
def scim_token_revoke(slug: str, key_id: str) -> None:
    """Revoke a provisioning token."""
    _revoke(slug, key_id)


@main.group("import")
def import_() -> None:
    """Bulk imports."""


class _Bar:
    """``imports.Progress`` as a bar on stderr, one per stage (click draws nothing but the label when stderr is
    not a terminal)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, label: str, total: int) -> None:
        self.close()
        self.bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
        self.bar.__enter__()

    def advance(self, amount: int) -> None:
        if self.bar is not None and amount:
            self.bar.update(amount)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _import(slug: str, file: Path, kind: str | None) -> dict[str, imports.Counts]:
    """Both passes of an import through the service every door calls, as the command line (audited so)."""
    database = _open(Settings())
    with database.read() as s:
        ws_id = workspaces.by_slug(s, slug).id
    bar = _Bar()
    try:
        return imports.run(database, Actor(ws_id, None, "cli", "import"), file, kind, bar)
    finally:
        bar.close()


def _import_command(kind: str, what: str) -> None:
    @import_.command(kind, help=f"Upsert {what} from a CSV, TSV or XLSX file, all or nothing (README.md, Imports).")
    @click.option("--workspace", "slug", required=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def command(slug: str, as_json: bool, file: Path) -> None:
        done = _import(slug, file, kind)
        _emit(done[kind].wire() if kind in done else imports.Counts().wire(), as_json)


for _kind, _what in (
    ("users", "users"),
    ("teams", "teams"),
    ("memberships", "team memberships"),
    ("custom-variables", "custom variable entries"),
):
    _import_command(_kind, _what)


@import_.command("workbook")
@click.option("--workspace", "slug", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_workbook(slug: str, as_json: bool, file: Path) -> None:
    """Import an XLSX workbook's Users, Teams, Memberships and CustomVariables sheets in one transaction."""
    done = _import(slug, file, None)
    out = {kind: counts.wire() for kind, counts in done.items()}
    if as_json:
        click.echo(json.dumps(out))
    else:
        for kind, counts in out.items():
            click.echo(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@main.command("demo")
@click.option("--json", "as_json", is_flag=True)
def demo_command(as_json: bool) -> None:
    """Create the demo workspace once; print the URL, admin e-mail and password and a fresh API key."""
    settings = Settings()
    database = _open(settings)
    with database.write() as s:
        ws, password, key = demo.ensure(s)
        slug = ws.slug
    url = settings.base_url or "http://127.0.0.1:8000"
    _emit(
        {"url": url, "workspaceSlug": slug, "adminEmail": demo.ADMIN, "adminPassword": password, "apiKey": key}, as_json
    )


@main.group("changes")
def changes_group() -> None:
    """The change feed."""


@changes_group.command("prune")
@click.option("--older-than", default=None, help="a duration such as '90 days' (default: PAYROSTER_CHANGE_RETENTION)")
@click.option("--json", "as_json", is_flag=True)
def changes_prune(older_than: str | None, as_json: bool) -> None:
    """Delete the changes older than the retention; readers whose cursor is older are told to resync (410)."""
    settings = Settings()
    try:
        period = parse_duration(older_than) if older_than is not None else settings.change_retention_period
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    if period is None:
        click.echo("nothing pruned: PAYROSTER_CHANGE_RETENTION is not set, so changes are kept forever", err=True)
        _emit({"pruned": 0}, as_json)
        return
    database = _open(settings)
    try:
        _emit({"pruned": changes.prune(database, period)}, as_json)
    finally:
        database.dispose()


@main.group("sso")
def sso_group() -> None:
    """Sign-in through a workspace's OpenID Connect identity providers."""


# The sso commands import their service when run: it loads Authlib and an HTTP client, which no other command
# needs at start-up.


@sso_group.command("add")
@click.option("--workspace", "slug", required=True)
@click.option("--name", required=True, help="shown on the log-in button: Sign in with NAME")
@click.option("--issuer", required=True, help="https URL (http only for localhost and 127.0.0.1)")
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, help="stored encrypted, never shown again")
@click.option("--scopes", default="openid email profile", show_default=True)
@click.option("--domain", "domains", multiple=True, help="an accepted e-mail domain (repeat; none: any)")
@click.option("--trust-unverified-email", is_flag=True, help="accept e-mails the provider does not mark verified")
@click.option("--json", "as_json", is_flag=True)
def sso_add(
    slug: str, name: str, issuer: str, client_id: str, client_secret: str, scopes: str, domains: tuple[str, ...],
    trust_unverified_email: bool, as_json: bool,
) -> None:  # fmt: skip
    """Add an identity provider to a workspace."""
    from payroster.services import sso

    settings = Settings()
    database = _open(settings)
    inp = sso.ProviderInput(name, issuer, client_id, client_secret, scopes, domains, trust_unverified_email)
    with database.write() as s:
        ws = workspaces.by_slug(s, slug)
        view = sso.add_provider(s, Actor(ws.id, None, "cli", "cli"), settings.resolved_secret(), inp)
    _emit(view.wire(), as_json)


@sso_group.command("list")
@click.option("--workspace", "slug", required=True)
@click.option("--json", "as_json", is_flag=True)
def sso_list(slug: str, as_json: bool) -> None:
    """List a workspace's identity providers (never their secrets)."""
    from payroster.services import sso

    database = _open(Settings())
    with database.read() as s:
        providers = [p.wire() for p in sso.list_providers(s, workspaces.by_slug(s, slug).id)]
    if as_json:
        click.echo(json.dumps(providers))
        return
    for p in providers:
        click.echo(
            f"{p['id']}  {p['name']}  {p['issuer']}  client {p['clientId']}  domains {' '.join(p['domains']) or 'any'}"
        )


@sso_group.command("remove")
@click.option("--workspace", "slug", required=True)
@click.option("--id", "provider_id", required=True)
def sso_remove(slug: str, provider_id: str) -> None:
    """Remove an identity provider (its buttons and remembered identities go with it)."""
    from payroster.services import sso

    database = _open(Settings())
    with database.write() as s:
        ws = workspaces.by_slug(s, slug)
        sso.remove_provider(s, Actor(ws.id, None, "cli", "cli"), provider_id)
    click.echo(f"removed {provider_id}", err=True)


@main.command("worker")
def worker() -> None:
    """Deliver webhooks until stopped (SIGTERM or Ctrl-C), beside servers run with PAYROSTER_WEBHOOK_DELIVERY=false."""
    import signal
    import threading

    from payroster.outbound import AllowList, Guard
    from payroster.services.delivery import Delivery

    settings = Settings()
    database = _open(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    guard = Guard(AllowList.parse(settings.webhook_allow_hosts))
    delivery = Delivery(database, settings, guard, settings.resolved_secret()).start()
    log.info("webhook worker started: %d threads", settings.webhook_threads)
    stop.wait()
    delivery.stop()
    database.dispose()


@main.group("webhook")
def webhook_group() -> None:
    """A workspace's webhook endpoints (README.md, "Webhooks")."""


def _webhook_actor(s: Any, slug: str) -> Actor:
    return Actor(workspaces.by_slug(s, slug).id, None, "cli", "cli")


@webhook_group.command("create")
@click.option("--workspace", "slug", required=True)
@click.option("--url", required=True, help="https URL (http only to hosts in PAYROSTER_WEBHOOK_ALLOW_HOSTS)")
@click.option("--description", default="")
@click.option("--event-type", "event_types", multiple=True, help="`*` (default), `user.*`, `membership.added`...")
@click.option("--json", "as_json", is_flag=True)
def webhook_create(slug: str, url: str, description: str, event_types: tuple[str, ...], as_json: bool) -> None:
    """Add an endpoint; prints its secret, shown this once."""
    from payroster.outbound import AllowList, Guard
    from payroster.services import webhooks

    settings = Settings()
    database = _open(settings)
    body = {"url": url, "description": description, "eventTypes": list(event_types or ("*",))}
    inp = webhooks.parse_endpoint(body, require_url=True)
    with database.read() as s:
        webhooks.number_pending(database, workspaces.by_slug(s, slug).id)
    with database.write() as s:
        guard = Guard(AllowList.parse(settings.webhook_allow_hosts))
        endpoint, secret = webhooks.create(s, _webhook_actor(s, slug), settings.resolved_secret(), inp, guard)
        _emit({**webhooks.wire(endpoint), "secret": secret}, as_json)


@webhook_group.command("list")
@click.option("--workspace", "slug", required=True)
@click.option("--json", "as_json", is_flag=True)
def webhook_list(slug: str, as_json: bool) -> None:
    """List a workspace's endpoints (never their secrets)."""
    from payroster.services import webhooks

    database = _open(Settings())
    with database.read() as s:
        found = [webhooks.wire(e) for e in webhooks.listing(s, workspaces.by_slug(s, slug).id)]
    if as_json:
        click.echo(json.dumps(found))
        return
    for e in found:
        state = "enabled" if e["enabled"] else f"disabled ({e['disabledReason']})"
        click.echo(f"{e['id']}  {e['url']}  {' '.join(e['eventTypes'])}  {state}  position {e['position']}")


@webhook_group.command("disable")
@click.option("--workspace", "slug", required=True)
@click.option("--id", "endpoint_id", required=True)
def webhook_disable(slug: str, endpoint_id: str) -> None:
    """Stop sending to an endpoint (enabling it again resumes where it stopped)."""
    from payroster.outbound import Guard
    from payroster.services import webhooks

    database = _open(Settings())
    with database.write() as s:
        webhooks.patch(s, _webhook_actor(s, slug), endpoint_id, webhooks.EndpointInput(enabled=False), Guard())
    click.echo(f"disabled {endpoint_id}", err=True)


@webhook_group.command("rotate-secret")
@click.option("--workspace", "slug", required=True)
@click.option("--id", "endpoint_id", required=True)
@click.option("--json", "as_json", is_flag=True)
def webhook_rotate(slug: str, endpoint_id: str, as_json: bool) -> None:
    """A new secret (printed once); the old one keeps signing beside it for 24 hours."""
    from payroster.services import webhooks

    settings = Settings()
    database = _open(settings)
    with database.write() as s:
        endpoint, secret = webhooks.rotate(s, _webhook_actor(s, slug), settings.resolved_secret(), endpoint_id)
        _emit({**webhooks.wire(endpoint), "secret": secret}, as_json)
