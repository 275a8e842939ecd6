"""The remote executor against `klippfisk serve` itself: our two HTTP sides test each other.

The server runs its embedded runner (host-process path: `echo` and `sleep` from the host),
so a task sent by the remote executor really runs, and what comes back is the real thing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from klippfisk.adapters.http import create_app
from klippfisk.adapters.http.server import RunnerThread, running
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger
from klippfisk.engine.executors.bacalhau import EXECUTION_LABEL, BacalhauExecutor
from klippfisk.engine.executors.registry import default_registry
from klippfisk.engine.runner import Runner
from klippfisk.engine.settings import BacalhauSettings
from tests.integration.remote_requests import request_for

KEY = "executor-key"


class Hooks:
    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.on_start = threading.Event()

    def started(self, node: str, notes: list[str]) -> None:
        self.nodes.append(node)
        self.on_start.set()


@pytest.fixture
def served() -> Iterator[tuple[BacalhauExecutor, Ledger]]:
    # the operator's own key (a klippfisk sending work to its own server): its docker tasks
    # may run in the host sandbox, as there is no Docker daemon here
    keys = [{"key": KEY, "name": "remote", "operator": True}]
    settings = AppSettings(server={"api_keys": keys})
    ledger = Ledger.open(settings)
    runner = RunnerThread(Runner(ledger, default_registry(settings), settings))
    try:
        with running(create_app(settings, ledger, runner)) as url:
            host, port = url.removeprefix("http://").split(":")
            remote = BacalhauSettings(
                BACALHAU_API_HOST=host,
                BACALHAU_API_PORT=int(port),
                BACALHAU_API_KEY=KEY,
                poll_seconds=0.05,
            )
            executor = BacalhauExecutor(remote)
            yield executor, ledger
            executor.close()
    finally:
        ledger.close()


def test_a_task_sent_to_klippfisk_serve_runs_and_reports_back(
    served: tuple[BacalhauExecutor, Ledger], tmp_path: Path
) -> None:
    executor, ledger = served
    hooks = Hooks()
    request = request_for(tmp_path, "echo", "across the wire")
    outcome = executor.run(request, hooks, threading.Event())
    assert (outcome.error, outcome.output.exit_code) == (None, 0)
    assert outcome.output.stdout == "across the wire\n"
    assert len(hooks.nodes) == 1
    (job,) = ledger.list_jobs(limit=5).items
    assert job.job["Labels"][EXECUTION_LABEL] == request.execution_id
    assert job.source.adapter == "http"


def test_a_non_zero_exit_comes_back_as_completed(
    served: tuple[BacalhauExecutor, Ledger], tmp_path: Path
) -> None:
    executor, _ = served
    outcome = executor.run(request_for(tmp_path, "sh", "-c", "exit 4"), Hooks(), threading.Event())
    assert (outcome.error, outcome.output.exit_code) == (None, 4)


def test_cancelling_stops_the_job_on_the_server(
    served: tuple[BacalhauExecutor, Ledger], tmp_path: Path
) -> None:
    executor, ledger = served
    hooks = Hooks()
    cancel = threading.Event()
    threading.Thread(target=lambda: hooks.on_start.wait(30) and cancel.set()).start()
    outcome = executor.run(request_for(tmp_path, "sleep", "60"), hooks, cancel)
    assert outcome.cancelled
    (job,) = ledger.list_jobs(limit=5).items
    assert (str(job.state), job.message) == ("Stopped", "cancelled by klippfisk")
