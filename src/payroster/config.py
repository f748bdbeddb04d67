"""Settings from the environment (``PAYROSTER_`` prefix); built by the caller, never at import."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything PayRoster reads from its environment (contract §2)."""

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
    db_pool_size: int = Field(default=10, description="PostgreSQL connection pool size")

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
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return secret_file.read_text().strip()
