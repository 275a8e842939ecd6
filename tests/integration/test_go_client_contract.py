"""Bacalhau's Go CLI, replayed: its exact request bodies and query strings, and the rules
its client (pkg/publicapi/client/v2) applies to what comes back.

The Go rules: success is exactly 200 with a non-empty JSON body (a 0-byte 200 is an error);
any other status is decoded as `{Status, Message, RequestID, Code, Component, Hint}`; job
state, network and history type are strings, execution states integers, times RFC 3339
with a zone, Create/ModifyTime int64 nanoseconds, lists `{"Items": [...], "NextToken": ""}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from klippfisk.adapters.http import create_app
from klippfisk.adapters.http.server import running
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger
from klippfisk.engine.wire import (
    APIError,
    BuildVersion,
    GetJobResponse,
    ListResponse,
    PutJobResponse,
    StopJobResponse,
    WireExecution,
    WireHistory,
    WireJob,
)

KEY = "go-cli-key"
JOBS = "/api/v1/orchestrator/jobs"

# `bacalhau job run job.yaml` for a docker job: marshaller.UnmarshalJob normalises the job,
# then PutJobRequest is encoded whole (BaseRequest fields have no json tags, so they ride
# along; server-owned fields are zeros; empty omitempty task fields are left out).
GO_PUT_BODY: dict[str, Any] = {
    "Namespace": "",
    "Credential": {"Scheme": "Bearer", "Value": KEY},
    "IdempotencyToken": "",
    "Job": {
        "ID": "",
        "Name": "",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {},
        "Labels": {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {
                    "Type": "docker",
                    "Params": {"Image": "ubuntu:24.04", "Entrypoint": ["echo", "hello"]},
                },
                "Publisher": {"Type": ""},
                "Resources": {},
                "Network": {"Type": "Default"},
                "Timeouts": {},
            }
        ],
        "State": {"StateType": "Undefined"},
        "Version": 0,
        "Revision": 0,
        "CreateTime": 0,
        "ModifyTime": 0,
    },
    "Force": False,
}
GO_HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Content-Type": "application/json",
    "Accept-Encoding": "gzip",
    "X-Bacalhau-App-ID": "bacalhau-cli",
    "X-Bacalhau-Git-Version": "v1.5.2",
}


@pytest.fixture
def go() -> Iterator[tuple[httpx.Client, Ledger]]:
    settings = AppSettings(server={"api_keys": [{"key": KEY, "name": "go"}]})
    ledger = Ledger.open(settings)
    try:
        with (
            running(create_app(settings, ledger)) as url,
            httpx.Client(base_url=url, headers=GO_HEADERS) as client,
        ):
            yield client, ledger
    finally:
        ledger.close()


def go_decode(response: httpx.Response, model: type[BaseModel]) -> Any:
    """What the Go client does with an answer: 200 + body, or an APIError."""
    assert response.status_code == 200, response.text
    assert response.content, "the Go client refuses a 0-byte 200"
    assert response.headers["content-type"].startswith("application/json")
    return model.model_validate_json(response.content)


def submit(client: httpx.Client) -> str:
    return str(go_decode(client.put(JOBS, json=GO_PUT_BODY), PutJobResponse).JobID)


def run_once(ledger: Ledger, job_id: str) -> None:
    ledger.queue(job_id)
    execution = ledger.create_execution(job_id, node="node-1")
    ledger.start_execution(job_id, execution)
    ledger.complete_execution(job_id, execution, exit_code=0, stdout="hello\n")


def test_job_run_submits_the_go_clis_exact_body(go: tuple[httpx.Client, Ledger]) -> None:
    client, ledger = go
    response = go_decode(client.put(JOBS, json=GO_PUT_BODY), PutJobResponse)
    assert response.Warnings is not None
    assert ledger.get(response.JobID).engine == "docker"


def test_job_run_progress_polls_history_until_the_token_runs_out(
    go: tuple[httpx.Client, Ledger],
) -> None:
    """cmd/util/printer: every 500ms History(EventType=all, JobVersion, Limit=10, NextToken)."""
    client, ledger = go
    job_id = submit(client)
    job = go_decode(client.get(f"{JOBS}/{job_id}"), GetJobResponse).Job
    token, events, polls = "", [], 0
    while polls < 20:
        params = {"event_type": "all", "job_version": str(job.Version), "limit": "10"}
        if token:
            params["next_token"] = token
        page = go_decode(client.get(f"{JOBS}/{job_id}/history", params=params), _History)
        events += page.Items
        polls += 1
        if polls == 2:
            run_once(ledger, job_id)
        if not page.NextToken:
            break
        token = page.NextToken
    assert polls < 20, "the token must run out once the job is terminal"
    assert [e.SeqNum for e in events] == list(range(1, len(events) + 1))
    final = go_decode(client.get(f"{JOBS}/{job_id}"), GetJobResponse).Job
    assert final.State.StateType == "Completed"


_History = ListResponse[WireHistory]


def test_job_describe_reads_job_history_and_executions(go: tuple[httpx.Client, Ledger]) -> None:
    client, ledger = go
    job_id = submit(client)
    run_once(ledger, job_id)
    described = go_decode(
        client.get(f"{JOBS}/{job_id}", params={"include": "history,executions"}),
        GetJobResponse,
    )
    assert described.Executions.Items[0].ComputeState.StateType == 9
    executions = go_decode(
        client.get(f"{JOBS}/{job_id}/executions", params={"order_by": "modified_at"}),
        ListResponse[WireExecution],
    )
    assert executions.Items[0].RunOutput.Stdout == "hello\n"
    raw = client.get(f"{JOBS}/{job_id}/executions").json()["Items"][0]
    assert isinstance(raw["DesiredState"]["StateType"], int)
    assert "stderr" in raw["RunOutput"]


def test_job_list_with_labels_order_and_paging(go: tuple[httpx.Client, Ledger]) -> None:
    client, _ = go
    submit(client)
    params = {"limit": "10", "order_by": "created_at", "reverse": "true", "labels": "env!=prod"}
    page = go_decode(client.get(JOBS, params=params), ListResponse[WireJob])
    assert len(page.Items) == 1
    assert page.NextToken == ""
    assert isinstance(page.Items[0].Tasks[0]["Network"]["Type"], str)


def test_job_stop_sends_its_reason_in_a_json_body(go: tuple[httpx.Client, Ledger]) -> None:
    client, ledger = go
    job_id = submit(client)
    body = {"Namespace": "", "Credential": None, "IdempotencyToken": "", "reason": "go stop"}
    go_decode(client.request("DELETE", f"{JOBS}/{job_id}", json=body), StopJobResponse)
    assert ledger.get(job_id).message == "go stop"


def test_agent_endpoints_decode_as_the_go_types(go: tuple[httpx.Client, Ledger]) -> None:
    client, _ = go
    assert client.get("/api/v1/agent/alive").json() == {"Status": "OK"}
    version = go_decode(client.get("/api/v1/agent/version"), BuildVersion)
    assert version.GitVersion.startswith("v1.")
    node = client.get("/api/v1/agent/node").json()
    assert isinstance(node["NodeType"], str)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"{JOBS}/j-no-such-job", None, 404),
        ("PUT", JOBS, {"Job": {"Type": "batch", "Tasks": []}}, 400),
        ("GET", f"{JOBS}?limit=-1", None, 400),
        ("DELETE", f"{JOBS}/j-no-such-job", {"reason": "x"}, 404),
    ],
)
def test_failures_decode_as_go_api_errors(
    go: tuple[httpx.Client, Ledger], method: str, path: str, body: Any, status: int
) -> None:
    client, _ = go
    response = client.request(method, path, json=body)
    assert response.status_code == status
    error = APIError.model_validate_json(response.content)
    assert (error.Status, bool(error.Message), bool(error.Code)) == (status, True, True)
    assert error.RequestID


def test_an_expired_key_is_a_plain_401(go: tuple[httpx.Client, Ledger]) -> None:
    client, _ = go
    response = client.get(JOBS, headers={"Authorization": "Bearer expired"})
    assert response.status_code == 401
    assert APIError.model_validate_json(response.content).Code == "Unauthorized"
