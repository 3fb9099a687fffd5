"""The one :class:`Settings` of the service, read from the environment (``FIELDSCAN_*``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/fieldscan`` (``~/.local/share/fieldscan`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "fieldscan"


class Settings(BaseSettings):
    """Everything the service can be configured with.

    ``DATABASE_URL`` (or ``FIELDSCAN_DATABASE_URL``) selects PostgreSQL
    (``postgresql+psycopg://…``); without it the service uses SQLite in ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="FIELDSCAN_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "FIELDSCAN_DATABASE_URL")
    )
    #: JWT signing secret; when unset one is generated once and kept in the database,
    #: so that every instance behind a balancer shares it.
    secret_key: str | None = None
    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    #: Ed25519 private key (PEM) for audit checkpoints; default ``data_dir/checkpoint_ed25519.pem``.
    signing_key_file: Path | None = None
    #: Public keys (hex) of other instances' checkpoint keys that verification trusts,
    #: besides this instance's own; instances behind a balancer may share one key file instead.
    trusted_checkpoint_keys: list[str] = Field(default_factory=list)
    #: Private keys of this instance's agencies for exchange packages (issue 8);
    #: default ``data_dir/exchange_keys``.
    exchange_key_dir: Path | None = None
    #: A checkpoint is signed automatically every this many audit events.
    checkpoint_every: int = Field(default=1000, ge=1)
    #: Request bodies larger than this get 413.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Except exchange package imports (API and UI), up to this (a first package of years
    #: of seizures with raw spectra is large); the package reader refuses more than 512 MiB.
    exchange_max_package_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024
    )
    #: A laboratory net mass this much (percent) below the field net mass is a discrepancy.
    mass_tolerance_percent: float = Field(default=5.0, ge=0, le=100)
    #: argon2 cost; tests lower it, production keeps the library defaults.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    sql_echo: bool = False

    @property
    def sqlalchemy_url(self) -> str:
        """The URL to connect to: ``database_url`` or SQLite in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'fieldscan.sqlite3'}"

    @property
    def signing_key_path(self) -> Path:
        """Where the checkpoint signing key lives."""
        return self.signing_key_file or self.data_dir / "checkpoint_ed25519.pem"

    @property
    def exchange_keys_path(self) -> Path:
        """Where the agencies' exchange signing and encryption keys live."""
        return self.exchange_key_dir or self.data_dir / "exchange_keys"
