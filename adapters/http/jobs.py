"""`/api/v1/orchestrator/jobs...`: Bacalhau's job endpoints over the ledger and the compiler.

Submissions are `submission.submit`, shared with the fast path that takes most of them
before FastAPI (submit_fast_path.py); the route documents the operation and serves what the
fast path passes on. Reads never cross namespaces: a job outside the caller's namespace is
reported as not found, so its existence does not leak.
"""

from __future__ import annotations

import difflib
import json
from operator import attrgetter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from klippfisk.adapters.http.guard import Principal
from klippfisk.adapters.http.history_cache import CachedPage, HistoryCache, history_key
from klippfisk.adapters.http.listing import ListQuery, list_page
from klippfisk.adapters.http.namespaces import NAMESPACE_MAX_LENGTH, write_namespace
from klippfisk.adapters.http.namespaces import read_namespace as _read_namespace
from klippfisk.adapters.http.problems import ApiProblem
from klippfisk.adapters.http.schemas import (
    DIFF_BODY,
    PUT_JOB_BODY,
    STOP_BODY,
    DiffJobResponse,
    ListExecutionsResponse,
    ListHistoryResponse,
    ListJobsResponse,
    ListResultsResponse,
)
from klippfisk.adapters.http.selectors import LabelSelector
from klippfisk.adapters.http.submission import (
    IDEMPOTENCY_TOKEN_MAX_LENGTH,
    compile_for,
    evaluation_id,
    job_mapping,
    json_object,
    submit,
)
from klippfisk.adapters.http.views import HistoryQuery, history_body, warning_lines
from klippfisk.engine import JobNotFound, JobView, Ledger
from klippfisk.engine.wire import (
    GetJobResponse,
    PagingToken,
    PutJobResponse,
    StopJobResponse,
    list_body,
)

__all__ = ["ledger_of", "principal_of", "router", "visible_job"]

router = APIRouter(prefix="/api/v1/orchestrator", tags=["Orchestrator"])

_MAX_PAGE = 1000
_ORDERS = ("", "created_at", "modified_at")


async def ledger_of(request: Request) -> Ledger:
    return request.app.state.ledger  # type: ignore[no-any-return]


async def principal_of(request: Request) -> Principal:
    return request.state.principal  # type: ignore[no-any-return]


LedgerDep = Annotated[Ledger, Depends(ledger_of)]
PrincipalDep = Annotated[Principal, Depends(principal_of)]
NamespaceQuery = Annotated[str, Query(max_length=NAMESPACE_MAX_LENGTH)]
Limit = Annotated[int, Query(ge=0, le=_MAX_PAGE)]


def visible_job(ledger: Ledger, ref: str, principal: Principal, namespace: str = "") -> JobView:
    """The job `ref` names, if the caller may see it; otherwise it does not exist for them.

    The lookup is limited to the caller's namespace, so a name another tenant also uses
    neither locks the caller out nor tells them the other tenant's namespace."""
    view = ledger.get(ref, namespace=_read_namespace(principal, namespace))
    _check_visible(view.namespace, ref, principal, namespace)
    return view


def _check_visible(job_namespace: str, ref: str, principal: Principal, asked: str) -> None:
    allowed = _read_namespace(principal, asked)
    if not principal.may_use(job_namespace) or (allowed and job_namespace != allowed):
        raise JobNotFound(
            f"No job matches {ref!r} in your namespace. List your jobs with "
            "GET /api/v1/orchestrator/jobs."
        )


@router.put(
    "/jobs",
    response_model=PutJobResponse,
    openapi_extra=PUT_JOB_BODY,
    summary="Submit a job (any form the compiler accepts)",
)
@router.post("/jobs", response_model=PutJobResponse, openapi_extra=PUT_JOB_BODY)
async def put_job(
    request: Request,
    namespace: NamespaceQuery = "",
    idempotency_token: Annotated[str, Query(max_length=IDEMPOTENCY_TOKEN_MAX_LENGTH)] = "",
) -> Response:
    """Documents the operation, and submits what the fast path passes on (unusual queries);
    the answer is JSON written by `submit` rather than through the response model (which
    still documents it)."""
    answer = await submit(
        request.app.state.ledger,
        request.state.principal,
        await request.body(),
        namespace=namespace,
        idempotency_token=idempotency_token or request.headers.get("idempotency-key", ""),
        request_id=request.state.request_id,
    )
    return Response(answer, media_type="application/json")


