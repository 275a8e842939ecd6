"""Staging inputs counts against the task's deadline and heeds a stop.

A loopback server that sends its headers and then nothing stands in for a slow or hostile
download; the executor must end the execution at its ExecutionTimeout or at a stop, marked
as such, instead of waiting for the download's own (longer) time limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.executors.stalling_server import stalling_server


@pytest.fixture
def stalled() -> Iterator[str]:
    """host:port of a server whose downloads never finish."""
    with stalling_server() as server:
        yield server.entry


def _noop_task(url: str, timeout: float) -> dict[str, Any]:
    return {
        "Name": "main",
        "Engine": {"Type": "noop"},
        "InputSources": [
            {"Source": {"Type": "urlDownload", "Params": {"URL": url}}, "Target": "/in"}
        ],
        "Timeouts": {"ExecutionTimeout": timeout},
    }


def _allowing(entry: str) -> dict[str, Any]:
    # The download's own limit is far longer than the task's: the task's must win.
    return {"url_allow": [entry], "url_timeout_seconds": 20}


def test_a_stalled_download_ends_at_the_execution_timeout(run_task, stalled):
    run = run_task(_noop_task(f"http://{stalled}/big", 0.5), executor_settings=_allowing(stalled))

    assert run.outcome.timed_out is True
    assert run.outcome.cancelled is False
    assert "timed out after 0.5s while staging its inputs" in run.outcome.error
    assert run.hooks.calls == []


def test_a_stop_during_staging_cancels_the_execution(run_task, stalled):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()

    run = run_task(
        _noop_task(f"http://{stalled}/big", 60),
        cancel=cancel,
        executor_settings=_allowing(stalled),
    )

    assert run.outcome.cancelled is True
    assert run.outcome.timed_out is False
    assert "stopped while staging" in run.outcome.error
