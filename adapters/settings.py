"""The adapters' settings: the engine's, plus a section per way in (KLIPPFISK_SERVER__*, KLIPPFISK_BOT__*)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from engine.settings import Settings

__all__ = ["AppSettings", "BotSettings", "ServerSettings"]


class ServerSettings(BaseModel):
    """`klippfisk serve`: the Bacalhau-compatible HTTP API."""

    host: str = "127.0.0.1"
    port: int = 1234


class BotSettings(BaseModel):
    """`klippfisk bot`: the Bluesky bot."""

    wait_seconds: float = Field(20.0, description="how long to wait before a follow-up reply")


class AppSettings(Settings):
    server: ServerSettings = Field(default_factory=ServerSettings)
    bot: BotSettings = Field(default_factory=BotSettings)
