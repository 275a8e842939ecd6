"""The remote executor: runs a task on a real Bacalhau cluster over its API v1 (httpx).

It submits one Bacalhau job per execution, follows the job's history (the server keeps
returning a NextToken until the job is terminal; older servers return none, so the job is
polled as well), reports the start to the runner, and turns the cluster's final execution
into an `ExecutionOutcome` (its RunOutput read with the wire's models, the very ones our own
server writes with). Every request is retried with exponential backoff on 5xx, 429 and
dropped connections. A retried submission must not create a second job, and Bacalhau ignores
idempotency tokens, so each job carries a `klippfisk-execution` label and a retry first asks
the cluster whether a job with that label already exists. Server-owned fields are the spec's
`SERVER_OWNED`, left out of what is submitted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from klippfisk.engine.clock import SYSTEM_CLOCK, Clock
from klippfisk.engine.executors.base import (
    ExecutionHooks,
    ExecutionOutcome,
    ExecutionRequest,
    ExecutorError,
)
from klippfisk.engine.settings import BacalhauSettings
from klippfisk.engine.states import TERMINAL_STATES
from klippfisk.engine.wire import (
    JOBS_PATH,
    APIError,
    BuildVersion,
    GetJobResponse,
    ListResponse,
    PutJobResponse,
    StopJobResponse,
    WireExecution,
    WireHistory,
    WireJob,
    execution_state_name,
    uses_pre_v15_execution_states,
)
from klippfisk.spec import SERVER_OWNED

__all__ = ["EXECUTION_LABEL", "BacalhauClient", "BacalhauExecutor"]

log = logging.getLogger(__name__)

EXECUTION_LABEL = "klippfisk-execution"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
STARTED_STATES = frozenset({"BidAccepted", "Running", "Publishing", "Completed"})

ModelT = TypeVar("ModelT", bound=BaseModel)


class BacalhauClient:
    """Bacalhau's API v1 as typed calls, with retries; errors are ExecutorError sentences."""

    def __init__(
        self, settings: BacalhauSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        scheme = "https" if settings.tls else "http"
        self.base_url = f"{scheme}://{settings.host}:{settings.port}"
        headers = {"User-Agent": "klippfisk"}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=settings.request_timeout_seconds,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def version(self) -> BuildVersion:
        return self._call("GET", "/api/v1/agent/version", BuildVersion)

    def submit(self, job: dict[str, Any], token: str) -> str:
        """Submit `job` once, even across retries; returns the cluster's job id."""
        label = job.get("Labels", {}).get(EXECUTION_LABEL, "")
        response = self._call(
            "PUT",
            JOBS_PATH,
            PutJobResponse,
            params={"idempotency_token": token},
            headers={"Idempotency-Key": token},
            json={"Job": job},
            recover=lambda: self.find_labelled(label, job.get("Namespace", "")),
        )
        return response.JobID if isinstance(response, PutJobResponse) else response

    def find_labelled(self, value: str, namespace: str) -> str | None:
        """The id of a job already submitted with our execution label, if any."""
        if not value:
            return None
        params = {"labels": f"{EXECUTION_LABEL}={value}", "namespace": namespace, "limit": "1"}
        page = self._call("GET", JOBS_PATH, ListResponse[WireJob], params=params)
        return page.Items[0].ID if page.Items else None

    def get_job(self, job_id: str) -> WireJob:
        return self._call("GET", f"{JOBS_PATH}/{job_id}", GetJobResponse).Job

    def history(self, job_id: str, next_token: str) -> ListResponse[WireHistory]:
        params = {"next_token": next_token} if next_token else {}
        return self._call(
            "GET", f"{JOBS_PATH}/{job_id}/history", ListResponse[WireHistory], params=params
        )

    def executions(self, job_id: str) -> list[WireExecution]:
        path = f"{JOBS_PATH}/{job_id}/executions"
        return self._call("GET", path, ListResponse[WireExecution]).Items

    def stop(self, job_id: str, reason: str) -> None:
        self._call("DELETE", f"{JOBS_PATH}/{job_id}", StopJobResponse, json={"reason": reason})

    def _call(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        recover: Callable[[], str | None] | None = None,
    ) -> Any:
        """One API call: retried on transient faults, success is exactly 200 with a JSON body.

        `recover` runs before each retry; a non-None answer means the earlier attempt did
        take effect (its response was lost), and that answer is returned instead.
        """
        attempt = 0
        while True:
            if attempt and recover is not None:
                found = recover()
                if found is not None:
                    log.info("%s %s had already succeeded; not repeating it", method, path)
                    return found
            try:
                response = self._http.request(
                    method, path, params=params, headers=headers, json=json
                )
            except httpx.TransportError as exc:
                fault = f"the connection failed ({type(exc).__name__})"
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._parse(method, path, response, model)
                fault = f"the cluster answered {response.status_code}"
            if attempt >= self.settings.retries:
                raise ExecutorError(
                    f"Bacalhau at {self.base_url} failed {method} {path}: {fault}, "
                    f"{attempt + 1} attempts. Check the cluster is up, or raise "
                    "KLIPPFISK_BACALHAU__RETRIES."
                )
            pause = min(
                self.settings.backoff_seconds * 2**attempt, self.settings.backoff_max_seconds
            )
            log.warning("%s %s: %s; retrying in %.2fs", method, path, fault, pause)
            time.sleep(pause)
            attempt += 1

    def _parse(
        self, method: str, path: str, response: httpx.Response, model: type[ModelT]
    ) -> ModelT:
        if response.status_code == 401:
            raise ExecutorError(
                f"Bacalhau at {self.base_url} refused the credentials; set BACALHAU_API_KEY "
                "to a key the cluster accepts."
            )
        if response.status_code != 200:
            raise ExecutorError(self._error_message(method, path, response))
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ExecutorError(
                f"Bacalhau at {self.base_url} sent a {method} {path} reply that breaks its "
                f"API v1 rules ({exc.error_count()} problem(s), first: "
                f"{exc.errors()[0]['msg']}); is this really a Bacalhau API v1 server?"
            ) from None

    def _error_message(self, method: str, path: str, response: httpx.Response) -> str:
        try:
            error = APIError.model_validate_json(response.content)
        except ValidationError:
            return (
                f"Bacalhau at {self.base_url} answered {method} {path} with "
                f"{response.status_code} and no API error body: {response.text[:200]!r}"
            )
        hint = f" Hint: {error.Hint}" if error.Hint else ""
        code = error.Code or error.Status
        return f"Bacalhau refused {method} {path} ({code}): {error.Message}.{hint}"


class BacalhauExecutor:
    """Runs each execution as one job on a Bacalhau cluster and mirrors what it reports."""

    name = "bacalhau"

    def __init__(
        self,
        settings: BacalhauSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock  # our deadline for a remote job, and the pause between polls
        self.client = BacalhauClient(settings, transport=transport)
        self._pre_v15: bool | None = None

    def supports(self, engine_type: str) -> bool:
        return engine_type.lower() in {e.lower() for e in self.settings.engines}

    def close(self) -> None:
        self.client.close()

    def run(
        self, request: ExecutionRequest, hooks: ExecutionHooks, cancel: threading.Event
    ) -> ExecutionOutcome:
        """Submit, follow until terminal (or cancel, or our deadline), then read the result."""
        if cancel.is_set():
            return ExecutionOutcome(cancelled=True, error="cancelled before it was submitted")
        try:
            pre_v15 = self._numbering()
            job_id = self.client.submit(self.remote_job(request), request.execution_id)
            return _Follow(self, job_id, pre_v15, hooks, cancel, self._deadline(request)).run()
        except ExecutorError as exc:
            return ExecutionOutcome(error=str(exc))

    def remote_job(self, request: ExecutionRequest) -> dict[str, Any]:
        """The job the cluster gets: this one task, our label, no server-owned fields.

        The name is made unique per execution: Bacalhau treats a resubmitted name as a new
        version of the same job, which would let two partitions overwrite each other. Count
        is 1 because each of our executions is one partition already.
        """
        job = {k: v for k, v in request.job.items() if k not in SERVER_OWNED}
        job["Name"] = f"{job.get('Name') or 'klippfisk'}-{request.execution_id}"
        if str(job.get("Type", "batch")).lower() in ("batch", "service"):
            job["Count"] = 1
        job["Tasks"] = [request.task]
        job["Namespace"] = job.get("Namespace") or self.settings.namespace
        job["Labels"] = {**(job.get("Labels") or {}), EXECUTION_LABEL: request.execution_id}
        job["Meta"] = {
            **(job.get("Meta") or {}),
            "klippfisk.job_id": request.job_id,
            "klippfisk.task_cid": request.task_cid,
        }
        return job

    def _numbering(self) -> bool:
        """Ask the cluster its version once: execution states were renumbered in v1.5."""
        if self._pre_v15 is None:
            self._pre_v15 = uses_pre_v15_execution_states(self.client.version().GitVersion)
        return self._pre_v15

    def _deadline(self, request: ExecutionRequest) -> float:
        timeouts = request.task.get("Timeouts") or {}
        total = timeouts.get("TotalTimeout") or 0
        limit = float(total) + self.settings.poll_seconds * 5 if total else 0.0
        return self.clock.monotonic() + (limit or self.settings.max_wait_seconds)


class _Follow:
    """One remote job followed to its end; holds the little state that takes."""

    def __init__(
        self,
        executor: BacalhauExecutor,
        job_id: str,
        pre_v15: bool,
        hooks: ExecutionHooks,
        cancel: threading.Event,
        deadline: float,
    ) -> None:
        self.client, self.clock = executor.client, executor.clock
        self.poll = executor.settings.poll_seconds
        self.job_id, self.pre_v15, self.hooks = job_id, pre_v15, hooks
        self.cancel, self.deadline = cancel, deadline
        self.started = False
        self.notes = [f"bacalhau job {job_id} at {executor.client.base_url}"]

    def run(self) -> ExecutionOutcome:
        next_token = ""
        while True:
            page = self.client.history(self.job_id, next_token)
            if any(self._is_start(item) for item in page.Items):
                self._report_start()
            next_token = page.NextToken
            if not next_token:
                job = self.client.get_job(self.job_id)
                if job.State.StateType in TERMINAL_STATES:
                    return self._outcome(job)
            if self.clock.wait(self.cancel, self.poll):
                self.client.stop(self.job_id, "cancelled by klippfisk")
                return self._cut_short(cancelled=True, why="it was cancelled")
            if self.clock.monotonic() > self.deadline:
                self.client.stop(self.job_id, "klippfisk deadline passed")
                return self._cut_short(timed_out=True, why="it ran past its deadline")

    def _is_start(self, item: WireHistory) -> bool:
        if item.Type != "ExecutionLevel" or item.ExecutionState is None:
            return False
        new = item.ExecutionState.New
        return new is not None and self._state(new) in STARTED_STATES

    def _state(self, number: int) -> str:
        return execution_state_name(number, pre_v15=self.pre_v15)

    def _report_start(self) -> None:
        if self.started:
            return
        self.started = True
        nodes = sorted({e.NodeID for e in self.client.executions(self.job_id) if e.NodeID})
        node = ",".join(nodes) or "bacalhau"
        self.hooks.started(node, [*self.notes, f"running on node {node}"])

    def _outcome(self, job: WireJob) -> ExecutionOutcome:
        executions = self.client.executions(self.job_id)
        done = [e for e in executions if self._state(e.ComputeState.StateType) == "Completed"]
        if done:
            self._report_start()
            return self._completed(done[-1])
        if job.State.StateType == "Stopped":
            return ExecutionOutcome(
                cancelled=True,
                error=f"the cluster stopped job {self.job_id}: {job.State.Message or 'no reason'}",
                notes=self.notes,
            )
        reasons = [
            e.ComputeState.Message or (e.RunOutput.ErrorMsg if e.RunOutput else "")
            for e in executions
        ]
        reason = next((r for r in reversed(reasons) if r), job.State.Message or "no reason given")
        return ExecutionOutcome(
            error=f"job {self.job_id} failed on the cluster: {reason}", notes=self.notes
        )

    def _completed(self, execution: WireExecution) -> ExecutionOutcome:
        return ExecutionOutcome(
            output=execution.run_output(),
            notes=[*self.notes, f"execution {execution.ID} on node {execution.NodeID}"],
        )

    def _cut_short(
        self, *, why: str, cancelled: bool = False, timed_out: bool = False
    ) -> ExecutionOutcome:
        return ExecutionOutcome(
            error=f"job {self.job_id} was stopped on the cluster because {why}",
            cancelled=cancelled,
            timed_out=timed_out,
            notes=self.notes,
        )
