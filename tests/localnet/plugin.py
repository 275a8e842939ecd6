"""Pytest fixtures for the local Bluesky network (tests marked `localnet`); see network.py.

Wired in through `pytest_plugins = ["tests.localnet.plugin"]` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.localnet.network import (
    Account,
    BotProcess,
    JobServer,
    LocalNet,
    make_bot,
    running_localnet,
    serving_job_files,
)


@pytest.fixture(scope="session")
def localnet() -> Iterator[LocalNet]:
    """The network, installed on first use and started once per session."""
    with running_localnet() as net:
        yield net


@pytest.fixture(scope="session")
def job_server(localnet: LocalNet) -> Iterator[JobServer]:
    """tests/data/bluesky served inside the network (the bot's fetch allow-list names it)."""
    with serving_job_files(localnet) as server:
        yield server


@pytest.fixture()
def bot_factory(
    localnet: LocalNet, job_server: JobServer, tmp_path: Path
) -> Iterator[Callable[..., tuple[Account, BotProcess]]]:
    """make(**settings) -> (bot account, bot process); every process is killed at the end."""
    processes: list[BotProcess] = []

    def make(**bot_settings: Any) -> tuple[Account, BotProcess]:
        account, process = make_bot(localnet, job_server, tmp_path, **bot_settings)
        processes.append(process)
        return account, process

    yield make
    for process in processes:
        if process.proc is not None and process.proc.poll() is None:
            process.kill()
