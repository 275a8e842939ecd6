"""`/api/v1/orchestrator/jobs/{id}/logs`: an execution's output over a WebSocket.

Frames are Bacalhau's `AsyncResult[ExecutionLog]`: `{"value": {"Type": 1|2, "Line": ...}}`
with Type 1 for stdout and 2 for stderr. Lines come from the execution's results directory,
whose `stdout` and `stderr` files the local executors write while the task runs, so with
`follow=true` each line goes out as soon as it is complete; the socket closes once the job
is over and everything written has been sent. An execution with no files here (it ran on a
remote cluster) sends the ledger's RunOutput head when it ends.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from klippfisk.adapters.http.jobs import visible_job
from klippfisk.engine import ExecutionState, ExecutionView, JobView, Ledger, LedgerError
from klippfisk.engine.results import PIECE_BYTES, OutputFollower, ResultsDir, execution_results_dir
from klippfisk.engine.settings import Settings

__all__ = ["router"]

router = APIRouter()

STDOUT, STDERR = 1, 2
_ACTIVE = frozenset({ExecutionState.NEW, ExecutionState.RUNNING})
# A line ends at \n, \r\n or a lone \r (progress bars redraw with \r): one frame per line.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


@dataclass
class _Tail:
    """One output stream of one execution, cut into lines as it grows.

    A line is sent only once its newline is on disk (or the execution is over), so a line
    the task is still writing never arrives in two pieces; a line longer than a piece
    (PIECE_BYTES characters) is the exception, sent in pieces so the held part stays bounded
    and each read costs time in proportion to what it reads. Reads block, so callers run
    them off the event loop."""

    follower: OutputFollower
    kind: int
    partial: str = ""
    finished: bool = False

    def read(self, final: bool, head: str) -> list[str] | None:
        """The lines one piece of new output completes, or None when there is nothing more
        to read now. `final`: the execution is over, so a last line without a newline is
        sent too, and `head` stands in for a file that never appeared."""
        if self.finished:
            return None
        text = self.follower.read()
        if text is None and final and self.follower.offset == 0:
            self.finished = True
            return _LINE.findall(head)
        if not text:
            if not final:
                return None
            self.finished = True
            rest, self.partial = self.partial + self.follower.flush(), ""
            return _LINE.findall(rest) if rest else None
        data = self.partial + text
        cut = data.rfind("\n") + 1
        if len(data) - cut > PIECE_BYTES:  # a very long line: send what there is of it
            cut = len(data)
        self.partial = data[cut:]
        return _LINE.findall(data[:cut])


def _tails(settings: Settings, execution: ExecutionView) -> tuple[_Tail, _Tail]:
    results = ResultsDir(execution_results_dir(settings, execution.job_id, execution.id))
    return (
        _Tail(OutputFollower(results.stdout), STDOUT),
        _Tail(OutputFollower(results.stderr), STDERR),
    )


async def _send_new_lines(
    websocket: WebSocket,
    settings: Settings,
    view: JobView,
    wanted: str,
    tails: dict[str, tuple[_Tail, _Tail]],
    everything: bool,
) -> None:
    """Send what each wanted execution wrote since the last turn (all of it if `everything`
    or once the execution is over)."""
    for execution in view.executions:
        if wanted and execution.id != wanted:
            continue
        pair = tails.setdefault(execution.id, _tails(settings, execution))
        final = everything or execution.state not in _ACTIVE
        for tail, head in zip(pair, (execution.stdout, execution.stderr), strict=True):
            # following: one chunk per stream per turn keeps turns short
            while (lines := await run_in_threadpool(tail.read, final, head)) is not None:
                for line in lines:
                    await websocket.send_json({"value": {"Type": tail.kind, "Line": line}})
                if not final:
                    break


async def _follow(
    websocket: WebSocket, ledger: Ledger, settings: Settings, view: JobView, wanted: str
) -> None:
    """Stream lines as they are written until the job ends or the client goes away."""
    pause = websocket.app.state.settings.server.log_poll_seconds
    tails: dict[str, tuple[_Tail, _Tail]] = {}
    listener = asyncio.ensure_future(websocket.receive())  # the client leaving ends this
    try:
        while True:
            await _send_new_lines(websocket, settings, view, wanted, tails, view.terminal)
            if view.terminal:
                return
            await asyncio.wait({listener}, timeout=pause)
            if listener.done():
                message = listener.result()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                listener = asyncio.ensure_future(websocket.receive())  # chatter: ignored
            view = await run_in_threadpool(ledger.get, view.id)
    finally:
        listener.cancel()


@router.websocket("/api/v1/orchestrator/jobs/{job_ref}/logs")
async def logs(websocket: WebSocket, job_ref: str) -> None:
    await websocket.accept()
    ledger = websocket.app.state.ledger
    settings = websocket.app.state.settings
    params = websocket.query_params
    wanted = params.get("execution_id", "")
    try:
        view = await run_in_threadpool(
            visible_job, ledger, job_ref, websocket.state.principal, params.get("namespace", "")
        )
        if params.get("follow") == "true":
            await _follow(websocket, ledger, settings, view, wanted)
        else:
            await _send_new_lines(websocket, settings, view, wanted, {}, everything=True)
    except LedgerError as exc:
        await websocket.send_json({"value": {"Type": 0, "Line": ""}, "error": str(exc)})
    except WebSocketDisconnect:
        return
    await websocket.close()
