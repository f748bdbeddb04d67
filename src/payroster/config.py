"""Settings from the environment (``PAYROSTER_`` prefix); built by the caller, never at import."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """``"7 days"``, ``"12 hours"``, ``"90 minutes"``: a count and a unit, as the settings are written."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. '7 days' or '12 hours')")
    return dt.timedelta(**{match.group(2).lower() + "s": int(match.group(1))})


class Settings(BaseSettings):
    """Everything PayRoster reads from its environment (README.md, "Configuration")."""

    model_config = SettingsConfigDict(env_prefix="PAYROSTER_", extra="ignore")

    database_url: str = Field(default="sqlite:///var/payroster.db", description="SQLite or PostgreSQL URL")
    secret_key: SecretStr | None = Field(default=None, description="signs sessions, CSRF and skip tokens")
    redis_url: str | None = Field(default=None, description="shared rate-limit state across processes")
    base_url: str | None = Field(default=None, description="public URL for absolute links")
    trusted_proxies: str | None = Field(
        default=None, description="comma-separated addresses or networks whose X-Forwarded-* headers are believed"
    )
    rate_limit_per_key: str = Field(
        default="100/second", description="requests per API key, `limits` syntax; bursts of twice the amount"
    )
    rate_limit_per_workspace: str = Field(default="200/second", description="requests per workspace, `limits` syntax")
    max_body_bytes: int = Field(default=1024 * 1024, description="request size limit")
    max_bulk_bytes: int = Field(default=32 * 1024 * 1024, description="users:bulk size limit")
    max_bulk_rows: int = Field(default=100_000, description="users:bulk row limit")
    import_max_bytes: int = Field(
        default=1 << 30, ge=1, description="largest import file, API (POST /api/v1/imports/...) and Users > Import"
    )
    db_pool_size: int = Field(default=10, description="PostgreSQL connection pool size")
    threads: int = Field(default=8, ge=1, description="request handler threads per server process")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=64, description="server processes (default: the cores)"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token that opens /metrics (Prometheus); unset, /metrics answers 404"
    )
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per log line")
    query_budget: float = Field(
        default=10.0, gt=0, description="seconds of database time one feed request may spend (README, OData feed)"
    )
    login_throttle: str = Field(
        default="10/15 minutes", description="failed logins per account and per address, `limits` syntax"
    )
    signup: Literal["open", "closed"] = Field(default="open", description="closed: only the CLI creates workspaces")
    smtp_url: str | None = Field(default=None, description="smtp://[user:password@]host[:port] (smtps:// for TLS)")
    mail_from: str = Field(default="PayRoster <no-reply@localhost>", description="sender of invitation e-mails")
    invitation_ttl: str = Field(default="7 days", description="lifetime of invitation and reset links")
    session_ttl: str = Field(default="12 hours", description="a browser session ends after this long unused")
    change_retention: str | None = Field(
        default=None, description="change-feed events older than this may be pruned (`payroster changes prune`)"
    )

    webhook_allow_hosts: str | None = Field(
        default=None,
        description="comma-separated host names, addresses or networks webhooks may reach over http or privately",
    )
    webhook_delivery: bool = Field(default=True, description="false: `payroster serve` sends no webhooks")
    webhook_threads: int = Field(default=2, ge=1, le=64, description="webhook delivery threads per process")
    webhook_poll: float = Field(default=0.5, gt=0, le=60, description="seconds between looks for new changes")
    webhook_timeout: float = Field(default=10.0, gt=0, le=60, description="seconds one delivery attempt may last")
    webhook_retry_scale: float = Field(
        default=1.0, gt=0, le=1, description="multiplies the retry schedule's delays (shorter in tests)"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str | None) -> str | None:
        # The proxy middleware would take an entry it cannot read as a literal host name that never matches, and the
        # forwarded headers would silently be ignored: an address or network that is not one is refused at start.
        if value is None or value.strip() == "*":
            return value
        for entry in (e.strip() for e in value.split(",")):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"not an address or network: {entry!r} (write e.g. '10.0.0.5, 192.168.0.0/16', or '*')"
                ) from None
        return value

    @field_validator("invitation_ttl", "session_ttl", "change_retention")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def invitation_lifetime(self) -> dt.timedelta:
        """``invitation_ttl`` as a duration."""
        return parse_duration(self.invitation_ttl)

    @property
    def session_lifetime(self) -> dt.timedelta:
        """``session_ttl`` as a duration."""
        return parse_duration(self.session_ttl)

    @property
    def change_retention_period(self) -> dt.timedelta | None:
        """``change_retention`` as a duration; None keeps every change forever."""
        return None if self.change_retention is None else parse_duration(self.change_retention)

    @property
    def is_sqlite(self) -> bool:
        """True when the database is an SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None

    def resolved_secret(self) -> str:
        """The secret key; on SQLite one is generated once beside the database file."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.sqlite_path
        if path is None:
            raise RuntimeError("PAYROSTER_SECRET_KEY is required when the database is not an SQLite file")
        secret_file = path.with_name(path.name + ".secret")
        if not secret_file.exists():
            _publish_secret(secret_file)
        secret = secret_file.read_text().strip()
        if not secret:
            raise RuntimeError(
                f"{secret_file} is empty: delete it to have a new secret generated (signed-in sessions end), "
                "or set PAYROSTER_SECRET_KEY"
            )
        return secret


def _publish_secret(target: Path) -> None:
    """A new secret written whole under a temporary name, readable by its owner only from the start, then
    linked into place. Processes starting together on a new database (the workers of ``serve --workers N``)
    each try; the link fails for all but the first, so they all read the same secret, and none can read a
    file still being written (written in place, one worker read it empty: tests/unit/test_secret_file.py)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another process published first: theirs is the secret
            os.link(temporary, target)
    finally:
        os.unlink(temporary)
