"""`klippfisk spec ...` as a user runs it: exit codes, line:col in messages, machine output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

import klippfisk.schemas
from klippfisk.adapters.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
GOOD = CORPUS / "HEAD__testdata__jobs__docker.yaml"
BAD = CORPUS / "v1.0.0__testdata__job-invalid.yml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_exits_zero_for_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "validate", str(GOOD))
    assert code == 0 and "valid (bagaaiera" in out


def test_validate_exits_one_and_shows_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "validate", str(GOOD), str(BAD))
    assert code == 1
    assert f"{BAD}:3:1: /APIVersion: The legacy job has no APIVersion." in out


def test_validate_exits_two_for_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spec", "validate", "/no/such/job.yaml")
    assert code == 2 and "does not exist" in err


def test_validate_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"image: ubuntu\ncommand: date\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, _ = run(capsys, "spec", "validate", "-")
    assert code == 0 and out.startswith("<stdin>: valid")


def test_validate_json_output_is_for_machines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "validate", "--output", "json", str(BAD))
    [result] = json.loads(out)
    assert code == 1 and result["valid"] is False
    assert result["problems"][0] | {"hint": ""} == {
        "pointer": "/APIVersion", "line": 3, "column": 1, "code": "invalid",
        "message": "The legacy job has no APIVersion.", "hint": "",
    }  # fmt: skip


def test_compile_prints_canonical_yaml_with_cids_and_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "spec", "compile", "--profile", "bacalhau", str(GOOD))
    document = yaml.safe_load(out)
    assert code == 0
    assert document["job"]["Tasks"][0]["Network"]["Type"] == "Default"
    assert document["report"]["profile"] == "bacalhau"
    assert set(document) == {"job", "job_cid", "task_cids", "report"}


def test_compile_renders_template_variables(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("image: '{{.img}}'\ncommand: date\n", encoding="utf-8")
    code, out, _ = run(capsys, "spec", "compile", "-o", "json", "-V", "img=alpine", str(path))
    assert code == 0
    assert json.loads(out)["job"]["Tasks"][0]["Engine"]["Params"]["Image"] == "alpine"


def test_compile_of_an_invalid_file_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spec", "compile", str(BAD))
    assert code == 1 and "3:1" in err


def test_diff_is_silent_and_zero_for_the_same_meaning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    same = tmp_path / "same.json"
    same.write_text(json.dumps(yaml.safe_load(GOOD.read_text(encoding="utf-8"))), encoding="utf-8")
    assert run(capsys, "spec", "diff", str(GOOD), str(same)) == (0, "", "")


def test_diff_lists_changes_and_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    other = CORPUS / "HEAD__testdata__jobs__docker-output.yaml"
    code, out, _ = run(capsys, "spec", "diff", str(GOOD), str(other))
    assert code == 1
    assert "~ /Name: 'Docker Job' -> 'Docker Job with Output'" in out


def test_schema_prints_the_canonical_job_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "schema")
    assert code == 0 and json.loads(out)["title"].startswith("Canonical")
    assert run(capsys, "spec", "schema", "nope")[0] == 2


def test_schema_serves_the_shipped_files_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(klippfisk.schemas.__file__).parent
    job = (shipped / "job.schema.json").read_text(encoding="utf-8")
    minimal = (shipped / "minimal.schema.json").read_text(encoding="utf-8")
    assert run(capsys, "spec", "schema") == (0, job, "")
    assert run(capsys, "spec", "schema", "minimal.schema.json") == (0, minimal, "")


def test_explain_describes_type_rule_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spec", "explain", "tasks.network.type")
    assert code == 0
    assert "FIELD:   Tasks.Network.Type" in out
    assert "DEFAULT (bacalhau): Default" in out and "DEFAULT (klippfisk): None" in out
    code, _, err = run(capsys, "spec", "explain", "Tasks.Nope")
    assert code == 2 and "Fields of Tasks" in err


def test_an_unknown_profile_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "spec", "validate", "--profile", "fast", str(GOOD))
    assert code == 2 and "klippfisk" in err
