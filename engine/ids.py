"""Job and execution identifiers: `j-<uuid>` and `e-<uuid>`, and the short forms people type.

A job id is random unless the caller gives something that should always name the same job:
an idempotency key (HTTP header, Bluesky post URI, CLI flag) or a job name. Those derive the
id with uuid5, so two processes that race on the same key compute the same id and the
store's optimistic concurrency makes exactly one of them create the job.
"""

from __future__ import annotations

import re
import uuid

__all__ = [
    "SHORT_ID_LENGTH",
    "is_job_id",
    "job_id_for_key",
    "job_id_for_name",
    "new_execution_id",
    "new_job_id",
    "short_id",
]

# A fixed namespace so that ids derived from keys are stable across machines and versions.
_NAMESPACE = uuid.UUID("6b1f3e0a-5c1d-5d3e-9a57-6b6c69707066")
SHORT_ID_LENGTH = 10  # "j-" + 8 hex digits, as Bacalhau shortens its ids
_JOB_ID = re.compile(r"^j-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_job_id() -> str:
    """A fresh random job id."""
    return f"j-{uuid.uuid4()}"


def job_id_for_key(namespace: str, key: str) -> str:
    """The job id an idempotency key always maps to within a namespace: tenants choose their
    keys independently, so one tenant's key must never reach (or reveal) another's job."""
    return f"j-{uuid.uuid5(_NAMESPACE, f'key:{namespace}/{key}')}"


def job_id_for_name(namespace: str, name: str) -> str:
    """The job id a job name maps to, so a resubmission by name updates the same job."""
    return f"j-{uuid.uuid5(_NAMESPACE, f'name:{namespace}/{name}')}"


def new_execution_id() -> str:
    """A fresh random execution id."""
    return f"e-{uuid.uuid4()}"


def short_id(full_id: str) -> str:
    """The form shown in tables: the prefix and the first 8 hex digits."""
    return full_id[:SHORT_ID_LENGTH]


def is_job_id(text: str) -> bool:
    """True for a complete job id (not a prefix or a name)."""
    return bool(_JOB_ID.match(text))
