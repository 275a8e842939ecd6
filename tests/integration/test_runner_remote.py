"""`klippfisk job run --executor bacalhau` against a real `klippfisk serve` process.

The server is a child process on 127.0.0.1 with its own data directory (its own ledger and
its embedded runner, which runs docker tasks on the host sandbox); the CLI runs in this
process with BACALHAU_API_HOST/PORT/KEY pointing at it. So the remote executor and the HTTP
API test each other through the command line: what the CLI prints and records came back
over the wire from jobs the server really ran.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klippfisk.adapters.cli import main
from klippfisk.adapters.http.server import serve_process
from klippfisk.engine import JobState, JobView, Ledger
from klippfisk.engine.executors.bacalhau import EXECUTION_LABEL
from klippfisk.engine.settings import Settings

KEY = "remote-cli-key"
SHELL_JOB = (Path(__file__).parents[1] / "data" / "jobs" / "shell-job.yaml").read_text()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `klippfisk serve` child process with its own ledger; yields its base URL."""
    env = {
        "KLIPPFISK_DATA_DIR": str(tmp_path_factory.mktemp("server-data")),
        # the operator's own key: the cluster (no Docker here) runs its docker tasks on the host
        "KLIPPFISK_SERVER__API_KEYS": json.dumps([{"key": KEY, "name": "cli", "operator": True}]),
        "KLIPPFISK_EXECUTOR__POLL_SECONDS": "0.05",
    }
    with serve_process(env=env) as (_, url):
        yield url


@pytest.fixture
def remote(cluster: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process's Bacalhau client settings at the server, as a user would."""
    host, port = cluster.removeprefix("http://").split(":")
    monkeypatch.setenv("BACALHAU_API_HOST", host)
    monkeypatch.setenv("BACALHAU_API_PORT", port)
    monkeypatch.setenv("BACALHAU_API_KEY", KEY)
    monkeypatch.setenv("KLIPPFISK_BACALHAU__POLL_SECONDS", "0.05")
    return cluster


def job_file(tmp_path: Path, script: str, name: str = "remote-cli") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        SHELL_JOB.format(
            name=name, count=1, shell="/bin/sh", script=script, memory="256Mi", timeout=60
        )
    )
    return str(path)


def local_job() -> JobView:
    ledger = Ledger.open(Settings())
    try:
        (job,) = ledger.list_jobs(limit=5).items
        return ledger.get(job.id)
    finally:
        ledger.close()


def server_job(url: str, execution_id: str) -> dict:
    """The job the server holds for one of our executions, read over its API."""
    response = httpx.get(
        f"{url}/api/v1/orchestrator/jobs",
        params={"labels": f"{EXECUTION_LABEL}={execution_id}", "limit": "1"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    (job,) = response.json()["Items"]
    return job


def test_job_run_on_the_cluster_prints_what_the_server_ran(remote, tmp_path, capsys):
    code = main(["job", "run", "--executor", "bacalhau", job_file(tmp_path, "echo over there")])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "over there\n"
    assert "Completed (exit code 0)" in err
    view = local_job()
    (execution,) = view.executions
    assert execution.executor == "bacalhau"
    assert any(note.startswith("bacalhau job j-") for note in execution.notes)
    assert server_job(remote, execution.id)["State"]["StateType"] == "Completed"


def test_follow_prints_the_remote_output_once_it_is_known(remote, tmp_path, capsys):
    code = main(
        ["job", "run", "--executor", "bacalhau", "--follow", job_file(tmp_path, "echo followed")]
    )

    out, _ = capsys.readouterr()
    assert code == 0
    assert out == "followed\n"


def test_the_setting_sends_jobs_to_the_cluster_and_a_failure_fails_the_command(
    remote, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("KLIPPFISK_EXECUTOR__DEFAULT", "bacalhau")

    code = main(["job", "run", job_file(tmp_path, "echo no >&2; exit 3")])

    _, err = capsys.readouterr()
    assert code == 1
    assert "no\n" in err
    assert "Completed (exit code 3)" in err
    assert local_job().executions[0].executor == "bacalhau"


def test_a_timeout_stops_the_job_here_and_on_the_cluster(remote, tmp_path, capsys):
    code = main(
        ["job", "run", "--executor", "bacalhau", "--timeout", "1", job_file(tmp_path, "sleep 60")]
    )

    capsys.readouterr()
    assert code == 1
    view = local_job()
    assert view.state is JobState.STOPPED
    remote_job = server_job(remote, view.executions[0].id)
    assert remote_job["State"]["StateType"] == "Stopped"


def test_an_engine_the_cluster_is_not_sent_runs_here(remote, tmp_path, capsys):
    path = tmp_path / "noop.yaml"
    path.write_text(
        "Type: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n      Type: noop\n"
    )

    code = main(["job", "run", "--executor", "bacalhau", str(path)])

    capsys.readouterr()
    assert code == 0
    assert local_job().executions[0].executor == "local"


def test_an_engine_nobody_runs_fails_in_bacalhaus_words(remote, tmp_path, capsys):
    path = tmp_path / "odd.yaml"
    path.write_text(
        "Type: batch\nCount: 1\nTasks:\n  - Name: main\n    Engine:\n      Type: vroomvroom\n"
    )

    code = main(["job", "run", "--executor", "bacalhau", str(path)])

    _, err = capsys.readouterr()
    assert code == 1
    assert "executor bacalhau, local does not support vroomvroom" in err


def test_an_unreachable_cluster_fails_the_job_with_a_sentence(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("BACALHAU_API_HOST", "127.0.0.1")
    monkeypatch.setenv("BACALHAU_API_PORT", str(port))
    monkeypatch.setenv("KLIPPFISK_BACALHAU__RETRIES", "0")

    code = main(["job", "run", "--executor", "bacalhau", job_file(tmp_path, "echo never")])

    _, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    assert "Check the cluster is up" in err
    assert local_job().state is JobState.FAILED
