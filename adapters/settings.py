"""The adapters' settings: the engine's, plus one section per way in.

KLIPPFISK_SERVER__* configures `klippfisk serve`, KLIPPFISK_BOT__* the Bluesky bot.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from engine.settings import Settings

__all__ = ["ApiKey", "AppSettings", "BotSettings", "ServerSettings"]


class ApiKey(BaseModel):
    """One bearer token the server accepts, and the namespace it may act in ("*" = all)."""

    key: SecretStr
    namespace: str = "default"
    name: str = Field("", description="who holds it; recorded as the actor of what it does")


class ServerSettings(BaseModel):
    """`klippfisk serve`: the Bacalhau-compatible HTTP API."""

    host: str = "127.0.0.1"
    port: int = 1234
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list, e.g. [{"key": "...", "namespace": "default", "name": "alice"}]',
    )
    anonymous: bool = Field(
        False, description="accept requests without a token (only on a loopback host)"
    )
    anonymous_namespace: str = "default"
    max_body_bytes: int = Field(1_048_576, gt=0, description="largest request body accepted")
    rate_per_second: float = Field(100.0, gt=0, description="sustained requests per token")
    rate_burst: int = Field(200, gt=0, description="requests a token may make at once")
    history_page_limit: int = Field(100, gt=0, description="history items per page by default")
    list_scan_limit: int = Field(
        5000, gt=0, description="most jobs one list request reads (sorting reads them all)"
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


class AppSettings(Settings):
    server: ServerSettings = Field(default_factory=ServerSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
