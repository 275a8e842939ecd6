"""What a submission does: which job it names, and whether that job is new, repeated under
its idempotency key, a new version of itself, or unchanged.

With an idempotency key the job id derives from the key: a repeat with the same spec returns
the job already there, a different spec is a conflict. Without one, a named job's id
derives from its name, so a changed spec becomes Version+1 of that job and an identical one
is refused as "no changes" unless forced. An unnamed job without a key is always new.
"""

from __future__ import annotations

from klippfisk.engine.executors.registry import EXECUTOR_CHOICES
from klippfisk.engine.ids import job_id_for_key, job_id_for_name, new_job_id, short_id
from klippfisk.engine.job import Job, LedgerError
from klippfisk.engine.ledger.errors import IdempotencyConflict, NoChanges
from klippfisk.engine.ledger.views import Source, SubmitResult
from klippfisk.engine.ledger.write_path import Decide
from klippfisk.spec.compiled import CompiledSpec

__all__ = ["plan_submission"]


def plan_submission(
    compiled: CompiledSpec,
    *,
    source: Source,
    idempotency_key: str | None,
    force: bool,
    executor: str | None,
) -> tuple[str, Decide[SubmitResult]]:
    """The id of the job `compiled` goes to, and the decision to take on it as stored."""
    if executor is not None and executor not in EXECUTOR_CHOICES:
        raise LedgerError(
            f"Unknown executor {executor!r}. Use one of: {', '.join(EXECUTOR_CHOICES)}, "
            "or leave it out to let the runner choose."
        )
    spec = compiled.job
    namespace = str(spec.get("Namespace") or "default")
    name = spec.get("Name")
    if idempotency_key:
        job_id = job_id_for_key(namespace, idempotency_key)
    elif isinstance(name, str) and name:
        job_id = job_id_for_name(namespace, name)
    else:
        job_id = new_job_id()
    warnings = [w.to_dict() for w in compiled.report.warnings]
    fields = {
        "job": spec,
        "job_cid": compiled.job_cid,
        "task_cids": dict(compiled.task_cids),
        "source": {
            "adapter": source.adapter,
            "actor": source.actor,
            "ref": source.ref,
            "operator": source.operator,
        },
        "report": compiled.report.to_dict(),
        "executor": executor or "",
    }

    def decide(existing: Job | None) -> tuple[Job | None, SubmitResult]:
        if existing is None:
            job = Job.submit(job_id, actor=source.actor, **fields)
            return job, SubmitResult(job_id, 1, True, warnings)
        if idempotency_key:
            if existing.job_cid != compiled.job_cid:
                raise IdempotencyConflict(
                    f"The idempotency key {idempotency_key!r} already names job "
                    f"{short_id(job_id)} with a different spec. Use a new key to submit "
                    "a different job."
                )
            return None, SubmitResult(job_id, existing.job_version, False, warnings)
        if existing.job_cid == compiled.job_cid and not force:
            raise NoChanges(
                f"No changes detected for job {existing.name!r} ({short_id(job_id)}): "
                "the spec is identical to its current version. Pass force to run it again."
            )
        existing.resubmit(actor=source.actor, **fields)
        return existing, SubmitResult(job_id, existing.job_version, False, warnings)

    return job_id, decide
