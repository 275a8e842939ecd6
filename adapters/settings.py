"""The adapters' settings: the engine's, plus one section per way in.

KLIPPFISK_SERVER__* configures `klippfisk serve`, KLIPPFISK_BOT__* the Bluesky bot.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

from klippfisk.engine.settings import Settings
from klippfisk.spec import parse_bytes, parse_cpu

__all__ = ["ApiKey", "AppSettings", "BotSettings", "ServerSettings"]


class ApiKey(BaseModel):
    """One bearer token the server accepts, and the namespace it may act in ("*" = all)."""

    key: SecretStr
    namespace: str = "default"
    name: str = Field("", description="who holds it; recorded as the actor of what it does")
    operator: bool = Field(
        False,
        description="the operator's own key: its jobs count as the operator's, so their "
        "docker tasks may run in the host sandbox when no Docker daemon answers "
        "(KLIPPFISK_EXECUTOR__HOST_FALLBACK_FOR=operator); any other key's are strangers'",
    )


class ServerSettings(BaseModel):
    """`klippfisk serve`: the Bacalhau-compatible HTTP API."""

    host: str = "127.0.0.1"
    port: int = 1234
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list, e.g. [{"key": "...", "namespace": "default", "name": "alice"}];'
        ' add "operator": true to the operator\'s own key',
    )
    anonymous: bool = Field(
        False,
        description="accept requests without a token (only on a loopback host); their jobs "
        "are strangers' (any local process can send them), not the operator's",
    )
    anonymous_namespace: str = "default"
    max_body_bytes: int = Field(1_048_576, gt=0, description="largest request body accepted")
    rate_per_second: float = Field(100.0, gt=0, description="sustained requests per token")
    rate_burst: int = Field(200, gt=0, description="requests a token may make at once")
    refused_rate_per_second: float = Field(
        0.5, gt=0, description="sustained failed authentications per client address"
    )
    refused_burst: int = Field(
        10, gt=0, description="failed authentications a client address may make at once"
    )
    rate_limit_callers: int = Field(
        100_000,
        gt=0,
        description="most keys or addresses whose request rate is tracked at once (the "
        "longest idle is forgotten first)",
    )
    history_page_limit: int = Field(100, gt=0, description="history items per page by default")
    history_head_off_loop: bool | None = Field(
        None,
        description="read the ledger head for cached history off the event loop "
        "(default: only when the store is not SQLite)",
    )
    list_scan_limit: int = Field(
        5000, gt=0, description="most jobs one list request reads to test a label selector"
    )
    log_poll_seconds: float = Field(
        0.2, gt=0, description="how often a followed log checks for new output"
    )
    runner: bool = Field(True, description="run queued jobs in the server process")


class BotSettings(BaseModel):
    """`klippfisk bot`: the Bluesky bot (KLIPPFISK_BOT__HANDLE, KLIPPFISK_BOT__APP_PASSWORD)."""

    service: str = Field("https://bsky.social", description="the bot account's PDS (or entryway)")
    handle: str = Field("", description="the bot account's handle")
    app_password: SecretStr | None = Field(None, description="an app password, never the main one")
    wait_seconds: float = Field(20.0, description="how long to wait before a follow-up reply")
    poll_seconds: float = Field(1.0, gt=0, description="pause between notification polls")
    max_concurrent: int = Field(4, gt=0, description="mentions handled (jobs waited on) at once")
    author_limit: int = Field(5, gt=0, description="mentions per author per window")
    author_window_seconds: float = Field(60.0, gt=0, description="the per-author window")
    backfill_limit: int = Field(100, gt=0, description="old mentions taken on a first start")
    max_logins: int = Field(3, gt=0, description="password logins allowed per 5 minutes")
    state_path: Path | None = Field(None, description="default <data_dir>/bot/state.db (0600)")
    fetch_max_bytes: int = Field(256 * 1024, gt=0, description="largest job file fetched")
    fetch_timeout_seconds: float = Field(20.0, gt=0, description="total time for one fetch")
    fetch_max_redirects: int = Field(3, ge=0, description="redirects followed per fetch")
    fetch_allow: list[str] = Field(
        default_factory=list,
        description="host:port pairs exempt from the public-address check (tests), JSON list",
    )
    namespace: str = Field("bluesky", min_length=1, description="the namespace of every bot job")
    max_timeout_seconds: int = Field(
        300, gt=0, description="cap on a bot job's execution, queue and total timeouts"
    )
    max_cpu: str = Field("1", description="cap on a bot job's CPU (Bacalhau quantity)")
    max_memory: str = Field("512Mi", description="cap on a bot job's memory")
    max_disk: str = Field("1Gi", description="cap on a bot job's disk")
    max_gpu: int = Field(0, ge=0, description="cap on a bot job's GPUs")
    retry_seconds: float = Field(5.0, gt=0, description="pause after a failed answer, doubled")
    retry_max_seconds: float = Field(600.0, gt=0, description="longest pause between tries")

    @field_validator("max_cpu")
    @classmethod
    def _a_cpu_quantity(cls, value: str) -> str:
        """Checked here so a typo stops `klippfisk bot` at once, with the parser's hint."""
        parse_cpu(value)
        return value

    @field_validator("max_memory", "max_disk")
    @classmethod
    def _a_byte_quantity(cls, value: str) -> str:
        parse_bytes(value)
        return value


class AppSettings(Settings):
    server: ServerSettings = Field(default_factory=ServerSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
    debug: bool = Field(
        False, description="KLIPPFISK_DEBUG=1: the CLI shows an internal error's traceback"
    )