def _json_response(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.put(
    "/jobs/diff",
    response_model=DiffJobResponse,
    openapi_extra=DIFF_BODY,
    summary="Show what submitting this job would change",
)
async def diff_job(
    request: Request, ledger: LedgerDep, principal: PrincipalDep, namespace: NamespaceQuery = ""
) -> dict[str, Any]:
    body = json_object(await request.body(), "a diff")
    job = job_mapping(body, write_namespace(principal, body, namespace))
    name = next((v for k, v in job.items() if str(k).lower() == "name"), "")
    if not isinstance(name, str) or not name.strip():
        raise ApiProblem(
            400,
            "invalid job spec: name is missing",
            "Job name must be provided in the job spec for diff operations.",
        )

    def diff() -> dict[str, Any]:
        compiled = compile_for(principal, job, "diff request")
        try:
            before = visible_job(ledger, name, principal).job
        except JobNotFound:
            before = {}
        old = json.dumps(before, indent=2, sort_keys=True).splitlines()
        new = json.dumps(compiled.job, indent=2, sort_keys=True).splitlines()
        lines = difflib.unified_diff(old, new, "current", "submitted", lineterm="")
        return {
            "Diff": "\n".join(lines),
            "Warnings": warning_lines(compiled.report.to_dict()),
        }

    return await run_in_threadpool(diff)


def _paging_token(next_token: str) -> PagingToken:
    """A next_token a client sent back, if it could be one this server gave out.

    Tokens are plain base64 a client can forge; a negative offset or an outsized limit
    would slice pages from the end or read past the page bound, so they are refused."""
    token = PagingToken.decode(next_token)
    if token.sort_by not in _ORDERS or token.offset < 0 or not 0 <= token.limit <= _MAX_PAGE:
        raise ApiProblem(
            400,
            f"The next_token {next_token!r} is not one this server gave out.",
            "Pass back the NextToken of the previous page, or leave it out to start over.",
        )
    return token


@router.get("/jobs", response_model=ListJobsResponse, summary="List jobs")
def list_jobs(
    request: Request,
    ledger: LedgerDep,
    principal: PrincipalDep,
    namespace: NamespaceQuery = "",
    limit: Limit = 0,
    next_token: Annotated[str, Query(max_length=256)] = "",
    order_by: Annotated[str, Query(pattern="^(|created_at|modified_at)$")] = "",
    reverse: bool = False,
    labels: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> ListJobsResponse:
    offset = None
    if next_token:  # Bacalhau's rule: the token carries the paging choices of page one
        token = _paging_token(next_token)
        order_by, reverse, limit, offset = token.sort_by, token.reverse, token.limit, token.offset
    query = ListQuery(
        namespace=_read_namespace(principal, namespace),
        limit=limit or 20,
        order_by=order_by,
        reverse=reverse,
        selector=LabelSelector.parse(labels or []),
        offset=offset,
    )
    scan_limit = request.app.state.settings.server.list_scan_limit
    jobs, token_out = list_page(ledger, query, scan_limit)
    return ListJobsResponse(Items=[v.to_wire() for v in jobs], NextToken=token_out)


@router.get(
    "/jobs/{job_ref}",
    response_model=GetJobResponse,
    response_model_exclude_none=True,
    summary="Get a job by id, short id or name",
)
def get_job(
    job_ref: str,
    ledger: LedgerDep,
    principal: PrincipalDep,
    namespace: NamespaceQuery = "",
    include: Annotated[str, Query(max_length=64)] = "",
    job_version: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 0,
) -> GetJobResponse:
    view = visible_job(ledger, job_ref, principal, namespace)
    response = GetJobResponse(Job=view.to_wire())
    for part in {p.strip() for p in include.split(",") if p.strip()}:
        if part == "history":
            query = HistoryQuery(job_version=job_version, limit=limit or _MAX_PAGE)
            page = history_body(ledger.history(view.id), view, query)
            response.History = ListHistoryResponse.model_validate(page)
        elif part == "executions":
            items = [e.to_wire(view.namespace) for e in view.executions]
            response.Executions = ListExecutionsResponse(Items=items, NextToken="")
        else:
            raise ApiProblem(400, f"Cannot include {part!r}.", "Use include=history,executions.")
    return response


@router.get(
    "/jobs/{job_ref}/history",
    response_model=ListHistoryResponse,
    response_model_exclude_none=True,
    summary="A job's history",
)
def job_history(
    job_ref: str,
    ledger: LedgerDep,
    principal: PrincipalDep,
    request: Request,
    namespace: NamespaceQuery = "",
    since: Annotated[int, Query(ge=0)] = 0,
    event_type: Annotated[str, Query(pattern="^(|all|job|execution)$")] = "",
    execution_id: Annotated[str, Query(max_length=64)] = "",
    limit: Limit = 0,
    next_token: Annotated[str, Query(max_length=256)] = "",
    job_version: Annotated[int, Query(ge=0)] = 0,
    all_job_versions: bool = False,
) -> Response:
    if next_token:
        _paging_token(next_token)
    query = HistoryQuery(
        since=since,
        job_version=job_version,
        all_job_versions=all_job_versions,
        limit=limit or request.app.state.settings.server.history_page_limit,
        next_token=next_token,
    )

    def render() -> CachedPage:
        view = ledger.get(job_ref, namespace=_read_namespace(principal, namespace))
        entries = ledger.history(
            view.id, event_type=event_type or "all", execution_id=execution_id or None
        )
        body = _json_response(history_body(entries, view, query)).body
        return CachedPage(view.namespace, body, view.id, view.revision)

    cache: HistoryCache = request.app.state.history_cache
    page = cache.page(history_key(principal, job_ref, request.url.query), render)
    _check_visible(page.namespace, job_ref, principal, namespace)
    return Response(page.body, media_type="application/json")


@router.get(
    "/jobs/{job_ref}/executions",
    response_model=ListExecutionsResponse,
    response_model_exclude_none=True,
    summary="A job's executions",
)
def job_executions(
    job_ref: str,
    ledger: LedgerDep,
    principal: PrincipalDep,
    namespace: NamespaceQuery = "",
    limit: Limit = 0,
    job_version: Annotated[int, Query(ge=0)] = 0,
    all_job_versions: bool = False,
    order_by: Annotated[str, Query(pattern="^(|created_at|modified_at)$")] = "",
    reverse: bool = False,
) -> ListExecutionsResponse:
    view = visible_job(ledger, job_ref, principal, namespace)
    wanted = job_version or view.version
    chosen = [e for e in view.executions if all_job_versions or e.job_version == wanted]
    items = [e.to_wire(view.namespace) for e in chosen]
    key = attrgetter("ModifyTime" if order_by == "modified_at" else "CreateTime")
    items.sort(key=key, reverse=reverse)
    return ListExecutionsResponse(Items=items[: limit or None], NextToken="")


@router.get(
    "/jobs/{job_ref}/results", response_model=ListResultsResponse, summary="Published results"
)
def job_results(
    job_ref: str, ledger: LedgerDep, principal: PrincipalDep, namespace: NamespaceQuery = ""
) -> dict[str, Any]:
    view = visible_job(ledger, job_ref, principal, namespace)
    results = [e.published_result for e in view.executions if e.published_result]
    return list_body(results)


@router.get("/jobs/{job_ref}/versions", response_model=ListJobsResponse, summary="A job's versions")
def job_versions(
    job_ref: str, ledger: LedgerDep, principal: PrincipalDep, namespace: NamespaceQuery = ""
) -> ListJobsResponse:
    """Every version of the job, oldest first, each as it stood when the next replaced it."""
    view = visible_job(ledger, job_ref, principal, namespace)
    return ListJobsResponse(Items=[v.to_wire() for v in ledger.versions(view.id)], NextToken="")


@router.delete(
    "/jobs/{job_ref}",
    response_model=StopJobResponse,
    openapi_extra=STOP_BODY,
    summary="Stop a job",
)
async def stop_job(
    job_ref: str,
    request: Request,
    ledger: LedgerDep,
    principal: PrincipalDep,
    namespace: NamespaceQuery = "",
    reason: Annotated[str, Query(max_length=1024)] = "",
) -> dict[str, Any]:
    raw = await request.body()
    body = json_object(raw, "stopping a job") if raw.strip() else {}
    why = str(body.get("reason") or reason or "Stopped by user")

    def stop() -> dict[str, Any]:
        view = visible_job(ledger, job_ref, principal, namespace)
        ledger.stop(view.id, reason=why, actor=principal.name)
        return {"EvaluationID": evaluation_id()}

    return await run_in_threadpool(stop)
