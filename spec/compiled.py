"""What the compiler hands out: the canonical job, its addresses, and the report.

This is the contract between the compiler and everything downstream (the ledger stores it,
executors run its tasks, adapters show its report), so it holds plain JSON-ready data only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AppliedDefault", "CompiledSpec", "Migration", "Report", "Warning_"]


@dataclass(frozen=True)
class AppliedDefault:
    """A value the compiler filled in because the document left it out."""

    pointer: str
    value: Any
    profile: str

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than `dataclasses.asdict`, which deep-copies every value and
        # was a third of the ledger's cost per submission; values are JSON data the
        # compiled job shares anyway, as `CompiledSpec.to_dict` shares the job itself.
        return {"pointer": self.pointer, "value": self.value, "profile": self.profile}


@dataclass(frozen=True)
class Warning_:
    """Something legal but suspicious; `code` is stable so tools can filter on it."""

    code: str
    pointer: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "pointer": self.pointer,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Migration:
    """One field of a legacy or minimal document: where it went, or why it could not go."""

    source: str
    action: str  # "translated" | "dropped" | "rewritten"
    target: str = ""
    note: str = ""
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "action": self.action,
            "target": self.target,
            "note": self.note,
            "line": self.line,
        }


@dataclass(frozen=True)
class Report:
    """How the canonical job came to be: form detected, profile used, defaults, warnings."""

    form: str
    profile: str
    profile_version: str
    defaults: tuple[AppliedDefault, ...] = ()
    warnings: tuple[Warning_, ...] = ()
    migrations: tuple[Migration, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "profile": self.profile,
            "profile_version": self.profile_version,
            "defaults": [d.to_dict() for d in self.defaults],
            "warnings": [w.to_dict() for w in self.warnings],
            "migrations": [m.to_dict() for m in self.migrations],
        }


@dataclass(frozen=True)
class CompiledSpec:
    """A canonical job (Bacalhau v1 shape, PascalCase, JSON-ready) and its content addresses.

    `job_cid` addresses the whole canonical job; `task_cids` maps each task name to the
    address of what that task runs, which is also the key for cached results.
    """

    job: dict[str, Any]
    job_cid: str
    task_cids: dict[str, str]
    report: Report
    source: str = "<input>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "job_cid": self.job_cid,
            "task_cids": dict(self.task_cids),
            "report": self.report.to_dict(),
        }
