"""Settings, read from ``NEXUS_*`` environment variables (and a ``.env`` file) by a factory.

Nothing is read at import time: call :func:`load_settings` at start-up. Invalid values raise
:class:`~nexus.core.errors.ConfigError` with one line naming the variable and the fix.

Variables
---------
NEXUS_DATA_DIR        folder for the database, recordings and exports (default ``./nexus-data``)
NEXUS_DATABASE_URL    any SQLAlchemy URL; default ``sqlite:///<NEXUS_DATA_DIR>/nexus.db``;
                      PostgreSQL as ``postgresql+psycopg://user:pass@host/db``
NEXUS_ENVIRONMENT     ``development`` (default), ``test`` or ``production``
NEXUS_SECRET_KEY      signs console sessions; must be set to a strong value in production
NEXUS_HOST, NEXUS_PORT  where ``nexus run`` listens (default 127.0.0.1:8000)
NEXUS_TRUSTED_PROXIES reverse proxies whose ``X-Forwarded-For`` names the client (addresses or networks, comma-
                      separated, e.g. ``127.0.0.1,10.0.0.0/8``); default none: the connection's own address counts
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nexus.core.errors import ConfigError

_DEV_SECRET = "change-me-development-only"


class Settings(BaseSettings):
    """Validated runtime settings of one Nexus process."""

    model_config = SettingsConfigDict(env_prefix="NEXUS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("nexus-data"), description="Folder for database, recordings, exports."
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in data_dir if unset.")
    environment: Literal["development", "test", "production"] = "development"
    secret_key: str = _DEV_SECRET
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    trusted_proxies: str = Field(default="", description="Reverse proxies (addresses or networks, comma-separated) "
                                                         "whose X-Forwarded-For header names the client.")

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        items = [v.strip() for v in value.split(",") if v.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"'{item}' is not an IP address or network: list the proxies' addresses, "
                                 "comma-separated (e.g. 127.0.0.1,10.0.0.0/8)") from None
        return ",".join(items)

    @property
    def proxies(self) -> list[str]:
        """The trusted proxies' addresses and networks (empty: none)."""
        return [v for v in self.trusted_proxies.split(",") if v]

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        if self.environment == "production" and (self.secret_key == _DEV_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "NEXUS_SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL actually used (SQLite inside ``data_dir`` when none is set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'nexus.db').as_posix()}"

    @property
    def uses_default_sqlite(self) -> bool:
        """True when the database lives in ``data_dir`` (so the folder must be writable)."""
        return not self.database_url


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings` from the environment, with keyword overrides.

    Raises
    ------
    ConfigError
        One line per problem, naming the environment variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "_".join(str(p) for p in err["loc"]).upper()
            var = f"NEXUS_{loc}" if loc else "settings"
            problems.append(f"{var}: {err['msg']}")
        raise ConfigError(
            "Invalid settings — " + "; ".join(problems) + ". Fix the environment variable."
        ) from None
