"""One settings object for the engine, read from the environment (prefix KLIPPFISK_).

Nested sections use `__`: KLIPPFISK_LEDGER__PATH=/tmp/l.db. Each section belongs to one part
of the engine and only that part adds fields to it. The remote-cluster section also reads
Bacalhau's own client variables (BACALHAU_API_HOST, BACALHAU_API_PORT, BACALHAU_API_KEY) so a
user's existing Bacalhau set-up just works.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BacalhauSettings", "ExecutorSettings", "LedgerSettings", "Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """Where the ledger and results live unless told otherwise (XDG data dir)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "klippfisk"


class LedgerSettings(BaseModel):
    """Where and how events are stored."""

    store: str = Field("sqlite", description="sqlite (embedded default) or postgres")
    path: Path | None = Field(None, description="SQLite file; default <data_dir>/ledger.db")


class ExecutorSettings(BaseModel):
    """Limits and choices of the embedded executor."""

    results_dir: Path | None = Field(None, description="default <data_dir>/results")


class BacalhauSettings(BaseSettings):
    """A real Bacalhau cluster reached over its API v1, configured as Bacalhau's clients are."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("BACALHAU_API_HOST"))
    port: int = Field(1234, validation_alias=AliasChoices("BACALHAU_API_PORT"))
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("BACALHAU_API_KEY"))


class Settings(BaseSettings):
    """The engine's configuration; adapters extend it with their own sections."""

    model_config = SettingsConfigDict(
        env_prefix="KLIPPFISK_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    bacalhau: BacalhauSettings = Field(default_factory=BacalhauSettings)
