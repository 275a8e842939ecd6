"""The compiler pipeline: bytes in, one canonical job with its addresses and report out.

load (spec.load: limits, line map) -> optional templating -> detect the form -> translate
to the current model -> apply a default profile -> check and normalise -> canonical dict ->
content addresses. Every fault found on the way is collected and raised once, as a
SpecError whose problems each carry a JSON pointer into the user's document and its line:col.

The canonical dict is built once and hashed once; nothing is serialised twice.

Warning codes are stable (tools filter on them): `unknown-field` (a key no model has, with a
did-you-mean), `server-field-ignored` (ID, State, Version ... given in a job file),
`unknown-engine` (compiles, but only a node with that engine can run it),
`extra-tasks-dropped` (Bacalhau runs one task per job) and `reserved-meta-key` (a
`bacalhau.org/` meta key, which Bacalhau discards).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from klippfisk.spec.canonical import addresses, canonical_job
from klippfisk.spec.compiled import CompiledSpec, Migration, Report, Warning_
from klippfisk.spec.defaults import DEFAULT_PROFILE, PROFILES, apply_profile
from klippfisk.spec.document import Document
from klippfisk.spec.errors import Problem, SpecError
from klippfisk.spec.legacy import rewrite_legacy_wasm, translate_ipvm, translate_legacy
from klippfisk.spec.limits import DEFAULT_LIMITS, LoadLimits, check_shape
from klippfisk.spec.load import decode_text, load_document
from klippfisk.spec.minimal import translate_code, translate_docker, translate_wasm
from klippfisk.spec.models import SERVER_OWNED, Job, SourceSpelling
from klippfisk.spec.sources import read_source
from klippfisk.spec.template import render
from klippfisk.spec.translation import Translation, parse_model, pydantic_problems
from klippfisk.spec.validate import Findings, check

__all__ = [
    "compile_document",
    "compile_job",
    "compile_path",
    "compile_url",
    "detect_form",
]

_LEGACY_KEYS = {"apiversion", "spec"}
_SERVER_OWNED = frozenset(name.lower() for name in SERVER_OWNED)
_BARE_SPEC_KEYS = {"engine", "enginespec", "docker", "wasm", "verifier", "deal", "publisherspec"}
_FORMS_HINT = (
    "Write a Bacalhau job (Type, Tasks), a legacy job (APIVersion, Spec), an IPVM task "
    "(with, do), or a minimal form: {image, command}, {wasm}, or {language, code}."
)


def compile_document(
    data: bytes | str,
    *,
    source: str = "<input>",
    profile: str = DEFAULT_PROFILE,
    variables: Mapping[str, str] | None = None,
    limits: LoadLimits | None = None,
) -> CompiledSpec:
    """Compile one YAML or JSON document; raises SpecError listing every problem."""
    if variables is not None:
        text = decode_text(data, source=source, limits=limits)
        data = render(text, variables, source=source, limits=limits)
    document = load_document(data, source=source, limits=limits)
    return _compile(document.data, document, source, profile)


def compile_path(
    path: str | Path,
    *,
    source: str | None = None,
    profile: str = DEFAULT_PROFILE,
    variables: Mapping[str, str] | None = None,
    limits: LoadLimits | None = None,
) -> CompiledSpec:
    """Compile a file, `-` for standard input, or an http(s) URL; `source` renames it."""
    data, name = read_source(str(path), limits=limits)
    return compile_document(
        data, source=source or name, profile=profile, variables=variables, limits=limits
    )


def compile_url(
    url: str,
    *,
    source: str | None = None,
    profile: str = DEFAULT_PROFILE,
    variables: Mapping[str, str] | None = None,
    limits: LoadLimits | None = None,
) -> CompiledSpec:
    """Compile a document fetched over http(s), within the size and time limits."""
    return compile_path(url, source=source, profile=profile, variables=variables, limits=limits)


def compile_job(
    job: Mapping[str, Any],
    *,
    source: str = "<input>",
    profile: str = DEFAULT_PROFILE,
    limits: LoadLimits | None = None,
) -> CompiledSpec:
    """Compile already-parsed data (an HTTP body); there are no line numbers to report.

    Parsed data has no template text left to render, but it can still be hostile (a body
    nested thousands deep, or millions of values), so the depth and node limits apply.
    """
    check_shape(job, limits or DEFAULT_LIMITS, source)
    return _compile(job, None, source, profile)


def detect_form(data: Any) -> tuple[str, Any, str]:
    """(form, the mapping to translate, pointer prefix of that mapping in the document)."""
    if not isinstance(data, Mapping):
        return "none", data, ""
    keys = {str(k).lower(): k for k in data}
    if set(keys) == {"job"} and isinstance(data[keys["job"]], Mapping):
        form, inner, _ = detect_form(data[keys["job"]])
        return form, inner, f"/{keys['job']}"
    if keys.keys() & _LEGACY_KEYS:
        return "legacy", data, ""
    if {"with", "do"} <= keys.keys():
        return "ipvm", data, ""
    if "tasks" in keys:
        return "current", data, ""
    if "image" in keys:
        return "minimal-docker", data, ""
    if "language" in keys and "code" in keys:
        return "minimal-code", data, ""
    if "wasm" in keys and not isinstance(data[keys["wasm"]], Mapping):
        return "minimal-wasm", data, ""
    if keys.keys() & _BARE_SPEC_KEYS:
        return "legacy-spec", data, ""
    if "type" in keys:
        return "current", data, ""
    return "none", data, ""


def _translate(form: str, data: Any) -> Translation:
    if form == "current":
        return _current(data)
    if form == "legacy":
        return translate_legacy(data, envelope=True)
    if form == "legacy-spec":
        return translate_legacy(data, envelope=False)
    if form == "ipvm":
        return translate_ipvm(data)
    if form == "minimal-docker":
        return translate_docker(data)
    if form == "minimal-code":
        return translate_code(data)
    if form == "minimal-wasm":
        return translate_wasm(data)
    out = Translation(form="none")
    what = "empty" if data is None else f"a {type(data).__name__}, not a job"
    out.error("", f"The document is {what}.", _FORMS_HINT, code="form")
    return out


def _current(data: Mapping[str, Any]) -> Translation:
    out = Translation(form="current")
    owned = [key for key in data if str(key).lower() in _SERVER_OWNED]
    for key in owned:
        out.warnings.append(
            Warning_(
                code="server-field-ignored",
                pointer=f"/{key}",
                message=f"{key} is set by the server and was ignored.",
                hint="Remove it from the job file.",
            )
        )
    clean = {k: v for k, v in data.items() if k not in owned} if owned else data
    job, _ = parse_model(clean, Job, "", out, typos=True)
    if job is not None:
        out.job = job.model_dump()
        for index, task in enumerate(out.job["Tasks"]):
            rewrite_legacy_wasm(task, f"/Tasks/{index}", out)
    return out


def _compile(data: Any, document: Document | None, source: str, profile_name: str) -> CompiledSpec:
    profile = PROFILES.get(profile_name)
    if profile is None:
        problem = Problem(
            pointer="",
            message=f"Unknown default profile {profile_name!r}.",
            hint="Use one of: " + ", ".join(PROFILES) + ".",
            code="profile",
        )
        raise SpecError([problem], source)
    form, body, prefix = detect_form(data)
    out = _translate(form, body)
    locate = _Locator(data, document, out, prefix)
    if out.problems:
        raise SpecError([locate.problem(p, translated=False) for p in out.problems], source)
    job_data = out.job if form == "current" else _checked_translation(out.job, source)
    defaults = apply_profile(job_data, profile)
    findings = Findings(warnings=out.warnings)
    check(job_data, findings)
    if findings.problems:
        raise SpecError([locate.problem(p) for p in findings.problems], source)
    canonical = canonical_job(job_data)
    report = Report(
        form=out.form,
        profile=profile.name,
        profile_version=profile.version,
        defaults=tuple(defaults),
        warnings=tuple(locate.warning(w) for w in findings.warnings),
        migrations=tuple(locate.migration(m) for m in out.migrations),
    )
    try:
        job_cid, task_cids = addresses(canonical)
    except ValueError as exc:  # e.g. an engine param holding 1e400 or 2**64
        problem = Problem(pointer="", message=str(exc), hint="Fix the value.", code="unaddressable")
        raise SpecError([problem], source) from None
    return CompiledSpec(
        job=canonical, job_cid=job_cid, task_cids=task_cids, report=report, source=source
    )


def _checked_translation(job: dict[str, Any], source: str) -> dict[str, Any]:
    """A translator's output as a dumped `Job` (its keys are canonical: no folding needed).

    Translators build their output from validated values, so a type fault here is a bug in
    a translator, not in the user's document; it still surfaces as a SpecError, located at
    the translated field, rather than as a traceback.
    """
    try:
        return Job.model_validate(job).model_dump()
    except ValidationError as exc:
        raise SpecError(pydantic_problems(exc), source) from None


class _Locator:
    """Turns pointers in the translated job into pointers and line:col in the user's file."""

    def __init__(self, data: Any, document: Document | None, out: Translation, prefix: str) -> None:
        self._spelling = SourceSpelling(data)
        self._document = document
        self._out = out
        self._prefix = prefix
        self._translated = out.form != "current"

    def where(self, pointer: str, translated: bool = True) -> tuple[str, int | None, int | None]:
        if translated and self._translated:
            pointer = self._out.origin_of(pointer) or ""
        source = self._spelling.pointer(self._prefix + pointer)
        if self._document is None:
            return source, None, None
        position = self._document.position(source)
        return (source, *position) if position else (source, None, None)

    def problem(self, problem: Problem, translated: bool = True) -> Problem:
        pointer, line, column = self.where(problem.pointer, translated)
        return Problem(
            pointer=pointer if not self._translated else problem.pointer or pointer,
            message=problem.message,
            hint=problem.hint,
            line=line,
            column=column,
            code=problem.code,
        )

    def warning(self, warning: Warning_) -> Warning_:
        pointer, line, column = self.where(warning.pointer)
        return Warning_(
            code=warning.code,
            pointer=pointer if not self._translated else warning.pointer,
            message=warning.message,
            hint=warning.hint,
            line=line,
            column=column,
        )

    def migration(self, migration: Migration) -> Migration:
        """The migration with the document's spelling and, for YAML, its line.

        JSON positions cost a scan of the whole text (spec.json_positions defers it until a
        fault needs one), which would double the compile time of every legacy JSON file for
        a line number in an informational note; its pointer already says where it is. YAML
        positions are one walk down the kept nodes (spec.yaml_positions), so they are given.
        """
        source = self._spelling.pointer(self._prefix + migration.source)
        line = None
        if self._document is not None and self._document.format == "yaml":
            position = self._document.position(source)
            line = position[0] if position else None
        return Migration(
            source=source,
            action=migration.action,
            target=migration.target,
            note=migration.note,
            line=line,
        )
