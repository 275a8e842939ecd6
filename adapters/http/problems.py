"""Every failure as Bacalhau's error body, never a stack trace.

Bacalhau's Go client decodes any non-200 answer as `{Status, Message, RequestID, Code,
Component, Hint}`, so every error path ends here: our own `ApiProblem`s, spec and ledger
errors, FastAPI's request validation, unknown routes and, last, anything unexpected (logged
with the request id, answered with a 500 that names the id and nothing else).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from klippfisk.engine import (
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    LedgerError,
    NoChanges,
)
from klippfisk.engine.wire import WireError, error_body
from klippfisk.spec import SpecError

__all__ = [
    "ApiProblem",
    "BodyTooLarge",
    "failure_response",
    "install_problem_handlers",
    "problem_response",
]

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "BadRequest",
    409: "Conflict",
    413: "ResourceExhausted",
    415: "BadRequest",
    429: "TooManyRequests",
    500: "InternalError",
}


class ApiProblem(Exception):
    """A request we refuse on purpose: status, a sentence, and how to fix it."""

    def __init__(
        self, status: int, message: str, hint: str = "", *, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint
        self.extra = extra or {}


class BodyTooLarge(ApiProblem):
    """Raised while reading a body that grows past the limit (chunked uploads included)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than {limit} bytes.",
            "Send a smaller job, or raise KLIPPFISK_SERVER__MAX_BODY_BYTES on the server.",
        )


def problem_response(
    request_id: str,
    status: int,
    message: str,
    hint: str = "",
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A Bacalhau error body; `extra` keys (e.g. Problems) ride along, Go ignores them."""
    body = error_body(
        status,
        message,
        code=_STATUS_CODES.get(status, "BadRequest"),
        request_id=request_id,
        hint=hint,
    )
    return JSONResponse({**body, **(extra or {})}, status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def _spec_problem(error: SpecError) -> ApiProblem:
    problems = [p.to_dict() for p in error.problems]
    first_hint = next((p.hint for p in error.problems if p.hint), "")
    return ApiProblem(
        400,
        error.summary(),
        first_hint or "Fix the problems listed and submit again.",
        extra={"Problems": problems},
    )


def _ledger_problem(error: LedgerError) -> ApiProblem:
    if isinstance(error, JobNotFound):
        return ApiProblem(404, str(error), "List jobs with GET /api/v1/orchestrator/jobs.")
    if isinstance(error, NoChanges):
        return ApiProblem(409, str(error), 'Send "Force": true to run the same job again.')
    if isinstance(error, IdempotencyConflict | IllegalTransition):
        return ApiProblem(409, str(error))
    return ApiProblem(400, str(error))


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "The request is invalid: " + "; ".join(parts) + "."


def _problem_of(exc: BaseException) -> ApiProblem | None:
    """The refusal a known failure means (ours, the compiler's, the ledger's, a wire rule's);
    None for anything unexpected, which is a server fault."""
    if isinstance(exc, ApiProblem):
        return exc
    if isinstance(exc, SpecError):
        return _spec_problem(exc)
    if isinstance(exc, LedgerError):
        return _ledger_problem(exc)
    if isinstance(exc, WireError):
        return ApiProblem(400, str(exc))
    return None


def failure_response(request_id: str, exc: BaseException) -> JSONResponse:
    """The answer to any failure: a known one as its refusal, anything else as a 500 whose
    details go to the log under the request id (call it while handling the exception) and
    whose body names the id and nothing else."""
    problem = _problem_of(exc)
    if problem is not None:
        return problem_response(
            request_id, problem.status, problem.message, problem.hint, extra=problem.extra
        )
    log.exception("request %s failed", request_id)
    return problem_response(
        request_id,
        500,
        "The server failed to handle this request.",
        f"Report it with request id {request_id}; the server log has the details.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn each failure into an error body."""

    async def on_failure(request: Request, exc: Exception) -> JSONResponse:
        return failure_response(_request_id(request), exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        hint = "Check the parameter types against /openapi.json."
        return problem_response(_request_id(request), 400, _validation_message(exc), hint)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            message = f"There is no route {request.method} {request.url.path}."
            hint = "See /openapi.json for the routes this server offers."
        else:
            message, hint = str(exc.detail), ""
        return problem_response(_request_id(request), exc.status_code, message, hint)

    for failure in (ApiProblem, SpecError, LedgerError, WireError, Exception):
        app.add_exception_handler(failure, on_failure)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
