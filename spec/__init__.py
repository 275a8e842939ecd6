"""The spec compiler: any job document people have -> one canonical Bacalhau v1 job.

This module is the package's contract; import from here, not from the modules behind it.
`compile_*` return a `CompiledSpec` (canonical job, `job_cid`, `task_cids`, `Report`) or
raise `SpecError` listing every problem at once (`LoadError` and `TemplateError` are kinds
of it). `PROFILES` names the default profiles (`klippfisk`, the default, and `bacalhau`).

The pipeline's front end is here too, for adapters that take a document apart themselves:
`read_source` (file, `-` or URL, bounded), `load_document` (a `Document` with positions,
held to `LoadLimits`), `render` and `variables_from` (Bacalhau's templating), the quantity
parsers Bacalhau's resource fields use, and `cid_of` (the content address of any JSON value).
`SERVER_OWNED` names the job fields a server sets (ID, State, Version...): accepted on input,
never part of a canonical job, and never sent by a client that submits one.
"""

from klippfisk.spec.address import cid_of
from klippfisk.spec.compile import compile_document, compile_job, compile_path, compile_url
from klippfisk.spec.compiled import CompiledSpec, Report
from klippfisk.spec.defaults import PROFILES
from klippfisk.spec.document import Document
from klippfisk.spec.errors import LoadError, Problem, SpecError, TemplateError
from klippfisk.spec.limits import DEFAULT_LIMITS, LoadLimits
from klippfisk.spec.load import load_document
from klippfisk.spec.models import SERVER_OWNED
from klippfisk.spec.quantities import (
    format_bytes,
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_duration_seconds,
    parse_gpu,
)
from klippfisk.spec.sources import read_source
from klippfisk.spec.template import render, variables_from

__all__ = [
    "DEFAULT_LIMITS",
    "PROFILES",
    "SERVER_OWNED",
    "CompiledSpec",
    "Document",
    "LoadError",
    "LoadLimits",
    "Problem",
    "Report",
    "SpecError",
    "TemplateError",
    "cid_of",
    "compile_document",
    "compile_job",
    "compile_path",
    "compile_url",
    "format_bytes",
    "format_cpu",
    "load_document",
    "parse_bytes",
    "parse_cpu",
    "parse_duration_seconds",
    "parse_gpu",
    "read_source",
    "render",
    "variables_from",
]
