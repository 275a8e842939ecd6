"""`klippfisk bot` fails with a sentence and exit 2 when it cannot start, never a traceback."""

from __future__ import annotations

import pytest

from klippfisk.adapters.cli import main


def test_an_invalid_setting_names_the_setting(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KLIPPFISK_BOT__POLL_SECONDS", "often")
    assert main(["bot"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting (KLIPPFISK_BOT__POLL_SECONDS:" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "set KLIPPFISK_BOT__HANDLE and KLIPPFISK_BOT__APP_PASSWORD"),
        (
            {
                "KLIPPFISK_BOT__SERVICE": "http://127.0.0.1:9",
                "KLIPPFISK_BOT__HANDLE": "jobs.test",
                "KLIPPFISK_BOT__APP_PASSWORD": "app-pw-never-shown",
            },
            "could not reach http://127.0.0.1:9",
        ),
    ],
)
def test_a_bot_that_cannot_log_in_says_why(monkeypatch, capsys, env, says) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["bot", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "app-pw-never-shown" not in err


def test_a_cap_that_is_not_a_quantity_names_the_setting_and_the_fix(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KLIPPFISK_BOT__MAX_MEMORY", "lots")
    assert main(["bot"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting (KLIPPFISK_BOT__MAX_MEMORY:" in err
    assert "with a unit such as" in err
    assert "Traceback" not in err
