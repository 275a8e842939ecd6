"""The ledger's refusals: each a LedgerError whose message says what to do instead.

`LedgerError` itself (and `IllegalTransition`, a command the job's state does not allow)
belong to the Job aggregate in klippfisk.engine.job; `StoreUnavailable` is raised by the
store settings as well, so it lives with them (klippfisk.engine.persistence) and is named
here with the rest.
"""

from __future__ import annotations

from klippfisk.engine.job import LedgerError
from klippfisk.engine.persistence.store_errors import StoreUnavailable

__all__ = ["BadQuery", "IdempotencyConflict", "JobNotFound", "NoChanges", "StoreUnavailable"]


class JobNotFound(LedgerError):
    """No job (or more than one) answers to the reference given."""

    @classmethod
    def for_id(cls, job_id: str) -> JobNotFound:
        """The refusal for a full id nothing is stored under, worded alike everywhere."""
        return cls(f"No job with id {job_id}. Use `klippfisk job list` to see jobs.")


class BadQuery(LedgerError):
    """A read was asked with arguments no ledger could answer (unknown state, page size, token)."""


class IdempotencyConflict(LedgerError):
    """An idempotency key already names a job with a different spec."""


class NoChanges(LedgerError):
    """A job was resubmitted under its name with an identical spec and without force."""
