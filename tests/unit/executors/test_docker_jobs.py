"""Docker-engine jobs end to end: `klippfisk job run` with DOCKER_HOST set, and the ledger's
record of a container cut short. The daemon is the Engine-API-shaped test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from klippfisk.adapters.cli import main
from klippfisk.engine import JobState, JobView, Ledger
from klippfisk.engine.settings import Settings

SHELL_JOB = (Path(__file__).parents[2] / "data" / "jobs" / "shell-job.yaml").read_text()


@pytest.fixture
def docker_host(dockerd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{dockerd.socket}")


def job_file(tmp_path: Path, script: str, timeout: int = 60) -> str:
    path = tmp_path / "job.yaml"
    text = SHELL_JOB.format(
        name="docker-job", count=1, shell="sh", script=script, memory="256Mi", timeout=timeout
    )
    path.write_text(text.replace("ubuntu:24.04", "busybox:1.36"))
    return str(path)


def only_job() -> tuple[JobView, list[dict[str, Any]]]:
    ledger = Ledger.open(Settings())
    try:
        (job,) = ledger.list_jobs().items
        return ledger.get(job.id), ledger.history(job.id)
    finally:
        ledger.close()


def test_job_run_uses_the_daemon_docker_host_names(docker_host, tmp_path, capsys):
    code = main(["job", "run", job_file(tmp_path, "echo from a container")])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "from a container\n"
    view, _ = only_job()
    (execution,) = view.executions
    assert any(note.startswith("docker container") for note in execution.notes)
    assert not any("ran on host" in note for note in execution.notes)


def test_a_container_past_its_deadline_is_a_timed_out_failed_job(docker_host, tmp_path, capsys):
    code = main(["job", "run", job_file(tmp_path, "sleep 30", timeout=1)])

    capsys.readouterr()
    assert code == 1
    view, history = only_job()
    assert view.state is JobState.FAILED
    assert [e for e in history if e["Event"]["Topic"] == "Exec Timeout"]
