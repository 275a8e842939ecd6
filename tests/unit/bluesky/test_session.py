"""Logging in: never in a loop, never without credentials, the password never logged."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from atproto import Client

from klippfisk.adapters.bluesky.session import LoginRefused, login_again
from klippfisk.adapters.bluesky.state import BotState
from klippfisk.adapters.settings import BotSettings

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port


def state_with_logins(tmp_path: Path, seconds_ago: float) -> BotState:
    """A state file recording three logins `seconds_ago`."""
    state = BotState(tmp_path / "state.db")
    for _ in range(3):
        state.record_login(time.time() - seconds_ago)
    return state


SETTINGS = BotSettings(service=UNREACHABLE, handle="bot.test", app_password="pw", max_logins=3)


def test_logins_past_the_budget_are_refused_before_asking_the_server(tmp_path: Path) -> None:
    state = state_with_logins(tmp_path, seconds_ago=10)
    with pytest.raises(LoginRefused, match="already logged in 3 times in the last 5 minutes"):
        login_again(Client(base_url=UNREACHABLE), SETTINGS, state)
    assert state.logins_since(0) == 3  # the refused attempt is not counted as a login


def test_logins_older_than_five_minutes_do_not_count(tmp_path: Path) -> None:
    state = state_with_logins(tmp_path, seconds_ago=301)
    with pytest.raises(LoginRefused, match="could not reach http://127.0.0.1:9"):
        login_again(Client(base_url=UNREACHABLE), SETTINGS, state)  # it did try
    assert state.logins_since(time.time() - 60) == 1


def test_no_credentials_is_a_clear_error(tmp_path: Path) -> None:
    state = BotState(tmp_path / "state.db")
    with pytest.raises(
        LoginRefused, match="set KLIPPFISK_BOT__HANDLE and KLIPPFISK_BOT__APP_PASSWORD"
    ):
        login_again(Client(base_url=UNREACHABLE), BotSettings(service=UNREACHABLE), state)


def test_the_password_is_secret_in_settings_reprs() -> None:
    settings = BotSettings(handle="bot.test", app_password="hunter2-app-pw")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
