"""The remote executor against a Bacalhau-shaped cluster served on 127.0.0.1.

The cluster below is a real HTTP server (stdlib, its own thread) that speaks the Go wire
rules, ignores idempotency tokens as Bacalhau does, advances each job one step per history
poll (no timing involved) and injects faults on demand: 5xx answers, connections dropped
before a request is handled, and, the nasty one, dropped after it was handled.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from klippfisk.engine.executors.bacalhau import EXECUTION_LABEL, BacalhauExecutor
from klippfisk.engine.settings import BacalhauSettings
from klippfisk.engine.wire import (
    GetJobResponse,
    ListResponse,
    PagingToken,
    WireExecution,
    WireHistory,
    WireJob,
)
from tests.integration.remote_requests import request_for

# Bacalhau's execution state numbers, as pkg/models/execution.go defines them per version.
NUMBERS_V15 = {"New": 1, "BidAccepted": 5, "Running": 6, "Completed": 9, "Failed": 10}
NUMBERS_V15 |= {"Cancelled": 11}
NUMBERS_PRE_V15 = {"New": 1, "BidAccepted": 5, "Completed": 7, "Failed": 8, "Cancelled": 9}


def now() -> tuple[str, int]:
    moment = datetime.now(UTC)
    return moment.isoformat(), int(moment.timestamp() * 1e9)


class Cluster:
    """A Bacalhau orchestrator's state, enough for one-task batch jobs."""

    def __init__(self, version: str, api_key: str | None) -> None:
        self.version = version
        self.api_key = api_key
        self.numbers = NUMBERS_PRE_V15 if version < "v1.5" else NUMBERS_V15
        self.jobs: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.calls: list[str] = []
        self.stop_reasons: dict[str, str] = {}
        self.lock = threading.Lock()
        self.port = 0

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = dict(body["Job"])
        engine = (job.get("Tasks") or [{}])[0].get("Engine", {}).get("Type", "")
        if engine not in {"docker", "wasm"}:
            return 400, error(
                400, f"unsupported engine {engine!r}", "ValidationError", "use docker"
            )
        stamp, nanos = now()
        job_id = f"j-{uuid.uuid4()}"
        job |= {"ID": job_id, "Name": job.get("Name") or job_id, "Version": 1, "Revision": 1}
        job |= {"State": {"StateType": "Pending"}, "CreateTime": nanos, "ModifyTime": nanos}
        record = {"job": job, "history": [], "executions": [], "step": 0}
        self.jobs[job_id] = record
        self._job_event(record, "Undefined", "Pending", "Submission", "Job submitted")
        return 200, {"JobID": job_id, "EvaluationID": str(uuid.uuid4()), "Warnings": []}

    def advance(self, record: dict[str, Any]) -> None:
        """One step of the job's life per history poll: create, run, finish."""
        job = record["job"]
        if job["State"]["StateType"] in {"Completed", "Failed", "Stopped"}:
            return
        record["step"] += 1
        params = job["Tasks"][0]["Engine"].get("Params", {})
        command = [*params.get("Entrypoint", []), *params.get("Parameters", [])]
        if record["step"] == 1:
            _, nanos = now()
            record["executions"].append(
                {
                    "ID": f"e-{uuid.uuid4()}",
                    "Namespace": job["Namespace"],
                    "JobID": job["ID"],
                    "NodeID": "n-fake-1",
                    "DesiredState": {"StateType": 1},
                    "ComputeState": {"StateType": self.numbers["New"]},
                    "CreateTime": nanos,
                    "ModifyTime": nanos,
                }
            )
            self._execution_event(record, "Undefined", "New")
            self._job_event(record, "Pending", "Running", "State Update", "Job running")
        elif record["step"] == 2:
            started = "Running" if "Running" in self.numbers else "BidAccepted"
            self._execution_event(record, "New", started)
        elif command[:1] != ["sleep"]:
            self._finish(record, command)

    def _finish(self, record: dict[str, Any], command: list[str]) -> None:
        execution = record["executions"][-1]
        previous = next(k for k, v in self.numbers.items() if v == self._state(execution))
        if command[:1] == ["echo"]:
            output = {"Stdout": " ".join(command[1:]) + "\n", "stderr": "", "ExitCode": 0}
        elif command[:1] == ["false"]:
            output = {"Stdout": "", "stderr": "", "ExitCode": 1}
        else:
            execution["ComputeState"]["Message"] = f"exec: {command[0]!r}: not found"
            self._execution_event(record, previous, "Failed")
            self._job_event(record, "Running", "Failed", "State Update", "Job failed")
            return
        execution["RunOutput"] = {"StdoutTruncated": False, "StderrTruncated": False} | output
        execution["RunOutput"]["ErrorMsg"] = ""
        self._execution_event(record, previous, "Completed")
        self._job_event(record, "Running", "Completed", "State Update", "Job completed")

    def stop(self, job_id: str, reason: str) -> dict[str, Any]:
        record = self.jobs[job_id]
        self.stop_reasons[job_id] = reason
        if record["job"]["State"]["StateType"] not in {"Completed", "Failed", "Stopped"}:
            for execution in record["executions"]:
                previous = next(k for k, v in self.numbers.items() if v == self._state(execution))
                self._execution_event(record, previous, "Cancelled", execution)
            old = record["job"]["State"]["StateType"]
            self._job_event(record, old, "Stopped", "State Update", reason)
            record["job"]["State"]["Message"] = reason
        return {"EvaluationID": str(uuid.uuid4())}

    def history(self, job_id: str, token: str) -> dict[str, Any]:
        record = self.jobs[job_id]
        self.advance(record)
        offset = PagingToken.decode(token).offset if token else 0
        items = record["history"][offset:]
        terminal = record["job"]["State"]["StateType"] in {"Completed", "Failed", "Stopped"}
        next_token = "" if terminal else PagingToken(offset=offset + len(items)).encode()
        return {"Items": items, "NextToken": next_token}

    def _state(self, execution: dict[str, Any]) -> int:
        return execution["ComputeState"]["StateType"]

    def _job_event(self, record: dict[str, Any], old: str, new: str, topic: str, text: str) -> None:
        stamp, nanos = now()
        record["job"]["State"]["StateType"] = new
        record["job"]["ModifyTime"] = nanos
        record["history"].append(
            {
                "SeqNum": len(record["history"]) + 1,
                "Type": "JobLevel",
                "JobID": record["job"]["ID"],
                "JobVersion": 1,
                "Time": stamp,
                "JobState": {"Previous": old, "New": new},
                "Event": {"Message": text, "Topic": topic, "Timestamp": stamp},
            }
        )

    def _execution_event(
        self, record: dict[str, Any], old: str, new: str, execution: dict[str, Any] | None = None
    ) -> None:
        stamp, _ = now()
        execution = execution or record["executions"][-1]
        execution["ComputeState"]["StateType"] = self.numbers[new]
        record["history"].append(
            {
                "SeqNum": len(record["history"]) + 1,
                "Type": "ExecutionLevel",
                "JobID": record["job"]["ID"],
                "JobVersion": 1,
                "ExecutionID": execution["ID"],
                "Time": stamp,
                "ExecutionState": {
                    "Previous": self.numbers.get(old, 0),
                    "New": self.numbers[new],
                },
                "Event": {"Message": new, "Topic": "Execution", "Timestamp": stamp},
            }
        )


