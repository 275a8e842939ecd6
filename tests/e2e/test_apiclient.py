"""Bacalhau's own Python client (bacalhau-apiclient 1.4.1, written by nobody here) against
`klippfisk serve` started as a real process on 127.0.0.1 with its embedded runner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
from bacalhau_apiclient.api_client import ApiClient
from bacalhau_apiclient.configuration import Configuration
from bacalhau_apiclient.models.api_put_job_request import ApiPutJobRequest
from bacalhau_apiclient.models.job import Job
from bacalhau_apiclient.models.spec_config import SpecConfig
from bacalhau_apiclient.models.task import Task
from bacalhau_apiclient.rest import ApiException

from klippfisk.adapters.http.server import serve_process

API_KEY = "e2e-secret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "KLIPPFISK_DATA_DIR": str(tmp_path_factory.mktemp("serve-data")),
        # the operator's own key: its docker jobs may run in the host sandbox (no Docker here)
        "KLIPPFISK_SERVER__API_KEYS": json.dumps(
            [{"key": API_KEY, "name": "e2e", "operator": True}]
        ),
    }
    with serve_process(env=env) as (_, url):
        yield url


@pytest.fixture(scope="module")
def api(server: str) -> OrchestratorApi:
    config = Configuration()
    config.host = server
    client = ApiClient(config, header_name="Authorization", header_value=f"Bearer {API_KEY}")
    return OrchestratorApi(client)


def submit(api: OrchestratorApi, *command: str, name: str) -> str:
    engine = SpecConfig(
        type="docker", params={"Image": "busybox:1.36", "Entrypoint": list(command)}
    )
    job = Job(name=name, type="batch", count=1, tasks=[Task(name="main", engine=engine)])
    response = api.orchestratorput_job(ApiPutJobRequest(job=job, namespace="default"))
    assert response.job_id.startswith("j-")
    return str(response.job_id)


def wait_for(api: OrchestratorApi, job_id: str, states: set[str]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = api.orchestratorget_job(job_id).job
        if job.state.state_type in states:
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} never reached {states}")


def test_submit_get_history_and_executions_of_a_job_that_runs(api: OrchestratorApi) -> None:
    job_id = submit(api, "echo", "hello from klippfisk", name="e2e-echo")
    job = wait_for(api, job_id, {"Completed", "Failed"})
    assert job.state.state_type == "Completed"
    assert job.name == "e2e-echo"
    assert isinstance(job.create_time, int)

    full = api.orchestratorget_job(job_id, include="history,executions")
    assert [e.run_output.stdout for e in full.executions.items] == ["hello from klippfisk\n"]
    assert full.history.items[0].job_state.new == "Pending"

    history = api.orchestratorjob_history(job_id)
    assert history.next_token == "", "a finished job's history has no next page"
    assert history.items[0].job_state.new == "Pending"
    execution_states = [h.execution_state.new for h in history.items if h.type == "ExecutionLevel"]
    assert execution_states[-1] == 9

    executions = api.orchestratorjob_executions(job_id, order_by="created_at")
    (execution,) = executions.items
    assert execution.compute_state.state_type == 9
    assert execution.run_output.exit_code == 0


def test_list_shows_submitted_jobs(api: OrchestratorApi) -> None:
    job_id = submit(api, "echo", "listed", name="e2e-listed")
    listed = api.orchestratorlist_jobs(limit=100)
    assert job_id in [j.id for j in listed.items]
    assert listed.next_token == ""


def test_stop_a_running_job_with_a_reason(api: OrchestratorApi) -> None:
    job_id = submit(api, "sleep", "60", name="e2e-sleeper")
    wait_for(api, job_id, {"Running"})
    api.orchestratorstop_job(job_id, reason="e2e says stop")
    job = wait_for(api, job_id, {"Stopped"})
    assert job.state.message == "e2e says stop"
    (execution,) = api.orchestratorjob_executions(job_id, order_by="created_at").items
    assert execution.compute_state.state_type == 11


def test_errors_reach_the_client_as_bacalhau_error_bodies(api: OrchestratorApi) -> None:
    with pytest.raises(ApiException) as caught:
        api.orchestratorget_job("j-00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    body = json.loads(caught.value.body)
    assert body["Code"] == "NotFound"
    assert body["RequestID"]


def test_a_wrong_key_is_refused(server: str) -> None:
    config = Configuration()
    config.host = server
    client = ApiClient(config, header_name="Authorization", header_value="Bearer wrong")
    with pytest.raises(ApiException) as caught:
        OrchestratorApi(client).orchestratorlist_jobs()
    assert caught.value.status == 401
