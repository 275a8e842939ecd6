"""The spec compiler: any job document people have -> one canonical Bacalhau v1 job.

This module is the package's contract; import from here, not from the modules behind it.
`compile_*` return a `CompiledSpec` (canonical job, `job_cid`, `task_cids`, `Report`) or
raise `SpecError` listing every problem at once (`LoadError` and `TemplateError` are kinds
of it). `PROFILES` names the default profiles (`klippfisk`, the default, and `bacalhau`).
"""

from spec.compile import compile_document, compile_job, compile_path, compile_url
from spec.compiled import CompiledSpec, Report
from spec.defaults import PROFILES
from spec.errors import LoadError, Problem, SpecError, TemplateError
from spec.load import LoadLimits

__all__ = [
    "PROFILES",
    "CompiledSpec",
    "LoadError",
    "LoadLimits",
    "Problem",
    "Report",
    "SpecError",
    "TemplateError",
    "compile_document",
    "compile_job",
    "compile_path",
    "compile_url",
]
