"""Submitting a job over HTTP: the body read, compiled and recorded, the answer written.

Both ways a submission arrives share this: the fast path in front of FastAPI (the busy
case) and the documented route (everything the fast path passes on). Submissions go through
our compiler, so every form it knows (current, legacy, minimal) works, and a refusal lists
every problem with its pointer and hint. Top-level body keys match case-insensitively
because Bacalhau's two clients disagree (`IdempotencyToken` vs `idempotencyToken`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import random
import uuid
from typing import Any

from klippfisk.adapters.http.guard import Principal
from klippfisk.adapters.http.namespaces import write_namespace
from klippfisk.adapters.http.problems import ApiProblem
from klippfisk.adapters.http.views import warning_lines
from klippfisk.engine import Ledger, Source
from klippfisk.spec import SERVER_OWNED, CompiledSpec, cid_of, compile_job

__all__ = [
    "BODY_HINT",
    "IDEMPOTENCY_TOKEN_MAX_LENGTH",
    "compile_for",
    "evaluation_id",
    "job_mapping",
    "json_object",
    "submit",
]

BODY_HINT = 'Send a JSON object such as {"Job": {"Type": "batch", "Tasks": [...]}}.'
IDEMPOTENCY_TOKEN_MAX_LENGTH = 256  # the longest `idempotency_token` query parameter accepted
_INLINE_COMPILE_BYTES = 16 * 1024  # typical jobs are 0.5-2 KiB and compile in under 1 ms
_SERVER_OWNED = frozenset(name.lower() for name in SERVER_OWNED)  # keys match in any case


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object body, top-level keys lower-cased; bad input is a clear 400."""
    if not raw.strip():
        raise ApiProblem(400, f"The request has no body; {what} needs one.", BODY_HINT)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        detail = exc.args[0] if isinstance(exc, ValueError) and exc.args else "nested too deeply"
        raise ApiProblem(400, f"The body is not valid JSON: {detail}.", BODY_HINT) from None
    if not isinstance(data, dict):
        raise ApiProblem(400, "The body must be a JSON object.", BODY_HINT)
    return {str(k).lower(): v for k, v in data.items()}


def job_mapping(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The Job object of a body, minus server-owned fields, in `namespace` unless it names one."""
    job = body.get("job")
    if not isinstance(job, dict):
        raise ApiProblem(400, 'The body needs a "Job" object.', BODY_HINT)
    cleaned = {k: v for k, v in job.items() if str(k).lower() not in _SERVER_OWNED}
    if not any(str(k).lower() == "namespace" and v for k, v in cleaned.items()):
        cleaned = {k: v for k, v in cleaned.items() if str(k).lower() != "namespace"}
        cleaned["Namespace"] = namespace
    return cleaned


def compile_for(principal: Principal, job: dict[str, Any], source: str) -> CompiledSpec:
    """Compile `job` into the namespace it names, and check the caller may submit there.

    Minimal, legacy and code-runner forms have no place for a namespace, so their
    translators drop the one `job_mapping` set; the compiled job is then placed in it
    (`_placed`), so the job lands where it was sent and its CID covers the namespace."""
    compiled = compile_job(job, source=source)
    wanted = next((str(v) for k, v in job.items() if str(k).lower() == "namespace"), "")
    if wanted and compiled.job.get("Namespace") != wanted:
        compiled = _placed(compiled, wanted, source)
    namespace = str(compiled.job.get("Namespace") or "default")
    if not principal.may_use(namespace):
        raise ApiProblem(
            403,
            f"This API key may not submit to namespace {namespace!r}.",
            f"Set Namespace to {principal.namespace!r}, or use a key for {namespace!r}.",
        )
    return compiled


def _placed(compiled: CompiledSpec, namespace: str, source: str) -> CompiledSpec:
    """`compiled` moved into `namespace` without compiling it again: the namespace is a plain
    text field of the canonical job and in no task's address, so only the job's address
    changes; the report stays the form's own. A blank namespace is the compiler's to refuse,
    as it refuses one written in a current job."""
    job = {**compiled.job, "Namespace": namespace}
    if not namespace.strip():
        compile_job(job, source=source)  # raises SpecError: the job must be in a namespace
    return dataclasses.replace(compiled, job=job, job_cid=cid_of(job))


def evaluation_id() -> str:
    """A uuid4 for Bacalhau's EvaluationID (we have no evaluations), made from the process's
    PRNG rather than os.urandom: an id, not a secret, and no system call in the event loop."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


async def submit(
    ledger: Ledger,
    principal: Principal,
    raw: bytes,
    *,
    namespace: str,
    idempotency_token: str,
    request_id: str,
) -> bytes:
    """Record the job `raw` holds; the answer is Bacalhau's PutJobResponse as JSON bytes.

    `namespace` and `idempotency_token` come from the query (or the Idempotency-Key header);
    the body's own IdempotencyToken counts when they are empty. A small document is compiled
    in the event loop, as pure CPU work gains nothing from a thread but the cost of two
    wake-ups; a large one, and the ledger write, which can wait on the store, go to a
    worker thread. Refusals raise (ApiProblem, SpecError, LedgerError)."""
    body = json_object(raw, "submitting a job")
    force = body.get("force") or False
    if not isinstance(force, bool):
        raise ApiProblem(
            400, '"Force" must be true or false.', 'Send "Force": true or leave it out.'
        )
    token = str(idempotency_token or body.get("idempotencytoken") or "")
    job = job_mapping(body, write_namespace(principal, body, namespace))
    loop = asyncio.get_running_loop()
    compile_it = functools.partial(compile_for, principal, job, "the submitted job")
    if len(raw) <= _INLINE_COMPILE_BYTES:
        compiled = compile_it()
    else:
        compiled = await loop.run_in_executor(None, compile_it)
    result = await loop.run_in_executor(
        None,
        functools.partial(
            ledger.submit,
            compiled,
            source=Source(
                adapter="http", actor=principal.name, ref=request_id, operator=principal.operator
            ),
            idempotency_key=token or None,
            force=force,
        ),
    )
    answer = {
        "JobID": result.job_id,
        "EvaluationID": evaluation_id(),
        "Warnings": warning_lines(result.warnings),
    }
    return json.dumps(answer, separators=(",", ":")).encode()