def error(status: int, message: str, code: str, hint: str = "") -> dict[str, Any]:
    return {
        "Status": status,
        "Message": message,
        "RequestID": str(uuid.uuid4()),
        "Code": code,
        "Component": "Orchestrator",
        "Hint": hint,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ClusterServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not access logs."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        cluster = self.server.cluster
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        parts = url.path.removeprefix("/api/v1/orchestrator/jobs").strip("/").split("/")
        route = self._route(method, url.path, parts)
        with cluster.lock:
            cluster.calls.append(route)
            fault = cluster.faults[route].popleft() if cluster.faults[route] else ""
        if fault == "drop":
            self.close_connection = True
            return
        if fault in {"500", "502", "503"}:
            self._send(int(fault), error(int(fault), "injected fault", "InternalError"))
            return
        if cluster.api_key and self.headers.get("Authorization") != f"Bearer {cluster.api_key}":
            self._send(401, error(401, "invalid token", "Unauthorized"))
            return
        with cluster.lock:
            status, answer = self._answer(route, parts, query, body)
        if fault == "drop_after":
            self.close_connection = True
            return
        self._send(status, answer)

    @staticmethod
    def _route(method: str, path: str, parts: list[str]) -> str:
        if path == "/api/v1/agent/version":
            return "version"
        if not path.startswith("/api/v1/orchestrator/jobs"):
            return "unknown"
        if parts == [""]:
            return {"PUT": "submit", "GET": "list"}.get(method, "unknown")
        if len(parts) == 1:
            return {"GET": "get", "DELETE": "stop"}.get(method, "unknown")
        return parts[1] if method == "GET" else "unknown"

    def _answer(
        self, route: str, parts: list[str], query: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        cluster = self.server.cluster
        if route == "version":
            return 200, {"GitVersion": cluster.version, "BuildDate": "2024-06-01T10:00:00Z"}
        if route == "submit":
            return cluster.submit(body)
        if route == "list":
            key, _, value = query.get("labels", "").partition("=")
            items = [
                r["job"] for r in cluster.jobs.values() if r["job"]["Labels"].get(key) == value
            ]
            return 200, {"Items": items, "NextToken": ""}
        if route == "unknown" or parts[0] not in cluster.jobs:
            return 404, error(404, f"job {parts[0]} not found", "NotFound")
        record = cluster.jobs[parts[0]]
        if route == "get":
            return 200, {"Job": record["job"]}
        if route == "stop":
            return 200, cluster.stop(parts[0], body.get("reason", ""))
        if route == "history":
            return 200, cluster.history(parts[0], query.get("next_token", ""))
        return 200, {"Items": record["executions"], "NextToken": ""}

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ClusterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.cluster = cluster


def serve(version: str = "v1.5.2", api_key: str | None = None) -> Iterator[Cluster]:
    cluster = Cluster(version, api_key)
    server = ClusterServer(cluster)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    cluster.port = server.server_address[1]
    try:
        yield cluster
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    yield from serve()


class Hooks:
    def __init__(self) -> None:
        self.started_calls: list[tuple[str, list[str]]] = []
        self.on_start = threading.Event()

    def started(self, node: str, notes: list[str]) -> None:
        self.started_calls.append((node, notes))
        self.on_start.set()


def executor_for(cluster: Cluster, **overrides: Any) -> BacalhauExecutor:
    settings = BacalhauSettings(
        BACALHAU_API_HOST="127.0.0.1",
        BACALHAU_API_PORT=cluster.port,
        poll_seconds=0.01,
        backoff_seconds=0.01,
        retries=overrides.pop("retries", 3),
        **overrides,
    )
    return BacalhauExecutor(settings)


def test_runs_a_task_on_the_cluster_and_mirrors_its_output(
    cluster: Cluster, tmp_path: Path
) -> None:
    hooks = Hooks()
    request = request_for(tmp_path, "echo", "hello", "cod")
    outcome = executor_for(cluster).run(request, hooks, threading.Event())
    assert outcome.error is None
    assert outcome.output.exit_code == 0
    assert outcome.output.stdout == "hello cod\n"
    assert [node for node, _ in hooks.started_calls] == ["n-fake-1"]
    (remote,) = cluster.jobs.values()
    assert remote["job"]["Labels"] == {"team": "fish", EXECUTION_LABEL: request.execution_id}
    assert remote["job"]["Meta"]["klippfisk.job_id"] == "j-local"
    assert remote["job"]["Name"] == f"hello-{request.execution_id}"
    assert remote["job"]["Count"] == 1, "each of our executions is one partition"
    assert any(remote["job"]["ID"] in note for note in outcome.notes)


def test_a_non_zero_exit_is_a_completed_execution(cluster: Cluster, tmp_path: Path) -> None:
    outcome = executor_for(cluster).run(request_for(tmp_path, "false"), Hooks(), threading.Event())
    assert (outcome.output.exit_code, outcome.error) == (1, None)


def test_a_failed_execution_reports_the_clusters_reason(cluster: Cluster, tmp_path: Path) -> None:
    outcome = executor_for(cluster).run(
        request_for(tmp_path, "frobnicate"), Hooks(), threading.Event()
    )
    assert outcome.output is None
    assert outcome.error is not None
    assert "'frobnicate': not found" in outcome.error


def test_a_pre_v15_cluster_reports_completed_as_7(tmp_path: Path) -> None:
    for old in serve(version="v1.4.0"):
        hooks = Hooks()
        outcome = executor_for(old).run(
            request_for(tmp_path, "echo", "old"), hooks, threading.Event()
        )
        assert (outcome.output.exit_code, outcome.output.stdout) == (0, "old\n")
        assert len(hooks.started_calls) == 1
        (remote,) = old.jobs.values()
        assert remote["executions"][0]["ComputeState"]["StateType"] == 7


def test_submission_survives_500s_and_a_lost_reply_without_a_duplicate(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.faults["submit"].extend(["500", "503", "drop_after"])
    outcome = executor_for(cluster).run(
        request_for(tmp_path, "echo", "once"), Hooks(), threading.Event()
    )
    assert outcome.output.stdout == "once\n"
    assert len(cluster.jobs) == 1, "the retry after a lost reply must not submit again"
    assert cluster.calls.count("submit") == 3


def test_following_survives_dropped_connections_and_5xx(cluster: Cluster, tmp_path: Path) -> None:
    cluster.faults["history"].extend(["drop", "502", "drop"])
    cluster.faults["executions"].append("500")
    cluster.faults["version"].append("drop")
    outcome = executor_for(cluster).run(
        request_for(tmp_path, "echo", "ok"), Hooks(), threading.Event()
    )
    assert (outcome.output.exit_code, outcome.output.stdout) == (0, "ok\n")


def test_gives_up_after_its_retries_with_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    cluster.faults["submit"].extend(["500"] * 10)
    outcome = executor_for(cluster, retries=2).run(
        request_for(tmp_path, "echo", "x"), Hooks(), threading.Event()
    )
    assert outcome.error is not None
    assert "answered 500, 3 attempts" in outcome.error
    assert "KLIPPFISK_BACALHAU__RETRIES" in outcome.error
    assert cluster.jobs == {}


def test_cancel_stops_the_remote_job_with_a_reason(cluster: Cluster, tmp_path: Path) -> None:
    hooks = Hooks()
    cancel = threading.Event()
    canceller = threading.Thread(target=lambda: hooks.on_start.wait(10) and cancel.set())
    canceller.start()
    outcome = executor_for(cluster).run(request_for(tmp_path, "sleep", "600"), hooks, cancel)
    canceller.join()
    assert outcome.cancelled
    (job_id,) = cluster.jobs
    assert cluster.stop_reasons == {job_id: "cancelled by klippfisk"}
    assert cluster.jobs[job_id]["job"]["State"]["StateType"] == "Stopped"
    assert cluster.jobs[job_id]["executions"][0]["ComputeState"]["StateType"] == 11


def test_a_job_past_its_deadline_is_stopped_on_the_cluster(
    cluster: Cluster, tmp_path: Path
) -> None:
    outcome = executor_for(cluster, max_wait_seconds=0.2).run(
        request_for(tmp_path, "sleep", "600"), Hooks(), threading.Event()
    )
    assert outcome.timed_out
    assert "deadline" in (outcome.error or "")
    (job_id,) = cluster.jobs
    assert cluster.stop_reasons[job_id] == "klippfisk deadline passed"


def test_the_api_key_goes_as_a_bearer_token(tmp_path: Path) -> None:
    for guarded in serve(api_key="s3cret"):
        ok = executor_for(guarded, BACALHAU_API_KEY="s3cret").run(
            request_for(tmp_path, "echo", "in"), Hooks(), threading.Event()
        )
        assert ok.output.stdout == "in\n"
        refused = executor_for(guarded).run(
            request_for(tmp_path, "echo", "out"), Hooks(), threading.Event()
        )
        assert "set BACALHAU_API_KEY" in (refused.error or "")


def test_a_refused_submission_carries_the_clusters_message_and_hint(
    cluster: Cluster, tmp_path: Path
) -> None:
    outcome = executor_for(cluster).run(
        request_for(tmp_path, "echo", engine="flibble"), Hooks(), threading.Event()
    )
    assert outcome.error is not None
    assert "unsupported engine 'flibble'" in outcome.error
    assert "Hint: use docker" in outcome.error


def test_a_server_that_is_not_bacalhau_is_named_as_such(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"hello": "world"}))
    settings = BacalhauSettings(BACALHAU_API_PORT=1, retries=0)
    outcome = BacalhauExecutor(settings, transport=transport).run(
        request_for(tmp_path, "echo"), Hooks(), threading.Event()
    )
    assert "is this really a Bacalhau API v1 server?" in (outcome.error or "")


def test_supports_the_engines_configured_for_the_cluster() -> None:
    executor = BacalhauExecutor(BacalhauSettings(engines=["docker"]))
    assert executor.supports("docker")
    assert executor.supports("Docker")
    assert not executor.supports("wasm")


def test_the_cluster_double_speaks_the_go_wire_rules(cluster: Cluster, tmp_path: Path) -> None:
    """Keeps the double honest: what it serves passes the same checks real responses do."""
    executor_for(cluster).run(request_for(tmp_path, "echo", "x"), Hooks(), threading.Event())
    (job_id,) = cluster.jobs
    base = f"http://127.0.0.1:{cluster.port}/api/v1/orchestrator/jobs/{job_id}"
    GetJobResponse.model_validate_json(httpx.get(base).content)
    history = ListResponse[WireHistory].model_validate_json(httpx.get(f"{base}/history").content)
    assert {item.Type for item in history.Items} == {"JobLevel", "ExecutionLevel"}
    executions = ListResponse[WireExecution].model_validate_json(
        httpx.get(f"{base}/executions").content
    )
    assert executions.Items[0].ComputeState.StateType == 9
    listed = httpx.get(base.rsplit("/", 1)[0], params={"labels": "team=fish"})
    assert len(ListResponse[WireJob].model_validate_json(listed.content).Items) == 1


def test_a_cancel_before_submission_sends_nothing(cluster: Cluster, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    outcome = executor_for(cluster).run(request_for(tmp_path, "echo", "x"), Hooks(), cancel)
    assert outcome.cancelled
    assert cluster.calls == []
