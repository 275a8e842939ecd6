"""Choices read from the engine late still show in help and still refuse a wrong value."""

from __future__ import annotations

import pytest

from klippfisk.adapters.cli import EXIT_USAGE, main


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["job", "list"], "--state {Pending,Queued,Running,Completed,Failed,Stopped}"),
        (["job", "history"], "--event-type {all,job,execution}"),
        (["job", "run"], "--executor {local,bacalhau}"),
    ],
    ids=["job-states", "event-types", "executors"],
)
def test_help_lists_the_engines_choices(command, shown, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])

    assert exited.value.code == 0
    assert shown in capsys.readouterr().out


def test_a_value_outside_them_is_a_usage_error_naming_each_choice(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["job", "run", "--executor", "mars", "job.yaml"])

    assert exited.value.code == EXIT_USAGE
    assert "invalid choice: 'mars' (choose from 'local', 'bacalhau')" in capsys.readouterr().err
