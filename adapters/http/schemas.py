"""Request and response schemas for the OpenAPI document (and so for schemathesis).

Job bodies are read by hand (case-insensitive keys, any form the compiler accepts), so their
request schemas are declared here rather than inferred from a handler signature; response
models come from klippfisk.engine.wire, the one place Bacalhau's shapes are written down.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from klippfisk.engine.wire import APIError, ListResponse, WireExecution, WireHistory, WireJob

__all__ = [
    "DIFF_BODY",
    "ERROR_RESPONSES",
    "PUT_JOB_BODY",
    "STOP_BODY",
    "DiffJobResponse",
    "ListExecutionsResponse",
    "ListHistoryResponse",
    "ListJobsResponse",
    "ListResultsResponse",
]


class PutJobRequest(BaseModel):
    """`{"Job": ..., "Force": ...}`; keys match case-insensitively, the Job in any form."""

    model_config = ConfigDict(extra="allow")

    Job: dict[str, Any]
    Force: bool = False
    IdempotencyToken: str = ""
    Namespace: str = ""


class DiffJobRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    Job: dict[str, Any]


class StopJobRequest(BaseModel):
    reason: str = ""


class DiffJobResponse(BaseModel):
    Diff: str
    Warnings: list[str] | None = None


ListJobsResponse = ListResponse[WireJob]
ListHistoryResponse = ListResponse[WireHistory]
ListExecutionsResponse = ListResponse[WireExecution]
ListResultsResponse = ListResponse[dict[str, Any]]


def _body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    schema = model.model_json_schema()
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": required, "content": content}}


PUT_JOB_BODY = _body(PutJobRequest)
DIFF_BODY = _body(DiffJobRequest)
STOP_BODY = _body(StopJobRequest, required=False)


# Every route can answer these (the guard refuses before routing; the handlers after).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": APIError, "description": text}
    for status, text in (
        (400, "The request is invalid; Message and Hint say how"),
        (401, "No API key, or one the server does not know"),
        (403, "The key may not use that namespace"),
        (404, "No such job (in the caller's namespace) or route"),
        (409, "The job's state or an idempotency key forbids this"),
        (413, "The body is larger than the server accepts"),
        (429, "Too many requests for this key; see Retry-After"),
        (500, "A server fault; quote the RequestID"),
    )
}
