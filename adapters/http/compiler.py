"""`/api/v1/klippfisk/compile` and `/validate`: the spec compiler as a service.

The body is a job document in any form and either syntax (YAML or JSON), exactly as a file
would hold it, so line:col in the answers point into what the caller sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from klippfisk.spec import SpecError, compile_document

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/klippfisk", tags=["Compiler"])

_DOCUMENT = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
Profile = Annotated[str, Query(pattern="^(klippfisk|bacalhau)$")]


@router.post("/compile", openapi_extra=_DOCUMENT, summary="Compile a job document")
async def compile_endpoint(request: Request, profile: Profile = "klippfisk") -> dict[str, Any]:
    """The canonical job, its CIDs and the report; a bad document is a 400 listing problems."""
    data = await request.body()
    compiled = await run_in_threadpool(
        compile_document, data, source="request body", profile=profile
    )
    return compiled.to_dict()


@router.post("/validate", openapi_extra=_DOCUMENT, summary="Check a job document")
async def validate_endpoint(request: Request, profile: Profile = "klippfisk") -> dict[str, Any]:
    """Always 200: `valid`, and either the problems or the warnings."""
    data = await request.body()
    try:
        compiled = await run_in_threadpool(
            compile_document, data, source="request body", profile=profile
        )
    except SpecError as exc:
        return {"valid": False, "problems": [p.to_dict() for p in exc.problems], "warnings": []}
    warnings = [w.to_dict() for w in compiled.report.warnings]
    return {"valid": True, "problems": [], "warnings": warnings, "job_cid": compiled.job_cid}
