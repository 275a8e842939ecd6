"""Every real Bacalhau job file in tests/data/corpus gets the verdict its README gives."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import pytest

from klippfisk.spec import SpecError, compile_path

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "job.schema.json"
INVALID = {
    "HEAD__testdata__jobs__empty.yaml",
    "064edc822__testdata__job-noop-invalid.yml",
    "064edc822__testdata__job-invalid.yml",
    "v1.0.0__testdata__job-noop-invalid.yml",
    "v1.0.0__testdata__job-invalid.yml",
    "v1.0.0__testdata__empty.yaml",
    "064edc822__testdata__job-test.yaml",
    "v1.0.0__job-test.yaml",
}
UNRUNNABLE = {
    "HEAD__testdata__jobs__custom-task-type.yaml": "flibble",
    "HEAD__test_integration__common_assets__job_specs__unsupported_engine_type.yml": "vroomvroom",
}
FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "README.md")
VALID = [name for name in FILES if name not in INVALID]


def test_the_corpus_is_all_there() -> None:
    assert len(FILES) == 50
    assert set(FILES) >= INVALID and set(UNRUNNABLE) <= set(FILES)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_files_are_refused_with_a_located_reason(name: str) -> None:
    with pytest.raises(SpecError) as caught:
        compile_path(CORPUS / name)
    assert caught.value.problems
    assert all(p.message and p.hint for p in caught.value.problems)


@pytest.mark.parametrize("name", VALID)
def test_valid_files_compile_to_a_schema_valid_canonical_job(name: str) -> None:
    compiled = compile_path(CORPUS / name)
    validator = jsonschema.Draft202012Validator(_schema())
    assert [e.message for e in validator.iter_errors(compiled.job)] == []
    assert compiled.job_cid.startswith("bagaaiera")
    assert set(compiled.task_cids) == {task["Name"] for task in compiled.job["Tasks"]}


@pytest.mark.parametrize("name", sorted(UNRUNNABLE))
def test_unknown_engines_compile_with_a_warning(name: str) -> None:
    compiled = compile_path(CORPUS / name)
    assert compiled.job["Tasks"][0]["Engine"]["Type"] == UNRUNNABLE[name]
    assert [w.code for w in compiled.report.warnings] == ["unknown-engine"]


def test_legacy_corpus_files_report_their_form_and_translations() -> None:
    compiled = compile_path(CORPUS / "v1.0.0__testdata__job-s3.yaml")
    assert compiled.report.form == "legacy-v1beta1"
    dropped = {m.source for m in compiled.report.migrations if m.action == "dropped"}
    assert {"/Spec/Verifier", "/Spec/Deal/Confidence", "/Spec/Deal/MinBids"} <= dropped
    assert compiled.job["Tasks"][0]["Publisher"]["Type"] == "s3"


@functools.cache
def _schema() -> dict[str, object]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))
