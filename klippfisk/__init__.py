"""Klippfisk as a library: compile Bacalhau job documents, record and audit their lives.

This module is the public face. Everything a library user needs is a name here:

- the compiler (`compile_document`, `compile_path`, `compile_url`, `compile_job`), what it
  returns (`CompiledSpec`, `Report`) and how it refuses (`SpecError` with its `Problem`s,
  `LoadError`, `TemplateError`), and the default `PROFILES`;
- the ledger (`Ledger`), what it hands out (`JobView`, `ExecutionView` with its `RunOutput`,
  `Page`, `Source`, `SubmitResult`, `VerifyReport`), the states (`JobState`,
  `ExecutionState`) and its errors (`LedgerError` and its kinds).

The packages behind it (`klippfisk.spec`, `klippfisk.engine`, `klippfisk.adapters`) keep their
own faces for callers that want more. Names are imported on first use: `import klippfisk`
costs nothing, and the command line's `--help` and `spec` commands never load the ledger's
stack (eventsourcing, the store drivers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from klippfisk.engine import (
        BadQuery,
        ExecutionState,
        ExecutionView,
        IdempotencyConflict,
        IllegalTransition,
        JobNotFound,
        JobState,
        JobView,
        Ledger,
        LedgerError,
        NoChanges,
        Page,
        RunOutput,
        Source,
        StoreUnavailable,
        SubmitResult,
        VerifyReport,
    )
    from klippfisk.spec import (
        PROFILES,
        CompiledSpec,
        LoadError,
        Problem,
        Report,
        SpecError,
        TemplateError,
        cid_of,
        compile_document,
        compile_job,
        compile_path,
        compile_url,
    )

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "BadQuery",
    "CompiledSpec",
    "ExecutionState",
    "ExecutionView",
    "IdempotencyConflict",
    "IllegalTransition",
    "JobNotFound",
    "JobState",
    "JobView",
    "Ledger",
    "LedgerError",
    "LoadError",
    "NoChanges",
    "Page",
    "Problem",
    "Report",
    "RunOutput",
    "Source",
    "SpecError",
    "StoreUnavailable",
    "SubmitResult",
    "TemplateError",
    "VerifyReport",
    "cid_of",
    "compile_document",
    "compile_job",
    "compile_path",
    "compile_url",
]

# The public names the compiler's face defines; every other one is the engine's.
_FROM_SPEC = frozenset(
    {
        "PROFILES",
        "CompiledSpec",
        "LoadError",
        "Problem",
        "Report",
        "SpecError",
        "TemplateError",
        "cid_of",
        "compile_document",
        "compile_job",
        "compile_path",
        "compile_url",
    }
)


def __getattr__(name: str) -> Any:
    """Import a public name's package on first use and keep the name here for the next one."""
    if name not in __all__:
        raise AttributeError(f"module 'klippfisk' has no attribute {name!r}")
    face = "klippfisk.spec" if name in _FROM_SPEC else "klippfisk.engine"
    value = getattr(importlib.import_module(face), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
