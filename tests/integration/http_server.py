"""The HTTP API test bench: a real uvicorn server on 127.0.0.1 over a real SQLite ledger.

Shared by the test_http_* files. No runner: tests move jobs along by recording on the ledger
what a runner would, so every state the API must report is reached on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from klippfisk.adapters.http import create_app
from klippfisk.adapters.http.server import running
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger
from klippfisk.engine.wire import APIError, PutJobResponse

__all__ = ["ADMIN", "ALICE", "BOB", "JOBS", "Api", "assert_error", "docker_job", "serve"]

ADMIN, ALICE, BOB = "admin-key", "alice-key", "bob-key"
KEYS = [
    {"key": ADMIN, "namespace": "*", "name": "admin"},
    {"key": ALICE, "namespace": "team-a", "name": "alice"},
    {"key": BOB, "namespace": "team-b", "name": "bob"},
]
JOBS = "/api/v1/orchestrator/jobs"


def docker_job(name: str | None = None, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "Type": "batch",
        "Count": 1,
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "docker", "Params": {"Image": "busybox:1.36"}},
            }
        ],
        **extra,
    }
    if name:
        job["Name"] = name
    return job


@dataclass
class Api:
    url: str
    ledger: Ledger

    def client(self, key: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def submit(self, key: str = ADMIN, **body: Any) -> str:
        response = self.client(key).put(JOBS, json={"Job": docker_job(), **body})
        assert response.status_code == 200, response.text
        return PutJobResponse.model_validate_json(response.content).JobID

    def run_to_end(self, job_id: str, stdout: str = "", exit_code: int = 0) -> str:
        """Record what the runner records for one execution that completes."""
        self.ledger.queue(job_id)
        execution = self.ledger.create_execution(job_id, node="node-1")
        self.ledger.start_execution(job_id, execution)
        self.ledger.complete_execution(job_id, execution, exit_code=exit_code, stdout=stdout)
        return execution


def serve(**server: Any) -> Iterator[Api]:
    settings = AppSettings(server={"api_keys": KEYS, **server})
    ledger = Ledger.open(settings)
    try:
        with running(create_app(settings, ledger)) as url:
            yield Api(url, ledger)
    finally:
        ledger.close()


def assert_error(response: httpx.Response, status: int) -> APIError:
    """Every refusal is Bacalhau's error body, with a request id and never a traceback."""
    assert response.status_code == status, response.text
    error = APIError.model_validate_json(response.content)
    assert set(response.json()) >= {"Status", "Message", "RequestID", "Code", "Component", "Hint"}
    assert error.Status == status
    assert error.RequestID == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return error
