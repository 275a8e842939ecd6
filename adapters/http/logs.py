"""`/api/v1/orchestrator/jobs/{id}/logs`: an execution's output over a WebSocket.

Frames are Bacalhau's `AsyncResult[ExecutionLog]`: `{"value": {"Type": 1|2, "Line": ...}}`
with Type 1 for stdout and 2 for stderr. Lines come from the execution's results directory
(the whole stream) when it is on this machine, else from the ledger's RunOutput head. With
`follow`, the socket waits for the job to end before sending (our executors report output
when an execution ends, not line by line).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from adapters.http.jobs import visible_job
from engine import ExecutionView, LedgerError
from engine.results import ResultsDir, execution_results_dir
from engine.settings import Settings

__all__ = ["router"]

router = APIRouter()

STDOUT, STDERR = 1, 2
_FOLLOW_SLICE_SECONDS = 5.0


def _lines(stream: Path, head: str) -> list[str]:
    text = stream.read_text("utf-8", errors="replace") if stream.is_file() else head
    return text.splitlines(keepends=True)


def _frames(settings: Settings, execution: ExecutionView) -> list[dict[str, object]]:
    results = ResultsDir(execution_results_dir(settings, execution.job_id, execution.id))
    frames = [
        {"value": {"Type": STDOUT, "Line": line}}
        for line in _lines(results.stdout, execution.stdout)
    ]
    frames += [
        {"value": {"Type": STDERR, "Line": line}}
        for line in _lines(results.stderr, execution.stderr)
    ]
    return frames


@router.websocket("/api/v1/orchestrator/jobs/{job_ref}/logs")
async def logs(websocket: WebSocket, job_ref: str) -> None:
    await websocket.accept()
    ledger = websocket.app.state.ledger
    settings = websocket.app.state.settings
    params = websocket.query_params
    try:
        view = await run_in_threadpool(
            visible_job, ledger, job_ref, websocket.state.principal, params.get("namespace", "")
        )
        while params.get("follow") == "true" and not view.terminal:
            view = await run_in_threadpool(ledger.wait, view.id, None, _FOLLOW_SLICE_SECONDS)
        wanted = params.get("execution_id", "")
        for execution in view.executions:
            if not wanted or execution.id == wanted:
                for frame in _frames(settings, execution):
                    await websocket.send_json(frame)
    except LedgerError as exc:
        await websocket.send_json({"value": {"Type": 0, "Line": ""}, "error": str(exc)})
    except WebSocketDisconnect:
        return
    await websocket.close()
