"""The contract `klippfisk.adapters.cli.main` keeps for every command: settings read once,
when needed, and every failure a one-line message with its documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from klippfisk.adapters.cli import EXIT_INTERNAL, EXIT_USAGE, job_cmds, main

HELLO = Path(__file__).parents[3] / "examples" / "hello.yaml"


def test_an_invalid_setting_is_named_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("KLIPPFISK_LEDGER__LOCK_TIMEOUT_SECONDS", "soon")

    assert main(["job", "list"]) == EXIT_USAGE

    err = capsys.readouterr().err
    assert "KLIPPFISK_LEDGER__LOCK_TIMEOUT_SECONDS: Input should be a valid integer" in err
    assert "Traceback" not in err


def test_a_section_read_from_another_tools_variables_names_that_variable(monkeypatch, capsys):
    monkeypatch.setenv("POSTGRES_PORT", "fifty")

    assert main(["job", "list"]) == EXIT_USAGE

    assert "invalid setting (POSTGRES_PORT: " in capsys.readouterr().err


def test_commands_that_need_no_settings_ignore_an_invalid_one(monkeypatch, capsys):
    monkeypatch.setenv("KLIPPFISK_LEDGER__LOCK_TIMEOUT_SECONDS", "soon")

    assert main(["spec", "validate", str(HELLO)]) == 0


def _crash(args: object) -> int:
    """A command with a bug in it: the kind of failure exit 70 exists for."""
    raise ZeroDivisionError("division by zero")


def test_a_bug_is_one_line_and_exit_70(monkeypatch, capsys):
    monkeypatch.setattr(job_cmds, "_list", _crash)

    assert main(["job", "list"]) == EXIT_INTERNAL

    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError" in err and "KLIPPFISK_DEBUG=1" in err
    assert "Traceback" not in err


def test_debug_in_the_settings_lets_the_traceback_through(monkeypatch):
    monkeypatch.setattr(job_cmds, "_list", _crash)
    monkeypatch.setenv("KLIPPFISK_DEBUG", "1")

    with pytest.raises(ZeroDivisionError):
        main(["job", "list"])
